"""``harness list`` (``harness.cli.listing``): the protocols with their hashes and every
component with the plugin and distribution that provide it and its description; one kind
alone; a plugin's components beside the built-in ones."""

from __future__ import annotations

from pathlib import Path

from harness.protocol import load


def test_list_shows_every_builtin_with_its_distribution(cli) -> None:
    result = cli("list")
    assert result.code == 0, result.err
    for name in ("unet", "unetpp", "fpn", "deeplabv3plus", "bce", "dice", "combo", "sgd", "adam",
                 "adamw", "flat", "cosine", "warmup-cosine", "none", "basic", "tiny",
                 "synthetic", "standard-512", "standard-1024"):  # fmt: skip
        assert f" {name} " in result.out, name
    assert "segmentation-harness 0.1.0" in result.out
    protocols = cli("list", "protocols")
    assert load("tiny").hash in protocols.out and "│ unet " not in protocols.out


def test_list_shows_a_description_column_beside_the_provider(cli) -> None:
    out = cli("list", "losses").out
    assert "┃ name" in out and "┃ plugin" in out and "┃ distribution" in out
    assert "┃ description" in out
    row = next(line for line in out.splitlines() if "│ combo " in line)
    assert "builtin-losses" in row and "segmentation-harness" in row
    assert "Weighted sum of Dice and BCE" in row
    assert "harness show KIND NAME" in out


def test_one_kind_alone_and_a_plugins_components_beside_the_builtin_ones(
    cli, tmp_path: Path
) -> None:
    plugin = tmp_path / "my_losses.py"
    plugin.write_text(
        "import torch\nfrom harness import hookimpl\n\n\n"
        "def my_focal(*, gamma: float = 2.0):\n"
        '    """Focal loss, my way."""\n'
        "    return torch.nn.BCEWithLogitsLoss()\n\n\n"
        "@hookimpl\ndef harness_losses():\n    return {'my-focal': my_focal}\n"
    )
    result = cli("list", "losses", "--plugin", plugin)
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if "│ my-focal " in line)
    assert "my_losses" in row and "Focal loss, my way." in row and "—" in row  # no distribution
    assert "│ dice " in result.out
    assert "protocols" not in result.out and "│ unet " not in result.out  # losses alone
