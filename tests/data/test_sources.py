"""Where datasets come from (``harness.data.sources``): the cache folder, a dataset's name and
fingerprint (every file under ``train/`` and ``test/``, path and bytes, hashed once), and the
built-in phantom generated once into the cache."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.data import sources
from harness.data.layout import list_images
from harness.data.sources import (
    PHANTOM_VERSION,
    DatasetInfo,
    cache_dir,
    describe,
    fingerprint,
    slug,
    synthetic_dataset,
)
from harness.errors import HarnessError

FILES = {
    "train/DCM/ID001/image1.png": b"first image",
    "train/outputs_json/ID001/image1.json": b'{"annotations": []}',
    "test/DCM/ID002/image2.png": b"test image",
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dataset folder of three small files, and a cache of this test's own."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "My Hands_2024"
    for name, content in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


def test_the_cache_folder_is_the_environments_or_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("HARNESS_CACHE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "harness"


def test_slug() -> None:
    assert slug("My Hands_2024") == "my-hands-2024"
    assert slug("--phantom--v2") == "phantom-v2"
    assert slug("!!!") == "dataset"


def test_the_fingerprint_is_the_files_paths_and_bytes(root: Path, tmp_path: Path) -> None:
    first = fingerprint(root)
    assert re.fullmatch("[0-9a-f]{64}", first)
    copy = Path(shutil.copytree(root, tmp_path / "copy"))
    assert fingerprint(copy) == first  # where the folder is does not matter
    (copy / "notes.txt").write_text("outside train/ and test/")
    assert fingerprint(copy) == first
    (copy / "test/DCM/ID002/image2.png").write_bytes(b"another test image")
    assert fingerprint(copy) != first
    renamed = Path(shutil.copytree(root, tmp_path / "renamed"))
    (renamed / "test/DCM/ID002/image2.png").rename(renamed / "test/DCM/ID002/image3.png")
    assert fingerprint(renamed) != first


def test_a_second_fingerprint_reads_no_file_again(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fingerprint(root)
    assert len(list((cache_dir() / "fingerprints").glob("*.json"))) == 1
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self} again"))
    assert fingerprint(root) == first


def test_describe_names_the_dataset_and_checks_its_layout(root: Path, tmp_path: Path) -> None:
    info = describe(root)
    assert info == DatasetInfo(root.resolve(), "my-hands-2024", fingerprint(root))
    assert info.to_dict() == {
        "name": "my-hands-2024",
        "path": str(root.resolve()),
        "fingerprint": info.fingerprint,
    }
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="train/DCM: missing"):
        describe(tmp_path / "empty")


def test_the_phantom_is_generated_once_per_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    made: list[Path] = []
    real = sources.synthesize

    def counted(out: Path, **kwargs: int) -> Path:
        made.append(out)
        return real(out, **kwargs)

    monkeypatch.setattr(sources, "synthesize", counted)
    root = synthetic_dataset(1, 64, 3)
    assert (
        root == tmp_path / "cache" / "synthetic" / f"phantom-v{PHANTOM_VERSION}-ids1-size64-seed3"
    )
    assert len(list_images(root, "train")) == 2  # one ID folder: a right and a left hand
    assert synthetic_dataset(1, 64, 3) == root and made == [root]
    assert synthetic_dataset(1, 64, 4) != root and len(made) == 2


def test_a_phantoms_name_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``harness select`` finds a benchmark's phantom by the name its records hold."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    root = sources.phantom_named(f"phantom-v{PHANTOM_VERSION}-ids1-size64-seed3")
    assert root == synthetic_dataset(1, 64, 3)
    assert sources.describe(root).name == f"phantom-v{PHANTOM_VERSION}-ids1-size64-seed3"
    for other in ("hand-xrays", f"phantom-v{PHANTOM_VERSION + 1}-ids1-size64-seed3"):
        assert sources.phantom_named(other) is None
