"""The validation split is exactly scikit-learn's GroupKFold on sorted paths by ID folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.model_selection import GroupKFold

from harness.data.layout import split
from harness.errors import HarnessError


def _paths(n_ids: int) -> list[Path]:
    # Deliberately unsorted input with uneven folder sizes.
    out = []
    for i in reversed(range(n_ids)):
        for j in range(1 + i % 3):
            out.append(Path(f"/d/train/DCM/ID{i:03d}/image{1000 + j}.png"))
    return out


def test_split_matches_groupkfold_fold_0() -> None:
    paths = _paths(12)
    train, val = split(paths, 5, 0)
    ordered = sorted(paths)
    groups = [p.parent.name for p in ordered]
    tr, va = next(iter(GroupKFold(n_splits=5).split(ordered, groups=groups)))
    assert train == [ordered[i] for i in tr]
    assert val == [ordered[i] for i in va]
    assert not {p.parent.name for p in train} & {p.parent.name for p in val}


def test_folds_partition_the_data() -> None:
    paths = _paths(10)
    vals = [p for f in range(5) for p in split(paths, 5, f)[1]]
    assert sorted(vals) == sorted(paths)


def test_too_few_groups_is_an_error() -> None:
    with pytest.raises(HarnessError, match="needs at least 5"):
        split(_paths(3), 5, 0)
