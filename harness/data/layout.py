"""The competition's folder layout: where images and their label files live.

```
DATA/<split>/DCM/IDnnn/image<digits>.png
DATA/<split>/outputs_json/IDnnn/image<digits>.json   (train only)
```
Only paths (and the validation split over them) are handled here; reading labels is
``harness.data.annotations``, pixels ``harness.data.images``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sklearn.model_selection import GroupKFold

from harness.errors import HarnessError

IMAGE_DIR = "DCM"
LABEL_DIR = "outputs_json"


def list_images(root: Path, split: str = "train") -> list[Path]:
    """Every ``<split>/DCM/<ID>/*.png`` under ``root``, sorted by path (the split depends on it)."""
    root = Path(root)
    if not root.is_dir():
        raise HarnessError(
            f"{root}: dataset folder not found; pass --data PATH to a dataset folder"
        )
    image_root = root / split / IMAGE_DIR
    if not image_root.is_dir():
        raise HarnessError(
            f"{image_root}: missing; a dataset needs {split}/{IMAGE_DIR}/<ID>/<image>.png "
            "(see `harness data synth` for an example)"
        )
    images = sorted(p for p in image_root.glob("*/*.png") if p.is_file())
    if not images:
        raise HarnessError(f"{image_root}: no PNG images in its ID folders")
    return images


def label_path(image: Path) -> Path:
    """The label file of ``image``: ``.../DCM/ID/x.png`` -> ``.../outputs_json/ID/x.json``."""
    image = Path(image)
    return image.parent.parent.parent / LABEL_DIR / image.parent.name / f"{image.stem}.json"


def group_of(image: Path) -> str:
    """The ID folder of an image: both hands of one person share it, so the split keeps it whole."""
    return Path(image).parent.name


def split(
    images: Sequence[Path], folds: int = 5, fold: int = 0, exclude: Sequence[int] = ()
) -> tuple[list[Path], list[Path]]:
    """Train and validation images: GroupKFold on sorted paths, grouped by ID folder.

    ``exclude`` names folds left out of training entirely (a tuning trial validates on
    another fold and never trains on the protocol's own)."""
    images = sorted(images)
    groups = [group_of(p) for p in images]
    if len(set(groups)) < folds:
        raise HarnessError(
            f"{images[0].parent.parent if images else 'dataset'}: {len(set(groups))} ID folders, "
            f"but the protocol's {folds}-fold split needs at least {folds}"
        )
    parts = list(GroupKFold(n_splits=folds).split(images, groups=groups))
    train_idx, val_idx = parts[fold]
    left_out = {i for f in exclude for i in parts[f][1]}
    train = [images[i] for i in train_idx if i not in left_out]
    return train, [images[i] for i in val_idx]
