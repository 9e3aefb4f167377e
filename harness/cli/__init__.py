"""The command line: each command parses, calls one library function, renders.

One module per command (``run``, ``sweep``, ``tune``, ``listing`` for ``list``, ``show``,
``leaderboard``, ``evaluate``, ``compare``, ``power``, ``cost``, ``predict``, ``select``,
``export``, ``check_plugin``) or command group (``data``); ``root`` holds the app, its consoles
and the entry point ``main``, which maps errors to exit codes; ``launch`` what run, sweep and
tune share. This module only assembles them, in the order ``harness --help`` lists them.
"""

from harness.cli import (
    check_plugin,
    compare,
    cost,
    data,
    evaluate,
    export,
    leaderboard,
    listing,
    power,
    predict,
    rank,
    run,
    select,
    show,
    sweep,
    tune,
)
from harness.cli.root import app, main

app.command()(run.run)
app.command()(sweep.sweep)
app.command()(tune.tune)
app.command("list")(listing.list_)
app.command()(show.show)
app.command()(leaderboard.leaderboard)
app.command()(evaluate.evaluate)
app.command()(compare.compare)
app.command()(power.power)
app.command()(cost.cost)
app.command()(predict.predict)
app.command()(select.select)
app.command()(export.export)
app.command("check-plugin")(check_plugin.check_plugin)
app.add_typer(data.app, name="data")
app.command("rank", hidden=True)(rank.rank)

__all__ = ["app", "main"]
