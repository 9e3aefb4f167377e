"""Protocols: built-ins load, hashes cover score-changing fields only, --set derives."""

from __future__ import annotations

import pytest

from harness import protocol as P
from harness.errors import HarnessError


def test_builtins_load_with_distinct_hashes() -> None:
    names = P.builtin_names()
    assert {"tiny", "synthetic", "standard-512", "standard-1024"} <= set(names)
    hashes = [p.hash for p in P.builtins()]
    assert len(set(hashes)) == len(hashes)
    assert all(len(h) == 10 for h in hashes)


def test_standard_protocols_follow_the_study() -> None:
    for name, res in (("standard-512", 512), ("standard-1024", 1024)):
        p = P.load(name)
        assert (p.resolution, p.encoder, p.epochs, p.optimizer, p.lr) == (
            res,
            "resnet152",
            150,
            "adamw",
            1e-4,
        )
        assert p.eval_resolution == "original"


@pytest.mark.parametrize("field", sorted(set(P._SETTABLE) - P.UNHASHED))
def test_every_score_field_changes_the_hash(field: str) -> None:
    base = P.load("tiny")
    value = getattr(base, field)
    new = {
        bool: lambda v: not v,
        int: lambda v: v + 1,
        float: lambda v: v * 2 + 0.1,
        str: lambda v: "256" if field == "eval_resolution" else v + "x",
        tuple: lambda v: 1,  # exclude_folds: a fold other than the protocol's
    }[type(value)](value)
    new = {"fold": 1, "resolution": 96, "threshold": 0.4}.get(field, new)
    text = {True: "true", False: "false"}.get(new, new) if isinstance(new, bool) else new
    derived = base.derive([f'{field}="{text}"' if isinstance(new, str) else f"{field}={text}"])
    assert derived.hash != base.hash


@pytest.mark.parametrize("field", ["seeds", "optimizer", "num_workers", "description"])
def test_bookkeeping_fields_do_not_change_the_hash(field: str) -> None:
    base = P.load("tiny")
    value = {"seeds": "1,2", "optimizer": "sgd", "num_workers": "2", "description": '"x"'}[field]
    assert base.derive([f"{field}={value}"]).hash == base.hash


def test_set_derives_a_protocol_with_its_own_label() -> None:
    base = P.load("tiny")
    derived = base.derive(["epochs=3", "encoder=resnet34"])
    assert derived.epochs == 3 and derived.encoder == "resnet34"
    assert derived.label == "tiny epochs=3 encoder=resnet34"
    assert base.derive(["epochs=2"]).hash == base.hash  # same value, same benchmark
    assert base.derive(["lr=1"]).lr == 1.0  # ints are accepted as floats


@pytest.mark.parametrize(
    "item, culprit",
    [
        ("epoch=3", "epoch"),
        ("epochs=x", "epochs"),
        ("epochs=0", "epochs"),
        ("lr=true", "lr"),
        ("resolution=100", "resolution"),
        ("fold=7", "fold"),
        ("noequals", "KEY=VALUE"),
        ("eval_resolution=huge", "eval_resolution"),
    ],
)
def test_bad_set_is_a_one_line_error(item: str, culprit: str) -> None:
    with pytest.raises(HarnessError) as info:
        P.load("tiny").derive([item])
    assert culprit in str(info.value)
    assert "\n" not in str(info.value)


def test_protocol_files(tmp_path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text('name = "mine"\nepochs = 1\nresolution = 64\n')
    assert P.load(str(good)).epochs == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nepochz = 1\n')
    with pytest.raises(HarnessError, match="bad.toml: unknown protocol field 'epochz'"):
        P.load(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(HarnessError, match="broken.toml: not valid TOML"):
        P.load(str(broken))
    with pytest.raises(HarnessError, match="unknown protocol 'nope'"):
        P.load("nope")
    with pytest.raises(HarnessError, match="not found"):
        P.load(str(tmp_path / "missing.toml"))


def test_standard_protocols_start_from_imagenet_and_the_cpu_ones_keep_their_hashes() -> None:
    # The study's setup: an ImageNet-pretrained encoder; the CPU protocols train from scratch
    # and their benchmarks (hashes) are unchanged by it.
    for name in ("standard-512", "standard-1024"):
        assert P.load(name).encoder_weights == "imagenet"
        assert P.load(name).in_channels == 1
    assert P.load("synthetic").hash == "2267276f85"
    assert P.load("tiny").hash == "efe032ab7d"
    assert P.load("tiny").derive(["encoder_weights=imagenet"]).hash != P.load("tiny").hash
