"""``--track mlflow``: each run an MLflow run.

The experiment is the benchmark; the run is named after the entry and the seed. Its params
are the protocol's fields and hash, the dataset, the seed and the entry's choices; its tags
the benchmark, the entry and each component's plugin and version; its metrics the loss at
every step and each epoch's lr, images/s and validation Dice (mean, and per class under
``val_dice/``); its images the preview at each validation; and a succeeded run's record,
``metrics.jsonl`` and pictures (and, with ``HARNESS_TRACK_WEIGHTS=1``, its final weights)
its artifacts.

``MLFLOW_TRACKING_URI`` chooses the server; without it the runs go to a local store in the
runs folder (``RUNS/mlflow.db``, artifacts in ``RUNS/mlartifacts``; ``mlflow ui
--backend-store-uri sqlite:///RUNS/mlflow.db`` shows them). A resume continues the MLflow
run that ``tracking.json`` names; what the service already has (the steps a killed run had
sent after its last checkpoint) is not sent again, so each step is logged once.

MLflow is imported only here, when a run is tracked with it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.runs.tracking.about import read_state, write_state
from harness.runs.tracking.remote import RemoteLog, Scalar

__all__ = ["LOCAL_STORE", "MLflowLog", "tracking_uri"]

#: The local store in the runs folder, when no ``MLFLOW_TRACKING_URI`` is set.
LOCAL_STORE = "mlflow.db"
_LOCAL_ARTIFACTS = "mlartifacts"
#: MLflow's HTTP retries unless the user set them: a server that is gone is given up on in
#: seconds, not after MLflow's default of seven retries over minutes.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
#: The run's status at MLflow, by the run's outcome.
_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "stopped": "KILLED"}
#: MLflow's limits on one ``log_batch``.
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}


def tracking_uri(runs_dir: Path) -> str:
    """``MLFLOW_TRACKING_URI``, or the local store in ``runs_dir``."""
    given = os.environ.get("MLFLOW_TRACKING_URI")
    if given:
        return given
    return f"sqlite:///{(Path(runs_dir) / LOCAL_STORE).resolve()}"


def _quiet() -> None:
    """MLflow's own info lines (its store's migrations) and urllib3's retry warnings off the
    terminal: a tracker that stops says so in one line of its own. Levels only ever raised."""
    for name, level in (("mlflow", logging.WARNING), ("alembic", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), level))
    pool = logging.getLogger("urllib3.connectionpool")
    pool.setLevel(max(pool.getEffectiveLevel(), logging.ERROR))
    for key, value in _HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


class MLflowLog(RemoteLog):
    """A run's MLflow run (see the module's documentation)."""

    name = "mlflow"

    def _open(self, resumed_step: int | None) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param, RunTag

        _quiet()  # after the import, which sets MLflow's logging up

        self.uri = tracking_uri(self.about.runs_dir)
        self.client = MlflowClient(tracking_uri=self.uri)
        noted = read_state(self.folder).get(self.name, {}) if resumed_step is not None else {}
        run_id = noted.get("run_id") if noted.get("tracking_uri") == self.uri else None
        #: The highest step the service has of each metric: not sent again.
        self.logged: dict[str, int] = {}
        if run_id is not None and self._continues(run_id):
            self.logged = self._logged_steps(run_id)
        else:
            run_id = self._create()
            write_state(self.folder, self.name, {"tracking_uri": self.uri, "run_id": run_id})
        self.run_id = run_id
        params = [Param(k, v) for k, v in self.about.params.items()]
        tags = [RunTag(k, v) for k, v in self.about.tags.items()]
        for chunk in _chunks(params, _BATCH["params"]):
            self.client.log_batch(run_id, params=chunk)
        for chunk in _chunks(tags, _BATCH["tags"]):
            self.client.log_batch(run_id, tags=chunk)

    def _continues(self, run_id: str) -> bool:
        """The noted run, set running again; False when the store no longer has it."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            return False
        self.client.update_run(run_id, status="RUNNING")
        return True

    def _create(self) -> str:
        from mlflow.exceptions import MlflowException

        name = self.about.experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            local = None  # a server chooses where artifacts go; the local store keeps them here
            if not os.environ.get("MLFLOW_TRACKING_URI"):
                local = (Path(self.about.runs_dir) / _LOCAL_ARTIFACTS).resolve().as_uri()
            try:
                experiment_id = self.client.create_experiment(name, artifact_location=local)
            except MlflowException:  # made meanwhile by a run beside this one
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        run = self.client.create_run(experiment_id, run_name=self.about.name)
        return run.info.run_id

    def _logged_steps(self, run_id: str) -> dict[str, int]:
        keys = self.client.get_run(run_id).data.metrics.keys()
        return {
            key: max(m.step for m in self.client.get_metric_history(run_id, key)) for key in keys
        }

    def _log(self, scalars: Sequence[Scalar]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        fresh = [
            Metric(key, value, now, step)
            for key, value, step in scalars
            if step > self.logged.get(key, -1)
        ]
        for chunk in _chunks(fresh, _BATCH["metrics"]):
            self.client.log_batch(self.run_id, metrics=chunk)

    def _image(self, key: str, picture: np.ndarray, step: int) -> None:
        self.client.log_image(self.run_id, picture, key=key, step=step)

    def _end(self, status: str, files: Mapping[str, Path]) -> None:
        with tempfile.TemporaryDirectory(prefix="harness-mlflow-") as renamed:
            for name, path in files.items():
                if name != path.name:  # the record: kept under a name of its own
                    path = Path(shutil.copyfile(path, Path(renamed) / name))
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status=_STATUS.get(status, "FAILED"))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
