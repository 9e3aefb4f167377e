"""The options of ``harness run``, ``sweep`` and ``tune``, made from the request's fields.

Each option field of ``harness.runs.requests`` declares its flag and help text once;
``request_options`` turns them into typer options for a command and hands the command
the ``RunRequest`` built from what was given. A new run option is one new field there.
An older spelling of an option (``--aug`` for ``--augmentation``) is a hidden option of
its own whose value goes to the same field.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any

import typer

from harness.errors import HarnessError
from harness.runs.requests import PARTS, RunRequest, flag, option_fields

_KEYWORD = inspect.Parameter.KEYWORD_ONLY


@dataclasses.dataclass(frozen=True)
class Override:
    """A command's own default and help for a shared option (``sweep``'s ``--model``)."""

    default: Any
    help: str


def _hints() -> dict[str, Any]:
    """Every request option's type, by field name."""
    hints: dict[str, Any] = {}
    for kind in (*PARTS.values(), RunRequest):
        hints.update(typing.get_type_hints(kind))
    return hints


def _parameter(f: dataclasses.Field, hint: Any, override: Override | None) -> inspect.Parameter:
    """The typer option for one request field (of the type the command line gives)."""
    spec = flag(f)
    default, help_text = f.default, spec.help
    if override is not None:
        default, help_text = override.default, override.help
    if typing.get_origin(hint) is tuple:  # repeatable: typer collects a list of texts
        hint, default = list[str] | None, None
    elif spec.read is not None:  # the option's text, read into the value by the request
        hint = str | None
    option = typer.Option(spec.name, help=help_text, hidden=spec.hidden)
    if default is dataclasses.MISSING:
        default = inspect.Parameter.empty  # a required option
    return inspect.Parameter(f.name, _KEYWORD, default=default, annotation=Annotated[hint, option])


def _aliases(main: inspect.Parameter, f: dataclasses.Field) -> dict[str, inspect.Parameter]:
    """A hidden option for each older spelling of ``f``'s flag, by its parameter's name."""
    hint = typing.get_args(main.annotation)[0]
    found = {}
    for alias in flag(f).aliases:
        name = f"{f.name}__{alias.lstrip('-').replace('-', '_')}"
        option = typer.Option(alias, hidden=True)
        found[name] = inspect.Parameter(
            name, _KEYWORD, default=None, annotation=Annotated[hint, option]
        )
    return found


def _merge_aliases(values: dict[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """``values`` with each hidden alias's value moved to its field (given twice: one line)."""
    values = dict(values)
    for name, field_name in aliases.items():
        value = values.pop(name, None)
        if value is None:
            continue
        if values.get(field_name) is not None:
            spec = flag(next(f for f in option_fields() if f.name == field_name))
            raise HarnessError(f"{spec.name} given twice (once as {', '.join(spec.aliases)})")
        values[field_name] = value
    return values


def check_folders(request: RunRequest) -> None:
    """``--runs-dir`` and ``--leaderboards-dir`` are folders (or can be made): one line, exit
    2, before anything is prepared or trained (``harness.paths.check_folder``)."""
    from harness.paths import check_folder

    check_folder(request.launch.runs_dir, "--runs-dir")
    if request.launch.leaderboards_dir is not None:
        check_folder(request.launch.leaderboards_dir, "--leaderboards-dir")


def request_options(
    *,
    leave_out: Collection[str] = (),
    overrides: Mapping[str, Override] | None = None,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command one option per ``RunRequest`` field, and it the request they make.

    The command takes ``request: RunRequest`` and its own options; its own options declared
    before ``request`` come first in ``--help``, the rest after the shared ones. Fields in
    ``leave_out`` keep their default; ``overrides`` changes a shared option's default and help.
    """
    overrides = overrides or {}

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        hints = _hints()
        shared, aliases = [], {}
        for f in option_fields():
            if f.name not in leave_out:
                shared.append(_parameter(f, hints[f.name], overrides.get(f.name)))
                hidden = _aliases(shared[-1], f)
                aliases.update(dict.fromkeys(hidden, f.name))
                shared += hidden.values()
        own = list(inspect.signature(command, eval_str=True).parameters.values())
        at = next(i for i, p in enumerate(own) if p.name == "request")
        before, after = own[:at], own[at + 1 :]
        names = {p.name for p in shared} - set(aliases)

        @functools.wraps(command)
        def with_request(**values: Any) -> None:
            values = _merge_aliases(values, aliases)
            request = RunRequest.from_options(**{k: v for k, v in values.items() if k in names})
            check_folders(request)  # before any work: a run never trains to find them files
            command(request=request, **{k: v for k, v in values.items() if k not in names})

        params = [p.replace(kind=_KEYWORD) for p in before] + shared
        params += [p.replace(kind=_KEYWORD) for p in after]
        with_request.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        with_request.__annotations__ = {p.name: p.annotation for p in params}
        return with_request

    return decorate
