"""A fit's record in MLflow, the optional extra (pip install "pysparknet[mlflow]").

fit(mlflow=None) logs when the caller has imported mlflow and a run is active;
mlflow=True logs always (starting a run when none is active), mlflow=False never.
Into the run go the fit's settings as params, every round's numbers as metrics
(step: the round; timestamp: when the round ended), and at the end the latest
checkpoint, the metrics file and the final model as artifacts.

mlflow is never imported here unless mlflow=True asks for it, so without it
nothing changes. Everything after the run is chosen goes through MlflowClient
with the run's id, not the fluent API's thread-local active run.
"""
from __future__ import annotations

import logging
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import NetArgumentError
from ..predict import scoring_net
from ..prototxt import to_text
from . import checkpoint

_LOG = logging.getLogger("pysparknet")
INSTALL = 'pip install "pysparknet[mlflow]"'
# the solver's settings logged always (their effective value), and those logged when set
SOLVER_SETTINGS = ("type", "base_lr", "lr_policy", "momentum", "weight_decay")
SOLVER_SETTINGS_IF_SET = ("gamma", "power", "stepsize", "clip_gradients")
# the final model's files (model/), named as a saved SparkNetModel's (ml/model.py)
MODEL_FILES = {"net": "net.prototxt", "deploy": "deploy.prototxt",
               "solver": "solver.prototxt", "weights": "weights.caffemodel"}


def mlflow_for(mode: Optional[bool]):
    """The mlflow module a fit logs to, or None. Called before any work, so that
    mlflow=True without mlflow fails at once."""
    if mode is None:  # only a caller that imported mlflow can have a run active
        mlflow = sys.modules.get("mlflow")
        return mlflow if mlflow is not None and mlflow.active_run() is not None else None
    if mode is False:
        return None
    if mode is not True:
        raise ValueError(f"mlflow must be None (log into an active run), True or False, "
                         f"got {mode!r}")
    try:
        import mlflow
    except ImportError as error:
        raise ImportError("mlflow=True logs the fit to MLflow, which is not installed: "
                          f"{INSTALL}") from error
    return mlflow


def fit_params(trainer, rounds: Optional[int]) -> dict:
    """The fit's settings as MLflow params (strings; unset ones left out)."""
    tau = trainer.tau.spec
    settings = {
        "net": trainer.net_param.name, "num_workers": trainer.num_workers,
        "tau": tau if isinstance(tau, int) else "schedule", "rounds": rounds,
        "batch_size": trainer.batch_size, "device": trainer.device, "seed": trainer.seed,
        "schedule": trainer.schedule, "exchange": trainer.exchange.kind,
        "exchange_dtype": trainer.exchange.dtype, "tls": trainer.exchange.tls,
        "outer": trainer.outer.kind, "solver_state": trainer.solver_state,
        "round_seconds": trainer.stragglers.round_seconds,
        "min_workers": trainer.stragglers.min_workers}
    if not trainer.outer.is_plain:
        settings.update(outer_momentum=trainer.outer.momentum, outer_lr=trainer.outer.lr)
    solver = trainer.solver_param
    chosen = SOLVER_SETTINGS + tuple(n for n in SOLVER_SETTINGS_IF_SET if solver.HasField(n))
    settings.update({("solver_type" if name == "type" else name): _as_written(
        getattr(solver, name)) for name in chosen})
    return {key: str(value) for key, value in settings.items() if value is not None}


def _as_written(value):
    """A solver setting as its prototxt has it: float32 fields in their shortest form
    (0.01, not 0.009999999776482582)."""
    return repr(float(str(np.float32(value)))) if isinstance(value, float) else value


def round_metrics(record: dict, stamp_ms: int, metric_type) -> list:
    """The record's numbers (lists and the round itself left out) as MLflow Metrics."""
    return [metric_type(key, float(value), stamp_ms, record["round"])
            for key, value in record.items()
            if key != "round" and isinstance(value, (int, float))
            and not isinstance(value, bool)]


class FitTracker:
    """One fit's MLflow run: its id, the client that logs to it, and whether the fit
    started it (and so ends it)."""

    def __init__(self, mlflow, run_id: str, started: bool):
        from mlflow.entities import Metric, Param

        self.mlflow, self.run_id, self.started = mlflow, run_id, started
        self.client = mlflow.MlflowClient()
        self.metric_type, self.param_type = Metric, Param
        self.warned = False

    @classmethod
    def open(cls, mlflow, params: dict) -> "FitTracker":
        """The active run, or a new one: nested in the active run when that holds
        another fit's params (MLflow's params cannot change); params logged."""
        active = mlflow.active_run()
        tracker = None
        if active is not None:
            logged = mlflow.MlflowClient().get_run(active.info.run_id).data.params
            if all(logged.get(key, value) == value for key, value in params.items()):
                tracker = cls(mlflow, active.info.run_id, started=False)
        if tracker is None:
            tracker = cls(mlflow, mlflow.start_run(nested=active is not None).info.run_id,
                          started=True)
        try:
            tracker.client.log_batch(tracker.run_id, params=[
                tracker.param_type(key, value) for key, value in params.items()])
        except BaseException:
            if tracker.started:
                mlflow.end_run("FAILED")
            raise
        return tracker

    def log_round(self, record: dict) -> None:
        """The round's numbers, at step = its round, stamped with the time it ended."""
        metrics = round_metrics(record, int(time.time() * 1000), self.metric_type)
        self._tolerant(self.client.log_batch, self.run_id, metrics=metrics)

    def log_model(self, trainer) -> None:
        """The final weights and the prototxt that runs them, as model/."""
        with tempfile.TemporaryDirectory(prefix="pysparknet-model-") as folder:
            files = {kind: Path(folder) / name for kind, name in MODEL_FILES.items()}
            files["net"].write_text(to_text(trainer.net_param))
            files["solver"].write_text(to_text(trainer.solver_param))
            try:
                files["deploy"].write_text(to_text(scoring_net(trainer.net_param).net))
            except NetArgumentError:  # a net with no Input layer to score from
                pass
            trainer.driver_net.save(files["weights"])
            self.client.log_artifacts(self.run_id, folder, "model")

    def close(self, trainer, log, status: str) -> None:
        """The latest checkpoint and the metrics file (however the fit ended), the
        final model (after a fit that finished); the end of a run the fit started."""
        try:
            if log.checkpoint_dir is not None:
                for path in checkpoint.current_files(Path(log.checkpoint_dir)):
                    self._tolerant(self.client.log_artifact, self.run_id, str(path),
                                   "checkpoint")
            if log.metrics is not None:
                self._tolerant(self.client.log_artifact, self.run_id, log.metrics.name)
            if status == "FINISHED":
                self._tolerant(self.log_model, trainer)
        finally:
            if self.started:
                self.mlflow.end_run(status)

    def _tolerant(self, call, *args, **kwargs) -> None:
        """A fit outlives its tracking server: a failed log is warned of (once)."""
        try:
            call(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the training matters more
            if not self.warned:
                _LOG.warning("MLflow: logging to run %s failed (%s); the fit goes on",
                             self.run_id, error)
                self.warned = True


@contextmanager
def tracked_fit(mlflow, trainer, log):
    """Log the fit run inside the block into MLflow (mlflow: mlflow_for's module, or
    None for no tracking): params now, each round as `log` reports it, artifacts and
    the run's status when the block ends."""
    if mlflow is None:
        yield
        return
    tracker = FitTracker.open(mlflow, fit_params(trainer, log.rounds))
    log.tracker = tracker
    status = "FAILED"
    try:
        yield
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.close(trainer, log, status)
