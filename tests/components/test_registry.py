"""The registry: discovery through entry points and --plugin, provenance, and every user error."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

import harness
from harness.components.registry import KINDS, Registered, Registry
from harness.errors import HarnessError

BUILTIN = {
    "models": {"unet", "unetpp", "fpn", "deeplabv3plus"},
    "losses": {"bce", "dice", "combo"},
    "optimizers": {"sgd", "adam", "adamw"},
    "schedulers": {"flat", "cosine", "warmup-cosine"},
    "augmentations": {"none", "basic"},
}


@pytest.fixture(autouse=True)
def _forget_tmp_modules(tmp_path: Path):
    """Modules imported from this test's tmp_path must not leak into the next test."""
    yield
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).is_relative_to(tmp_path):
            del sys.modules[name]


def write(folder: Path, filename: str, source: str) -> Path:
    path = folder / filename
    path.write_text(textwrap.dedent(source))
    return path


def loss_plugin(folder: Path, filename: str, names: str) -> Path:
    """A plugin file offering the losses ``names`` (a Python expression for a list)."""
    return write(
        folder,
        filename,
        f"""
        from harness import hookimpl

        def make(**params):
            return lambda logits, target: (logits - target).abs().mean()

        @hookimpl
        def harness_losses():
            return {{name: make for name in {names}}}
        """,
    )


def fake_distribution(root: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """An installed distribution on ``root`` (put it on sys.path) with ``harness`` entry points."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[harness]\n{lines}")


def error_of(callable_, *args, **kwargs) -> str:
    with pytest.raises(HarnessError) as info:
        callable_(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "user errors are one line"
    return message


# -- discovery and provenance ----------------------------------------------------------------


def test_builtins_load_through_entry_points() -> None:
    registry = Registry.load()
    for kind, names in BUILTIN.items():
        components = registry.components(kind)
        assert names <= set(components)
        for name in names:
            component = components[name]
            assert component.kind == kind and component.name == name
            assert component.plugin == f"builtin-{kind}"
            assert component.distribution == "segmentation-harness"
            assert component.version == harness.__version__
    assert (
        registry.get("losses", "combo").provider()
        == f"builtin-losses (segmentation-harness {harness.__version__})"
    )


def test_components_are_sorted_and_all_lists_every_kind() -> None:
    registry = Registry.load()
    for kind in KINDS:
        names = list(registry.components(kind))
        assert names == sorted(names)
    everything = registry.all()
    assert all(isinstance(c, Registered) for c in everything)
    assert [c.kind for c in everything] == sorted((c.kind for c in everything), key=KINDS.index)
    assert {(c.kind, c.name) for c in everything} >= {
        (kind, name) for kind, names in BUILTIN.items() for name in names
    }


def test_plugin_manager_is_pluggy() -> None:
    registry = Registry.load()
    assert isinstance(registry.plugin_manager, pluggy.PluginManager)
    assert registry.plugin_manager.project_name == "harness"


def test_plugin_file(tmp_path: Path) -> None:
    path = loss_plugin(tmp_path, "my_plugin.py", "['my-focal', 'my-tversky']")
    registry = Registry.load([str(path)])
    focal = registry.get("losses", "my-focal")
    assert focal.provider() == "my_plugin.py (file)"
    assert focal.distribution is None and focal.version is None
    assert "dice" in registry.components("losses")  # the built-ins are still there


def test_plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loss_plugin(tmp_path, "harness_test_module_plugin.py", "['my-focal']")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry.load(["harness_test_module_plugin"], entry_points=False)
    assert registry.get("losses", "my-focal").provider() == "harness_test_module_plugin (module)"
    assert set(registry.components("losses")) == {"my-focal"}
    assert registry.components("models") == {}


def test_third_party_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loss_plugin(tmp_path, "harness_test_ep_plugin.py", "['my-focal']")
    fake_distribution(tmp_path, "foo-losses", "1.2", {"foo": "harness_test_ep_plugin"})
    monkeypatch.syspath_prepend(str(tmp_path))
    focal = Registry.load().get("losses", "my-focal")
    assert (focal.plugin, focal.distribution, focal.version) == ("foo", "foo-losses", "1.2")
    assert focal.provider() == "foo (foo-losses 1.2)"


def test_module_reached_twice_is_one_plugin() -> None:
    registry = Registry.load(["harness_plugins.losses"])
    assert registry.get("losses", "dice").plugin == "builtin-losses"


def test_components_are_computed_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "counting.py",
        """
        from harness import hookimpl

        CALLS = []

        @hookimpl
        def harness_losses():
            CALLS.append(1)
            return {"zeta": abs, "alpha": abs}
        """,
    )
    registry = Registry.load([str(path)], entry_points=False)
    assert list(registry.components("losses")) == ["alpha", "zeta"]
    registry.components("losses")
    registry.get("losses", "zeta")
    module = next(m for m in sys.modules.values() if getattr(m, "__file__", None) == str(path))
    assert module.CALLS == [1]


def test_registry_never_names_the_builtin_package() -> None:
    import harness.components.registry

    assert "harness_plugins" not in Path(harness.components.registry.__file__).read_text()


# -- Registered.build ------------------------------------------------------------------------


def test_build_turns_rejected_parameters_into_one_line() -> None:
    combo = Registry.load().get("losses", "combo")
    message = error_of(combo.build, dice=0.5, gamma=2)
    assert message.startswith(
        f"loss 'combo' from builtin-losses (segmentation-harness {harness.__version__}) "
        "rejected its parameters {'dice': 0.5, 'gamma': 2}: TypeError:"
    )
    assert message.endswith("; see `harness show losses combo`")


def test_build_passes_good_parameters() -> None:
    loss = Registry.load().get("losses", "combo").build(dice=1.0, bce=0.0)
    assert loss.dice_weight == 1.0


# -- user errors -----------------------------------------------------------------------------


def test_unknown_name_suggests_near_matches() -> None:
    registry = Registry.load()
    assert error_of(registry.get, "losses", "dcie") == (
        "unknown loss 'dcie'; did you mean: dice? (`harness list losses` shows all)"
    )


def test_unknown_name_lists_everything_when_nothing_is_close() -> None:
    registry = Registry.load()
    message = error_of(registry.get, "schedulers", "zzz")
    assert message.startswith("unknown scheduler 'zzz'; available: ")
    for name in BUILTIN["schedulers"]:
        assert name in message


def test_unknown_kind() -> None:
    message = error_of(Registry.load().components, "loss")
    assert "unknown component kind 'loss'" in message
    assert "losses" in message


def test_duplicate_name_names_both_providers(tmp_path: Path) -> None:
    path = loss_plugin(tmp_path, "my_plugin.py", "['dice']")
    registry = Registry.load([str(path)])
    assert error_of(registry.components, "losses") == (
        "loss 'dice' is offered by both "
        f"builtin-losses (segmentation-harness {harness.__version__}) and "
        "my_plugin.py (file); rename one or uninstall one"
    )


def test_duplicate_name_between_two_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = loss_plugin(tmp_path / "a", "one.py", "['my-focal']")
    second = loss_plugin(tmp_path / "b", "two.py", "['my-focal']")
    registry = Registry.load([str(first), str(second)], entry_points=False)
    message = error_of(registry.get, "losses", "my-focal")
    assert "one.py (file)" in message and "two.py (file)" in message


def test_entry_point_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "harness_test_broken_ep.py", "import harness_test_missing_dependency\n")
    fake_distribution(tmp_path, "foo", "1.2", {"x": "harness_test_broken_ep"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert error_of(Registry.load) == (
        "plugin 'x' from distribution foo 1.2 failed to import: ModuleNotFoundError: "
        "No module named 'harness_test_missing_dependency'; fix or uninstall foo"
    )


def test_plugin_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    message = error_of(Registry.load, [str(missing)], entry_points=False)
    assert f"plugin file '{missing}' not found" in message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import harness_test_missing_dependency\n", "ModuleNotFoundError: No module named"),
        ("def oops(:\n", "SyntaxError:"),
        ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ],
)
def test_plugin_file_that_fails_to_import(tmp_path: Path, source: str, expected: str) -> None:
    path = write(tmp_path, "broken.py", source)
    message = error_of(Registry.load, [str(path)], entry_points=False)
    assert message.startswith(f"plugin file '{path}' failed to import: {expected}")


def test_plugin_module_missing() -> None:
    message = error_of(Registry.load, ["harness_test_no_such_module"], entry_points=False)
    assert message.startswith("plugin module 'harness_test_no_such_module' not found")


def test_plugin_module_that_fails_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "harness_test_broken_module.py", "import harness_test_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = error_of(Registry.load, ["harness_test_broken_module"], entry_points=False)
    assert message.startswith(
        "plugin module 'harness_test_broken_module' failed to import: ModuleNotFoundError: "
        "No module named 'harness_test_missing_dependency'"
    )


@pytest.mark.parametrize("name", ["Dice", "my_loss", "-dice", "dice-", "a--b", "", "dice loss", 3])
def test_bad_names(tmp_path: Path, name: object) -> None:
    path = loss_plugin(tmp_path, "naming.py", repr([name]))
    registry = Registry.load([str(path)], entry_points=False)
    message = error_of(registry.components, "losses")
    assert message.startswith(f"plugin naming.py (file) offers loss {name!r}: names are lower-case")


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("['my-focal']", "returned list, not a mapping of name to factory"),
        ("None", "returned NoneType, not a mapping of name to factory"),
        ("{'my-focal': 3}", "offers loss 'my-focal' as a int, not a callable factory"),
    ],
)
def test_bad_return_types(tmp_path: Path, returned: str, expected: str) -> None:
    path = write(
        tmp_path,
        "returns.py",
        f"""
        from harness import hookimpl

        @hookimpl
        def harness_losses():
            return {returned}
        """,
    )
    registry = Registry.load([str(path)], entry_points=False)
    message = error_of(registry.components, "losses")
    assert message.startswith("plugin returns.py (file)")
    assert expected in message


def test_hook_that_raises(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "raises.py",
        """
        from harness import hookimpl

        @hookimpl
        def harness_models():
            raise RuntimeError("no GPU")
        """,
    )
    registry = Registry.load([str(path)], entry_points=False)
    message = error_of(registry.components, "models")
    assert message.startswith(
        "plugin raises.py (file): harness_models() raised RuntimeError: no GPU"
    )


def test_misspelt_hook(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "typo.py",
        """
        from harness import hookimpl

        @hookimpl
        def harness_loss():
            return {}
        """,
    )
    message = error_of(Registry.load, [str(path)], entry_points=False)
    assert message.startswith(
        "plugin typo.py (file) implements unknown hook 'harness_loss'; did you mean harness_losses?"
    )


def test_hook_without_hookimpl(tmp_path: Path) -> None:
    path = write(tmp_path, "bare.py", "def harness_losses():\n    return {}\n")
    message = error_of(Registry.load, [str(path)], entry_points=False)
    assert "plugin bare.py (file) defines harness_losses() without @hookimpl" in message


def test_hook_with_arguments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "args.py",
        """
        from harness import hookimpl

        @hookimpl
        def harness_losses(config):
            return {}
        """,
    )
    message = error_of(Registry.load, [str(path)], entry_points=False)
    assert message.startswith("plugin args.py (file) has an invalid hook implementation")
    assert "config" in message
