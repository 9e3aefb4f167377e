"""Where datasets come from and what they are: the cache folder, a dataset's fingerprint
(its identity in every benchmark id), and the built-in phantom generated once into the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.data.layout import list_images
from harness.data.phantom import synthesize
from harness.locking import Lock

#: Bump when the phantom's drawing changes, so cached synthetic datasets are regenerated.
PHANTOM_VERSION = 2


def cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR``, default ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "harness")


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset folder and its identity: ``fingerprint`` hashes every file's path and bytes."""

    root: Path
    name: str
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.root), "fingerprint": self.fingerprint}


def describe(root: Path) -> DatasetInfo:
    root = Path(root).resolve()
    list_images(root, "train")  # fails early with a clear line when the layout is wrong
    return DatasetInfo(root, slug(root.name), fingerprint(root))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "dataset"


def fingerprint(root: Path) -> str:
    """SHA-256 over every file under ``train/`` and ``test/`` (relative path and content).

    Content hashes are cached by (size, mtime) in the cache folder so a second run does
    not read every image again.
    """
    root = Path(root).resolve()
    memo_path = (
        cache_dir()
        / "fingerprints"
        / (hashlib.sha256(str(root).encode()).hexdigest()[:16] + ".json")
    )
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    files = sorted(p for sub in ("train", "test") for p in (root / sub).rglob("*") if p.is_file())
    total = hashlib.sha256()
    fresh: dict[str, list[Any]] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        st = path.stat()
        known = memo.get(rel)
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            digest = known[2]
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        fresh[rel] = [st.st_size, st.st_mtime_ns, digest]
        total.update(f"{rel}\0{digest}\n".encode())
    if fresh != memo:
        atomic_write_text(memo_path, json.dumps(fresh))
    return total.hexdigest()


def synthetic_dataset(
    ids: int, size: int, seed: int, progress: Callable[[int, int], None] | None = None
) -> Path:
    """The built-in phantom for these settings, generated once into the cache and reused."""
    root = cache_dir() / "synthetic" / f"phantom-v{PHANTOM_VERSION}-ids{ids}-size{size}-seed{seed}"
    root.parent.mkdir(parents=True, exist_ok=True)
    with Lock(str(root) + ".lock"):
        if not (root / "train").is_dir():
            synthesize(root, ids=ids, size=size, seed=seed, progress=progress)
    return root


_PHANTOM = re.compile(r"^phantom-v(\d+)-ids(\d+)-size(\d+)-seed(\d+)$")


def phantom_named(name: str) -> Path | None:
    """The built-in phantom a dataset's name (as a benchmark id holds it) names, generated into
    the cache if it is not there; None when the name is not one of this version's phantoms."""
    found = _PHANTOM.match(name)
    if found is None or int(found[1]) != PHANTOM_VERSION:
        return None
    ids, size, seed = (int(found[i]) for i in (2, 3, 4))
    return synthetic_dataset(ids=ids, size=size, seed=seed)
