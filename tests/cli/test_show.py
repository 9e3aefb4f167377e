"""``harness show KIND NAME``: a component's provider, parameters, docstring and near matches."""

from __future__ import annotations

import harness


def test_show_gives_provider_docstring_and_parameters(cli) -> None:
    result = cli("show", "losses", "combo")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "loss combo",
        f"  provided by builtin-losses (segmentation-harness {harness.__version__})",
        "",
        "Weighted sum of Dice and BCE (weights `dice` and `bce`).",
        "",
        "Parameters (--loss combo:KEY=VALUE,...):",
        "  dice  float  default 0.6",
        "  bce   float  default 0.4",
    ]
    assert "Tuning space" not in result.out  # none is declared


def test_show_leaves_out_the_harnesss_own_arguments_and_says_what_passes_on(cli) -> None:
    out = cli("show", "model", "attention-unet").out
    for own in ("num_classes", "in_channels", " encoder "):
        assert own not in out
    assert "  gate_reduction   int" in out and "default 2" in out
    assert "further parameters go to what the factory builds" in out
    schedule = cli("show", "schedulers", "warmup-cosine").out
    assert "total_steps" not in schedule and "warmup_steps  " not in schedule
    assert "  eta_min  float  default 0.0" in schedule
    assert "image_size" not in cli("show", "augmentations", "flip").out


def test_show_of_an_unknown_name_or_kind_is_one_line_with_near_matches(cli) -> None:
    for args, said in [
        (("losses", "dcie"), "unknown loss 'dcie'; did you mean: dice?"),
        (("los", "dice"), "unknown component kind 'los'; did you mean losses?"),
    ]:
        result = cli("show", *args)
        assert result.code == 2 and result.out == ""
        (line,) = result.err.strip().splitlines()
        assert line.startswith("harness: error: ") and said in line, line


def test_a_parameter_error_points_to_harness_show(cli, tmp_path) -> None:
    result = cli(
        "run", "--model", "unet", "--loss", "combo:dic=0.5", "--protocol", "tiny",
        "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert result.code == 2
    (line,) = result.err.strip().splitlines()  # before any data work: nothing else said
    assert "no parameter 'dic'; did you mean dice?" in line
    assert line.endswith("see `harness show losses combo`")
    assert not (tmp_path / "runs").exists()


def test_show_and_list_give_a_declared_tuning_space(cli) -> None:
    out = cli("show", "optimizers", "sgd").out.splitlines()
    at = out.index("Tuning space (harness tune; the protocol's [tuning.space] for the rest):")
    assert out[at + 1 :] == ["  lr        [0.001, 1] log", "  momentum  [0.8, 0.99]"]
    listed = cli("list", "optimizers")
    assert listed.code == 0, listed.err
    assert "tuning space" in listed.out and "lr [1e-05, 0.01] log" in listed.out  # lion's
    assert "tuning space" not in cli("list", "losses").out  # no loss declares one
