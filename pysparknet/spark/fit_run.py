"""One fit's life on the driver, shared by fit() and fit_stream(): the cluster
checked, the starting point (fresh or a checkpoint), the run opened (its id,
the broadcast net definition, the listener for the workers' links), rounds run
with validation and checkpoints between them, and everything freed at the end.
"""
from __future__ import annotations

import logging
import socket
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from pyspark import InheritableThread

from ..errors import DataError, TrainingDivergedError
from ..outer import OuterOptimizer
from . import checkpoint, exchange_tls, executors, slots
from .round_log import RoundLog
from .solvers import NetSpec, release_task
from .training_set import TrainingSet, training_set, validation_arrays
from .transport import LinkListener

_LOG = logging.getLogger("pysparknet")
RELEASE_S = 15.0  # how long the end of a fit waits for its solvers to be freed
# Checkpoints written before these settings existed were written with these values.
_SETTINGS_BEFORE_THEY_WERE_WRITTEN = {"solver_state": "local", "outer": OuterOptimizer().config()}
_SETTING_NAMES = {"num_workers": "K", "outer": "outer optimizer"}


class FitRun:
    """What one fit holds open: its id (keys the workers' solvers), the broadcast net
    definition, the listener, the training partitions. trainer: the SparkNetTrainer
    whose settings, driver net and round driver the run uses."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.sc = trainer.sc
        self.run_id = uuid.uuid4().hex
        self.series = self.run_id[:12]  # the run's id in its records (and plots)
        self.spec = None
        self.listener: Optional[LinkListener] = None
        self.train: Optional[TrainingSet] = None

    # --- before the first round -----------------------------------------------
    def check_cluster(self, checkpoint_dir) -> None:
        """What the fit needs, checked before any work (not after round 1's training)."""
        trainer = self.trainer
        if checkpoint_dir is not None:
            checkpoint.check_writable(Path(checkpoint_dir))
        slots.wait_for_slots(self.sc, trainer.num_workers, trainer.faults.slots_timeout)
        if trainer.device == "gpu":
            slots.check_gpu_assignment(self.sc.getConf(), trainer.on_unassigned_gpu)
        executors.check_executors(self.sc, trainer.num_workers)

    def prepare(self, train_data, validation_data, checkpoint_dir, resume: bool,
                on_bad_record: str) -> tuple:
        """fit()'s start: the cluster checked, the training set cached, the validation
        set, the starting point found, the run opened: (validating, weights, history,
        first round)."""
        self.check_cluster(checkpoint_dir)
        train = self.training_set(train_data, on_bad_record)
        try:
            validating = self.set_validation(validation_data)
            weights, history, start = self.starting_point(checkpoint_dir, resume)
            self.open(train)
        except BaseException:
            train.unpersist()
            raise
        return validating, weights, history, start

    def training_set(self, data, on_bad_record: str) -> TrainingSet:
        trainer = self.trainer
        train = training_set(self.sc, data, trainer.num_workers, on_bad_record)
        need = trainer.num_workers * trainer.batch_size
        if train.count < need:
            train.unpersist()
            raise DataError(f"{train.count} training records cannot fill a minibatch of "
                            f"{trainer.batch_size} on each of {trainer.num_workers} workers "
                            f"(need >= {need})")
        return train

    def set_validation(self, data) -> bool:
        """The driver net's validation data (from arrays, records, a DataFrame or a
        stream); whether there is any."""
        validation = validation_arrays(data, self.trainer.num_workers)
        if validation is not None:
            self.trainer.driver_net.set_validation_data(validation)
        return validation is not None

    def starting_point(self, checkpoint_dir, resume: bool):
        """(weights, history, first round): the driver net's, or the checkpoint's."""
        trainer, driver_net = self.trainer, self.trainer.driver_net
        trainer.outer.velocity = None  # a fresh fit has no outer momentum yet
        averaging = trainer.solver_state == "average"
        trainer.round_driver.averaged_history = (
            np.zeros(driver_net.history_size(), np.float32) if averaging else None)
        found = None
        if checkpoint_dir is not None and resume:
            found = checkpoint.load(Path(checkpoint_dir), driver_net)
        elif checkpoint_dir is not None and (Path(checkpoint_dir) / "checkpoint.json").exists():
            warnings.warn(f"{checkpoint_dir} holds another run's checkpoint, which this run "
                          "replaces at its first checkpoint (resume=True continues it)",
                          stacklevel=4)  # the caller of fit(), through prepare()
        if found is None:
            return driver_net.get_weights(), [], 0
        self.series = found.history[-1].get("run", self.series) if found.history else \
            self.series
        if averaging:  # the averaged history is the driver solver's own
            trainer.round_driver.averaged_history = driver_net.get_history()
        self._check_same_run(found.meta)
        state = found.outer_state
        if state is not None and state.shape != found.weights.flat.shape:
            raise checkpoint.CheckpointError(
                f"{checkpoint_dir}: the outer optimizer's state holds {state.size} "
                f"floats, the net {found.weights.flat.size}")
        trainer.outer.velocity = state
        return found.weights, found.history, found.round

    def open(self, train: TrainingSet, buffer_records: Optional[int] = None) -> None:
        """Broadcast the solvers' definition and listen for the workers' links;
        buffer_records: a streamed fit's (its data comes with each micro-batch)."""
        trainer = self.trainer
        self.train = train
        self.spec = self.sc.broadcast(NetSpec(
            self.run_id, trainer.net_param.SerializeToString(),
            trainer.solver_param.SerializeToString(), trainer.device, trainer.seed,
            trainer.on_unassigned_gpu, trainer.solver_state,
            trainer.stragglers.round_seconds, buffer_records, trainer.exchange.dtype))
        bind, advertise = self._listen_addresses()
        self.listener = LinkListener(bind, advertise=advertise, tls=trainer.exchange.tls,
                                     ring=trainer.exchange.kind == "ring")
        if trainer.exchange.tls:
            exchange_tls.warn_if_rpc_in_clear(self.sc.getConf())
        else:
            _LOG.warning("the workers' links run without TLS (tls=False): the weights "
                         "and the run secret cross the network in clear")

    def _listen_addresses(self) -> tuple[str, str]:
        """(listen on, advertise) as Spark's driver does: spark.driver.bindAddress
        (default: the host) and spark.driver.host (default: this machine's name)."""
        conf = self.sc.getConf()
        advertise = conf.get("spark.driver.host", None) or socket.gethostname()
        return conf.get("spark.driver.bindAddress", None) or advertise, advertise

    # --- rounds -----------------------------------------------------------------
    def run_rounds(self, start: int, weights, log: RoundLog,
                   until: Optional[Callable[[dict], bool]]):
        """Rounds start..log.rounds-1 (fewer if `until` says so): the last weights."""
        try:
            for r in range(start, log.rounds):
                weights, record = self.round(r, log.rounds, weights, log)
                if not self._after_round(log, r, weights, record, until):
                    break
        except TrainingDivergedError:
            if log.checkpoint_dir is not None:  # the last good weights, whatever round
                done = log.history[-1]["round"] if log.history else start
                self.checkpoint(log.checkpoint_dir, done, weights, log.history)
            raise
        return weights

    def round(self, r: int, rounds: int, weights, log: RoundLog):
        """Round r of `rounds`: (new weights, the round's record)."""
        return self.trainer.round_driver.run(r, rounds, self, weights, log)

    def _after_round(self, log: RoundLog, r: int, weights, record: dict, until) -> bool:
        """Validate, record, checkpoint, report; False when `until` ends the fit."""
        done = r + 1
        record["run"] = self.series  # a resumed run's rounds keep its first id
        if log.validating and (done % log.validate_every == 0 or done == log.rounds):
            self.validate(record, weights)
        log.history.append(record)
        log.report(record)
        stop = until is not None and until(record)
        due = log.checkpoint_every is not None and (
            done % log.checkpoint_every == 0 or done == log.rounds or stop)
        if due:
            self.checkpoint(log.checkpoint_dir, done, weights, log.history)
        return not stop

    def validate(self, record: dict, weights) -> None:
        """The weights tested on the driver's validation data, as the record's val_*."""
        tic = time.perf_counter()
        self.trainer.driver_net.set_weights(weights)
        record.update({f"val_{k}": v for k, v in self.trainer.driver_net.test().items()})
        record["validation_s"] = time.perf_counter() - tic

    def checkpoint(self, directory, round_done: int, weights, history: list,
                   extra: Optional[dict] = None) -> None:
        trainer, driver_net = self.trainer, self.trainer.driver_net
        driver_net.set_weights(weights)
        averaged = trainer.round_driver.averaged_history
        if averaged is not None:  # saved in the driver's .solverstate
            driver_net.set_history(averaged)
        driver_net.iteration = trainer.tau.iterations_before(round_done)
        checkpoint.save(Path(directory), driver_net, round_done, history,
                        {**self._settings(round_done), **(extra or {})},
                        outer_state=trainer.outer.velocity)

    # --- settings a checkpoint records ----------------------------------------
    def _settings(self, rounds_done: int) -> dict:
        """What a checkpoint records of this trainer, and a resumed one must match."""
        trainer = self.trainer
        return {**trainer.tau.describe(rounds_done), "num_workers": trainer.num_workers,
                "solver_state": trainer.solver_state, "outer": trainer.outer.config()}

    def _check_same_run(self, meta: dict) -> None:
        mine = self._settings(meta.get("round", 0))
        written = {key: meta.get(key, _SETTINGS_BEFORE_THEY_WERE_WRITTEN.get(key))
                   for key in mine}
        differ = [key for key in mine if written[key] != mine[key]]
        if differ:
            def text(settings):
                return ", ".join(f"{_SETTING_NAMES.get(k, k)}={settings[k]!r}" for k in differ)
            raise ValueError(f"the checkpoint was written with {text(written)}; this trainer "
                             f"has {text(mine)}")

    # --- the end ----------------------------------------------------------------
    def close(self) -> None:
        """End the open stage, free the workers' solvers, stop listening, unpersist."""
        self.trainer.round_driver.close()
        if self.train is not None:
            self._release_solvers()
        if self.listener is not None:
            self.listener.close()
        if self.spec is not None:
            self.spec.unpersist()
        if self.train is not None:
            self.train.unpersist()

    def _release_solvers(self) -> None:
        """Best effort, for up to RELEASE_S: free the run's solvers, over the data-free
        partitions, whose tasks go where the solvers were built. A worker missed here
        (an executor lost or cut off, whose task would wait for Spark to give up on
        it) frees them once they have been idle for solvers.ABANDONED_S."""
        group = f"sparknet-{self.run_id[:8]}-release"

        def release():
            self.sc.setJobGroup(group, "SparkNet: free the run's solvers")
            try:
                self.train.data_free.mapPartitions(release_task(self.run_id)).collect()
            except Exception:  # noqa: BLE001 - best effort
                pass
        thread = InheritableThread(target=release, daemon=True)
        thread.start()
        thread.join(RELEASE_S)
        if thread.is_alive():
            self.sc.cancelJobGroup(group)
