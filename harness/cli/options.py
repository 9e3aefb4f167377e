"""The options of ``harness run`` and ``harness sweep``, made from ``RunRequest``'s fields.

Each field of ``harness.runs.requests.RunRequest`` declares its flag and help text once;
``request_options`` turns them into typer options for a command and hands the command
the ``RunRequest`` built from what was given. A new run option is one new field there.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Annotated, Any

import typer

from harness.runs.requests import RunRequest, flag

_KEYWORD = inspect.Parameter.KEYWORD_ONLY


@dataclasses.dataclass(frozen=True)
class Override:
    """A command's own default and help for a shared option (``sweep``'s ``--model``)."""

    default: Any
    help: str


#: ``--nproc``, which ``run`` and ``sweep`` read before any request is made.
Nproc = Annotated[
    int,
    typer.Option(help="Train data-parallel over N processes (torch.distributed.run, as torchrun)"),
]


def _parameter(f: dataclasses.Field, hint: Any, override: Override | None) -> inspect.Parameter:
    """The typer option for one ``RunRequest`` field."""
    spec = flag(f)
    default, help_text = f.default, spec.help
    if override is not None:
        default, help_text = override.default, override.help
    if typing.get_origin(hint) is Sequence:  # repeatable: typer collects a list
        hint, default = list[typing.get_args(hint)[0]] | None, None
    option = typer.Option(spec.name, help=help_text, hidden=spec.hidden)
    if default is dataclasses.MISSING:
        default = inspect.Parameter.empty  # a required option
    return inspect.Parameter(f.name, _KEYWORD, default=default, annotation=Annotated[hint, option])


def _request(values: Mapping[str, Any]) -> RunRequest:
    """The request from the options' values (a repeatable option not given: ``()``)."""
    hints = typing.get_type_hints(RunRequest)
    return RunRequest(
        **{
            name: tuple(value or ()) if typing.get_origin(hints[name]) is Sequence else value
            for name, value in values.items()
        }
    )


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
        hints = typing.get_type_hints(RunRequest)
        shared = [
            _parameter(f, hints[f.name], overrides.get(f.name))
            for f in dataclasses.fields(RunRequest)
            if f.name not in leave_out
        ]
        own = list(inspect.signature(command, eval_str=True).parameters.values())
        at = next(i for i, p in enumerate(own) if p.name == "request")
        before, after = own[:at], own[at + 1 :]
        names = {p.name for p in shared}

        @functools.wraps(command)
        def with_request(**values: Any) -> None:
            request = _request({k: v for k, v in values.items() if k in names})
            command(request=request, **{k: v for k, v in values.items() if k not in names})

        params = [p.replace(kind=_KEYWORD) for p in before] + shared
        params += [p.replace(kind=_KEYWORD) for p in after]
        with_request.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        with_request.__annotations__ = {p.name: p.annotation for p in params}
        return with_request

    return decorate
