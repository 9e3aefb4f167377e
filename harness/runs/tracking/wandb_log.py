"""``--track wandb``: each run a Weights & Biases run, with what ``--track mlflow`` logs.

The project is the benchmark, the group the entry, the run named after the entry and the
seed; its config holds the params and tags of ``RunAbout``. W&B keeps its files in the run
folder (``RUN_DIR/wandb/``), so runs trained on Ray workers bring them back. ``WANDB_MODE=
offline`` works with no network (``wandb sync RUN_DIR/wandb/offline-run-*`` uploads later);
other ``WANDB_*`` variables (API key, entity, base URL) are W&B's own.

A resume continues the W&B run whose id ``tracking.json`` keeps (``resume="allow"``); steps
the service already has are not sent again (W&B's own ``run.step`` online, and the last
step sent, noted in ``tracking.json``, offline).

W&B is imported only here, when a run is tracked with it.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from harness.runs.tracking.about import read_state, write_state
from harness.runs.tracking.remote import RemoteLog, Scalar

__all__ = ["WandbLog"]


class WandbLog(RemoteLog):
    """A run's W&B run (see the module's documentation)."""

    name = "wandb"

    def _open(self, resumed_step: int | None) -> None:
        import wandb

        noted = read_state(self.folder).get(self.name, {}) if resumed_step is not None else {}
        self.run_id = str(noted.get("id") or secrets.token_hex(4))
        about = self.about
        self.run: Any = wandb.init(
            project=about.experiment,
            group=about.group,
            name=about.name,
            id=self.run_id,
            resume="allow",
            dir=str(self.folder),
            config={**about.params, **about.tags},
            tags=[about.params.get("protocol.name", ""), about.params.get("entry.model", "")],
            settings=wandb.Settings(console="off", silent=True),
        )
        #: Steps up to this one the service has: not sent again.
        self.floor = max(int(noted.get("step", 0)), int(self.run.step) - 1)
        self._note()

    def _note(self) -> None:
        write_state(self.folder, self.name, {"id": self.run_id, "step": self.floor})

    def _log(self, scalars: Sequence[Scalar]) -> None:
        fresh = sorted((s for s in scalars if s[2] > self.floor), key=lambda s: s[2])
        for step, group in groupby(fresh, key=lambda s: s[2]):
            self.run.log({key: value for key, value, _ in group}, step=step)
        if fresh:
            self.floor = max(self.floor, fresh[-1][2] - 1)  # the last step may get more
            self._note()

    def _image(self, key: str, picture: np.ndarray, step: int) -> None:
        import wandb

        if step > self.floor:
            self.run.log({key: wandb.Image(picture)}, step=step)

    def _end(self, status: str, files: Mapping[str, Path]) -> None:
        for name, path in files.items():
            base = self.folder
            if name != path.name:  # the record: a copy under a name of its own
                base, path = (
                    Path(self.run.dir),
                    Path(shutil.copyfile(path, Path(self.run.dir) / name)),
                )
            self.run.save(str(path), base_path=str(base), policy="now")  # linked, not copied
        self.run.finish(exit_code=0 if status == "succeeded" else 1)
