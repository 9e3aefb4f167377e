"""The component registry: every model, loss, optimizer, scheduler, augmentation, test-time
augmentation and post-processor by name (the kinds of ``harness.components.kinds``).

Plugins are found in two ways, and the built-ins get no special treatment: every
entry point of the ``harness`` group (installed distributions, this one included),
then each ``--plugin`` given on the command line (a ``.py`` file or a module name).
Each hook implementation is called on its own so every component knows the plugin
and distribution that offered it; that provenance goes into ``harness list``, into
error messages and into every record.

Everything a user can get wrong here (a plugin that does not import, a misspelt
hook, a bad name, a name offered twice, a name that does not exist) is a one-line
``HarnessError`` that names the plugin and says what to do.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from harness.components import hookspecs
from harness.components.kinds import BY_PLURAL, COMPONENT_KINDS, HOOK_PREFIX
from harness.components.parameters import Parameters, parameters
from harness.errors import HarnessError, one_line

if TYPE_CHECKING:
    from harness.components.entry import Component

#: The kinds by their plural names, in table order (``harness.components.kinds``).
KINDS: tuple[str, ...] = tuple(kind.plural for kind in COMPONENT_KINDS)

#: The entry-point group (and pluggy project name) plugins register under.
GROUP = "harness"

#: Each kind's singular noun, as messages and entries spell it.
SINGULAR: dict[str, str] = {kind.plural: kind.field for kind in COMPONENT_KINDS}
_NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"


def _provider(plugin: str, distribution: str | None, version: str | None) -> str:
    """``builtin-losses (segmentation-harness 0.1.0)``, ``my_plugin.py (file)`` or
    ``my_module (module)``."""
    if distribution is not None:
        return f"{plugin} ({distribution}{f' {version}' if version else ''})"
    return f"{plugin} ({'file' if plugin.endswith('.py') else 'module'})"


@dataclass(frozen=True)
class Registered:
    """One registered factory: its kind, its public name, and the plugin that provides it.

    (An entry's choice of a component, a name with parameters, is
    ``harness.components.entry.Component``.)
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    #: Entry-point name, module name, or file name of the plugin that offered it.
    plugin: str
    distribution: str | None
    version: str | None

    def provider(self) -> str:
        """Who offers this component, for people: ``builtin-losses (segmentation-harness 0.1.0)``
        (``harness list``'s provider column)."""
        return _provider(self.plugin, self.distribution, self.version)

    @property
    def show_command(self) -> str:
        """The command that describes this component: ``harness show losses dice``."""
        return f"harness show {self.kind} {self.name}"

    def parameters(self) -> Parameters:
        """Its own parameters, from the factory's signature (the harness's arguments left out)."""
        return parameters(self.factory, BY_PLURAL[self.kind])

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Refuse, in one line, a parameter the factory's signature cannot take: an unknown
        name (where it takes no others), a harness argument, a value of the wrong type."""
        own = self.parameters()
        for key, value in params.items():
            problem = own.problem(key, value)
            if problem is not None:
                raise HarnessError(
                    f"{SINGULAR[self.kind]} '{self.name}' from {self.provider()}: {problem}; "
                    f"see `{self.show_command}`"
                )

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Call the factory; parameters it rejects become a ``HarnessError`` naming it."""
        try:
            return self.factory(*args, **kwargs)
        except (TypeError, ValueError, KeyError) as exc:
            raise HarnessError(
                f"{SINGULAR[self.kind]} '{self.name}' from {self.provider()} rejected its "
                f"parameters {kwargs!r}: {_describe(exc)}; see `{self.show_command}`"
            ) from exc


@dataclass(frozen=True)
class _Source:
    """Where a registered plugin came from (keyed by its pluggy name)."""

    label: str
    distribution: str | None
    version: str | None

    def describe(self) -> str:
        return _provider(self.label, self.distribution, self.version)


class Registry:
    """All components offered by the loaded plugins, by kind and name."""

    def __init__(self, plugin_manager: pluggy.PluginManager, sources: Mapping[str, _Source]):
        self._pm = plugin_manager
        self._sources = dict(sources)
        self._components: dict[str, dict[str, Registered]] = {}

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def load(cls, extra: Sequence[str] = (), *, entry_points: bool = True) -> Registry:
        """Load every ``harness`` entry point (unless ``entry_points=False``), then each extra.

        An extra is a path to a ``.py`` file or the name of an importable module.
        """
        pm = pluggy.PluginManager(GROUP)
        pm.add_hookspecs(hookspecs)
        sources: dict[str, _Source] = {}
        if entry_points:
            for ep in _harness_entry_points():
                _register(pm, sources, _load_entry_point(ep), _entry_point_source(ep))
        for spec in extra:
            plugin, source = _load_extra(spec)
            _register(pm, sources, plugin, source)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise _unknown_hook_error(pm, sources, exc.plugin) from exc
        return cls(pm, sources)

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (for hooks beyond the component hooks)."""
        return self._pm

    # -- lookup ---------------------------------------------------------------------------

    def components(self, kind: str) -> dict[str, Registered]:
        """Every component of ``kind``, sorted by name."""
        if kind not in KINDS:
            close = difflib.get_close_matches(kind, KINDS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise HarnessError(
                f"unknown component kind '{kind}'; {hint}choose one of: {', '.join(KINDS)}"
            )
        if kind not in self._components:
            self._components[kind] = self._collect(kind)
        return dict(self._components[kind])

    def get(self, kind: str, name: str) -> Registered:
        """The component ``name`` of ``kind``; an unknown name lists the near matches."""
        components = self.components(kind)
        if name in components:
            return components[name]
        noun = SINGULAR[kind]
        shows_all = f"(`harness list {kind}` shows all)"
        if not components:
            raise HarnessError(
                f"unknown {noun} '{name}'; no {kind} are installed "
                f"(add a plugin with --plugin or install one)"
            )
        close = difflib.get_close_matches(str(name), list(components), n=3, cutoff=0.6)
        if close:
            raise HarnessError(
                f"unknown {noun} '{name}'; did you mean: {', '.join(close)}? {shows_all}"
            )
        raise HarnessError(
            f"unknown {noun} '{name}'; available: {', '.join(components)} {shows_all}"
        )

    def check(self, kind: str, component: Component) -> Registered:
        """The component of an entry, checked before anything is built: its name known (an
        unknown one lists the near matches) and its parameters ones its factory's signature
        can take (``Registered.check_params``)."""
        registered = self.get(kind, component.name)
        registered.check_params(component.kwargs)
        return registered

    def all(self) -> list[Registered]:
        """Every component of every kind, by kind (in ``KINDS`` order) then name."""
        return [c for kind in KINDS for c in self.components(kind).values()]

    def _collect(self, kind: str) -> dict[str, Registered]:
        noun = SINGULAR[kind]
        hook_name = BY_PLURAL[kind].hook
        found: dict[str, Registered] = {}
        for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
            source = self._sources[impl.plugin_name]
            try:
                offered = impl.function()
            except Exception as exc:
                raise HarnessError(
                    f"plugin {source.describe()}: {hook_name}() raised {_describe(exc)}; "
                    f"fix or uninstall {source.distribution or source.label}"
                ) from exc
            if not isinstance(offered, Mapping):
                raise HarnessError(
                    f"plugin {source.describe()}: {hook_name}() returned "
                    f"{type(offered).__name__}, not a mapping of name to factory; "
                    f"return a dict such as {{'my-{noun}': factory}} ({{}} to offer nothing)"
                )
            for name, factory in offered.items():
                if not isinstance(name, str) or not _NAME_RE.match(name):
                    raise HarnessError(
                        f"plugin {source.describe()} offers {noun} {name!r}: names are lower-case "
                        f"letters and digits joined by hyphens (e.g. 'my-{noun}'); rename it"
                    )
                if not callable(factory):
                    raise HarnessError(
                        f"plugin {source.describe()} offers {noun} '{name}' as a "
                        f"{type(factory).__name__}, not a callable factory; map the name to a "
                        f"function that builds the {noun}"
                    )
                component = Registered(
                    kind=kind,
                    name=name,
                    factory=factory,
                    plugin=source.label,
                    distribution=source.distribution,
                    version=source.version,
                )
                if name in found:
                    raise HarnessError(
                        f"{noun} '{name}' is offered by both {found[name].provider()} and "
                        f"{component.provider()}; rename one or uninstall one"
                    )
                found[name] = component
        return dict(sorted(found.items()))


# -- plugin discovery ------------------------------------------------------------------------


def _harness_entry_points() -> list[metadata.EntryPoint]:
    """Entry points of the ``harness`` group, in a stable order."""
    eps = metadata.entry_points(group=GROUP)
    return sorted(eps, key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))


def _entry_point_source(ep: metadata.EntryPoint) -> _Source:
    if ep.dist is None:
        return _Source(ep.name, None, None)
    return _Source(ep.name, ep.dist.name, ep.dist.version)


def _load_entry_point(ep: metadata.EntryPoint) -> object:
    try:
        return ep.load()
    except Exception as exc:
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "an unknown distribution"
        culprit = ep.dist.name if ep.dist else ep.value
        raise HarnessError(
            f"plugin '{ep.name}' from distribution {dist} failed to import: {_describe(exc)}; "
            f"fix or uninstall {culprit}"
        ) from exc


def _load_extra(spec: str | os.PathLike[str]) -> tuple[object, _Source]:
    """Import one ``--plugin`` argument: a ``.py`` file path or a module name."""
    spec = os.fspath(spec)
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        return _load_file(Path(spec))
    return _load_module(spec)


def _load_file(path: Path) -> tuple[ModuleType, _Source]:
    if not path.is_file():
        raise HarnessError(
            f"plugin file '{path}' not found; pass --plugin a path to a .py file or a module name"
        )
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", resolved.stem)
    module_name = f"_harness_plugin_file_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise HarnessError(f"plugin file '{path}' cannot be imported; give it a .py suffix")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise HarnessError(
            f"plugin file '{path}' failed to import: {_describe(exc)}; "
            f"fix it or drop --plugin {path}"
        ) from exc
    return module, _Source(path.name, None, None)


def _load_module(name: str) -> tuple[ModuleType, _Source]:
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name is not None
        if missing and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise HarnessError(
                f"plugin module '{name}' not found; pass --plugin an importable module name "
                f"or a path to a .py file"
            ) from exc
        raise HarnessError(
            f"plugin module '{name}' failed to import: {_describe(exc)}; "
            f"fix it or drop --plugin {name}"
        ) from exc
    top = name.partition(".")[0]
    dists = metadata.packages_distributions().get(top, [])
    if dists:
        dist = sorted(dists)[0]
        return module, _Source(name, dist, metadata.version(dist))
    return module, _Source(name, None, None)


# -- registration --------------------------------------------------------------------------


def _register(
    pm: pluggy.PluginManager, sources: dict[str, _Source], plugin: object, source: _Source
) -> None:
    """Register ``plugin`` with pluggy under a unique name and remember where it came from."""
    if pm.is_registered(plugin):
        return  # the same module reached twice (e.g. an entry point and --plugin): one plugin
    _check_undecorated(plugin, source)
    name = source.label
    n = 1
    while pm.has_plugin(name) or name in sources:
        n += 1
        name = f"{source.label}#{n}"
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise HarnessError(
            f"plugin {source.describe()} has an invalid hook implementation: "
            f"{one_line(exc)}; harness hooks take no arguments (see harness.components.hookspecs)"
        ) from exc
    sources[name] = source


def _check_undecorated(plugin: object, source: _Source) -> None:
    """A ``harness_*`` function without ``@hookimpl`` would be ignored silently; refuse it."""
    for attr in dir(plugin):
        if not attr.startswith(HOOK_PREFIX):
            continue
        value = getattr(plugin, attr, None)
        if inspect.isroutine(value) and not hasattr(value, f"{GROUP}_impl"):
            raise HarnessError(
                f"plugin {source.describe()} defines {attr}() without @hookimpl; decorate it "
                f"(`from harness import hookimpl`)"
            )


def _unknown_hook_error(
    pm: pluggy.PluginManager, sources: Mapping[str, _Source], plugin: object
) -> HarnessError:
    plugin_name = pm.get_name(plugin)
    source = sources.get(plugin_name) if plugin_name else None
    who = source.describe() if source else repr(plugin)
    known = [name for name in dir(hookspecs) if name.startswith(HOOK_PREFIX)]
    unknown = sorted(
        name
        for name, caller in vars(pm.hook).items()
        if not name.startswith("_")
        and not caller.has_spec()
        and any(impl.plugin is plugin for impl in caller.get_hookimpls())
    )
    hook = unknown[0] if unknown else "?"
    close = difflib.get_close_matches(hook, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return HarnessError(
        f"plugin {who} implements unknown hook '{hook}'; {hint}"
        f"the hooks are {', '.join(known)} (see harness/components/hookspecs.py)"
    )
