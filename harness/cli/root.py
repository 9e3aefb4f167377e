"""The root of the command line: the typer app, its two consoles, and the entry point.

Errors a user can fix print one line (``harness: error: ...``) and exit 2; a run that
failed, or a file that could not be written for lack of space, exits 1 with one line;
anything else is a bug and keeps its traceback. The commands live one
module each beside this one; ``harness.cli`` registers them on ``app``.

Text from outside (a path, an entry's name, a record's field) is never read as rich markup
or emoji codes: a command prints it with ``line`` or as ``text`` (a ``Text``), so a loss
named ``dice:smooth=[/x]`` is printed as it is, not parsed (and failed) as a closing tag.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from harness.atomic import cannot_write, out_of_space
from harness.errors import Detached, HarnessError, NotWritten, RunFailed

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark segmentation plugins under identical settings into leaderboards.",
)

out = Console()
err = Console(stderr=True)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    del debug  # main() reads --debug from the command line itself, before typer parses it


def text(value: object, style: str = "") -> Text:
    """``value`` as the terminal shows it: its characters, never markup or emoji codes."""
    return Text(str(value), style=style)


def line(value: object, console: Console | None = None, style: str = "") -> None:
    """One line of plain text on stdout (or ``console``), never read as markup or emoji."""
    (console or out).print(text(value, style), soft_wrap=True)


def say(message: str) -> None:
    """An error line on stderr; from a rank other than 0 of a data-parallel run, marked so."""
    rank = os.environ.get("RANK", "0")
    if rank != "0":  # that rank's consoles are quiet, and its error may be the only one
        message = f"[rank {rank}] {message}"
    Console(stderr=True).print(text(message), highlight=False, soft_wrap=True)


def usage_error(exc: Any) -> str:
    """A bad option or argument in one line: what was wrong, a near match (hidden spellings
    left out), and where the options are listed."""
    ctx = exc.ctx
    message = exc.format_message()
    possibilities = getattr(exc, "possibilities", None)
    if possibilities:
        hidden = {o for p in ctx.command.params if getattr(p, "hidden", False) for o in p.opts}
        shown = sorted(set(possibilities) - hidden)
        message = exc.message + (f"; did you mean {' or '.join(shown)}?" if shown else "")
    names = []
    while ctx.parent is not None:  # the root's name is how Python was started: say harness
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    return f"{message.rstrip('.')} (see `{' '.join(['harness', *names])} --help`)"


def main() -> None:
    """Entry point: run the app and map errors to exit codes."""
    debug = "--debug" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)
    except HarnessError as exc:
        if debug:
            raise
        if not exc.echoed:
            say(f"harness: error: {exc}")
        sys.exit(2)
    except RunFailed as exc:
        if debug:
            raise
        if not exc.echoed:
            say(f"harness: {'error' if isinstance(exc, NotWritten) else 'run failed'}: {exc}")
        sys.exit(1)
    except Detached:  # runs left with a batch system (--detach): said already
        sys.exit(0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("harness: interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # typer's own click: bad options and arguments
        usage = getattr(exc, "ctx", None) is not None and hasattr(exc, "format_message")
        if usage and type(exc).__name__ != "NoArgsIsHelpError":  # (a bare command: its help)
            say(f"harness: error: {usage_error(exc)}")
            sys.exit(2)
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("harness: interrupted")
        sys.exit(130)
    except OSError as exc:  # a write the library did not expect to fail: a full disk
        if debug or not out_of_space(exc):
            raise
        say(f"harness: error: {cannot_write(exc)}")
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
