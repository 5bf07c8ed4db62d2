"""The SparkNet driver loop (Moritz et al., ICLR 2016, Algorithm 1).

Each round: send the current weights to every worker; each sets them on its
persistent solver and trains tau iterations on its own cached partition; the
driver takes the mean of the K workers' weights (rounds.py). Here: checking
the cluster, preparing the training partitions, the exchange, and between
rounds validation, checkpoints and metrics, on the driver.
"""
from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..data.bad_records import BadRecords
from ..data.spark_sources import dataframe_records
from ..data.streams import StreamSource
from ..errors import DataError
from ..net import Net, TRAIN
from ..outer import OuterOptimizer
from ..prototxt import Source, parse_net, parse_solver
from ..weights import WeightCollection
from . import checkpoint, exchange_tls, executors, slots
from .array_source import array_partitions, check_parallelized_size, is_arrays
from .failures import worker_failure
from .loop import FitLoop
from .rounds import RoundRunner, Run, TrainingDivergedError, TrainingSet
from .tau import TauSchedule, TauSpec
from .transport import WeightExchange
from .worker import NetSpec, check_slice, release, stack_partition


_LOG = logging.getLogger("pysparknet")
SOLVER_STATES = ("local", "reset", "average")
ROUND_MODES = ("segments", "jobs")
# Checkpoints written before these settings existed were written with these values.
_SETTINGS_BEFORE_THEY_WERE_WRITTEN = {"solver_state": "local", "outer": OuterOptimizer().config()}
_SETTING_NAMES = {"num_workers": "K", "outer": "outer optimizer"}


@dataclass
class FitResult:
    weights: WeightCollection
    history: list[dict] = field(default_factory=list)


def _read_and_drop(records):
    for _ in records:  # read it all: a Python worker that leaves input unread exits
        pass
    return iter(())


def _data_free(rdd):
    """A cached RDD of rdd's partitions emptied, each cached with rdd's own block.

    A round's task over it prefers the executor that holds its partition (and
    the solver built from it) but ships no records to Python: rounds over the
    cached arrays themselves would send each partition to the Python worker
    every round (155 ms more per round for 98 MB partitions, about 1.6 s a GB;
    bench/bench_spark_job_latency.py).
    """
    emptied = rdd.mapPartitions(_read_and_drop).cache()
    emptied.count()
    return emptied


def _round_mode(rounds: Optional[str], sync: str, conf) -> str:
    """'segments' (the default over the exchange) or 'jobs' (sync='spark's only way)."""
    if rounds is None:
        rounds = "segments" if sync == "socket" else "jobs"
    if rounds not in ROUND_MODES:
        raise ValueError(f"rounds must be 'segments' (many rounds in one barrier stage) or "
                         f"'jobs' (one Spark job a round), got {rounds!r}")
    if rounds == "segments" and sync != "socket":
        raise ValueError("rounds='segments' steps through rounds over the weight exchange: "
                         "it needs sync='socket' (use rounds='jobs' with sync='spark')")
    if rounds == "segments" and conf.get("spark.dynamicAllocation.enabled",
                                         "false").lower() == "true":
        raise ValueError("rounds='segments' runs barrier stages, which Spark does not run "
                         "with spark.dynamicAllocation.enabled: turn it off, or use "
                         "rounds='jobs'")
    return rounds


def _check_stragglers(round_seconds, min_workers, num_workers: int, mode: str) -> None:
    if round_seconds is not None and (isinstance(round_seconds, bool) or not isinstance(
            round_seconds, (int, float)) or not round_seconds > 0):
        raise ValueError(f"round_seconds must be a number of seconds > 0, got "
                         f"{round_seconds!r}")
    if min_workers is not None and (isinstance(min_workers, bool) or not isinstance(
            min_workers, int) or not 1 <= min_workers <= num_workers):
        raise ValueError(f"min_workers must be a whole number from 1 to num_workers "
                         f"({num_workers}), got {min_workers!r}")
    if (round_seconds is not None or min_workers is not None) and mode != "segments":
        raise ValueError("round_seconds and min_workers need rounds='segments' (the driver "
                         "weighs and closes rounds over the workers' links)")


def _check_options(num_workers, sync: str, on_unassigned_gpu: str, solver_state: str):
    if not isinstance(num_workers, int) or num_workers <= 0:
        raise ValueError(f"num_workers must be >= 1, got {num_workers!r}")
    if sync not in ("socket", "spark"):
        raise ValueError(f"sync must be 'socket' (direct TCP to the driver) or 'spark' "
                         f"(broadcast + task results), got {sync!r}")
    if on_unassigned_gpu not in ("warn", "error"):
        raise ValueError(f"on_unassigned_gpu must be 'warn' or 'error', got "
                         f"{on_unassigned_gpu!r}")
    if solver_state not in SOLVER_STATES:
        raise ValueError(f"solver_state must be one of {SOLVER_STATES}, got {solver_state!r}")


class SparkNetTrainer:
    """Data-parallel training of a Caffe net on Spark, as SparkNet does it.

    rounds: 'segments' (the default with sync='socket': one barrier-mode Spark
    stage runs the rounds up to the next checkpoint, the driver stepping the
    workers through them over the exchange) or 'jobs' (one Spark job a round;
    the only way with sync='spark'). Straggler-tolerant rounds (segments):
    round_seconds - each worker trains tau iterations or this long, whichever
    comes first, and the mean weighs each worker by the iterations it did;
    min_workers=M - a round closes once M of the K workers have reported, the
    others stop at their next iteration and their results are dropped.
    """

    def __init__(self, spark, net_params: Source, solver_params: Optional[Source] = None,
                 num_workers: int = 2, tau: TauSpec = 50, device: str = "cpu",
                 seed: Optional[int] = None,
                 sync: str = "socket", tls: bool = True, round_timeout: Optional[float] = None,
                 slots_timeout: float = 15.0, on_unassigned_gpu: str = "warn",
                 outer: Union[str, OuterOptimizer] = "plain", solver_state: str = "local",
                 rounds: Optional[str] = None, round_seconds: Optional[float] = None,
                 min_workers: Optional[int] = None):
        """tau: local iterations a round, or a function of the round (from 0)
        giving them (spark/tau.py). sync: 'socket' (the weights over the driver's
        TLS exchange) or 'spark' (broadcast + task results). tls=False: the
        exchange in clear, for trusted networks only. round_timeout: seconds a
        round's results may take before the fit fails (default: 10x the slowest
        recent round, at least 300 s; an hour for the first). slots_timeout: how
        long fit() waits for the cluster to offer num_workers task slots at once.
        on_unassigned_gpu: with device='gpu' and no GPU in Spark's task resources,
        'warn' (each worker uses gpu:0) or 'error'. outer: the driver's step with
        each round's averaged update - 'plain' (SparkNet's mean), 'bmuf',
        'nesterov', or an OuterOptimizer (pysparknet/outer.py). solver_state: each
        worker's solver history (momentum) between rounds - 'local' (kept, as
        SparkNet does), 'reset' (zeroed each round) or 'average' (averaged like
        the weights, traveling with them: twice the bytes for SGD). The iteration
        counter, and so Caffe's learning-rate schedule, follows the rounds run.
        rounds, round_seconds, min_workers: how rounds run (the class docstring)."""
        _check_options(num_workers, sync, on_unassigned_gpu, solver_state)
        self.spark, self.sc = spark, spark.sparkContext
        self.round_mode = _round_mode(rounds, sync, self.sc.getConf())
        _check_stragglers(round_seconds, min_workers, num_workers, self.round_mode)
        self.round_seconds, self.min_workers = round_seconds, min_workers
        slots.check_master(self.sc.master, num_workers)
        if solver_params is None:  # a zoo model brings its own
            solver_params = getattr(net_params, "solver", None)
        if solver_params is None:
            raise ValueError("SparkNetTrainer needs solver_params (or a zoo model, which "
                             "brings its own)")
        self.net_param = parse_net(net_params)
        self.solver_param = parse_solver(solver_params)
        self.tau = TauSchedule(tau)
        self.outer = outer if isinstance(outer, OuterOptimizer) else OuterOptimizer(outer)
        self.num_workers, self.device, self.seed = num_workers, device, seed
        self.sync, self.tls, self.slots_timeout = sync, tls, slots_timeout
        self.on_unassigned_gpu, self.solver_state = on_unassigned_gpu, solver_state
        # The driver's own net: initial weights, validation, checkpoints (CPU).
        self.driver_net = Net(self.net_param, self.solver_param, device="cpu", seed=seed)
        self.batch_size = self.driver_net.batch_size(TRAIN)
        self.rounds = RoundRunner(self.sc, num_workers, self.tau, self.batch_size, self.outer,
                                  round_timeout, self.round_mode, slots_timeout,
                                  timed=round_seconds is not None, min_workers=min_workers)

    # --- data ---------------------------------------------------------------
    def _as_records(self, data):
        """A DataFrame's (image, label) columns as an RDD of records, in K even partitions
        (a query's output may leave some empty); RDDs as they are."""
        is_dataframe = hasattr(data, "rdd") and hasattr(data, "columns")
        return dataframe_records(data.repartition(self.num_workers)) if is_dataframe else data

    def _training_rdd(self, train_data, on_bad_record: str):
        """The cached training partitions: one (images, labels) pair each."""
        train_data = self._as_records(train_data)
        bad = getattr(train_data, "bad_records", None)
        if bad is None:  # records as they are: non-finite numbers are their bad data
            bad = BadRecords(on_bad_record, self.sc.accumulator(0)
                             if on_bad_record == "skip" else None)
        slices = []
        if is_arrays(train_data):  # a broadcast slice per worker, no records pickled
            arrays, slices = array_partitions(self.sc, *train_data, self.num_workers)
            stacked = arrays.mapPartitionsWithIndex(partial(check_slice, bad=bad)).cache()
        else:
            stacked = self._stacked_records(train_data, bad)
        try:  # materialises the cache and checks every record's shape
            count = stacked.map(lambda arrays: len(arrays[1])).sum()
        except Exception as error:  # noqa: BLE001
            stacked.unpersist()
            for broadcast in slices:
                broadcast.unpersist()
            raise worker_failure(error) from error
        bad.report("training data")
        return TrainingSet(stacked, _data_free(stacked), count, slices=slices)

    def _stacked_records(self, train_data, bad):
        """An RDD of records -> cached partitions of one (images, labels) pair each."""
        check_parallelized_size(train_data)
        if train_data.getNumPartitions() != self.num_workers:
            train_data = train_data.repartition(self.num_workers)
        stacked = train_data.mapPartitionsWithIndex(
            partial(stack_partition, bad=bad)).cache()
        if self.sc.getCheckpointDir():
            # Cut the lineage: an RDD made by sc.parallelize carries its records in
            # every task it has, i.e. in every round. The checkpoint files still let
            # a lost executor's partition be read back.
            stacked.checkpoint()
        return stacked

    def _streamed(self, source: StreamSource):
        """One task per partition; each worker reads its part from the source itself."""
        if source.num_partitions != self.num_workers:
            raise DataError(f"the stream has {source.num_partitions} partitions; the trainer "
                            f"has {self.num_workers} workers: make one per worker")
        empty = [i for i, count in enumerate(source.counts) if count == 0]
        if empty:
            raise DataError(f"stream partition(s) {empty} hold no records")
        # Cached, so each round's task prefers the executor that ran it before, where
        # its solver lives (as the cached arrays do on the other path).
        tasks = self.sc.parallelize(range(self.num_workers), self.num_workers).cache()
        tasks.count()
        return TrainingSet(tasks, tasks, sum(source.counts), self.sc.broadcast(source))

    def _validation_arrays(self, validation_data):
        if validation_data is None or isinstance(validation_data, tuple):
            return validation_data
        if isinstance(validation_data, StreamSource):  # read here, on the driver
            records = [record for part in validation_data.parts for record in part]
        else:
            records = self._as_records(validation_data).collect()
        return np.stack([np.asarray(r[0]) for r in records]), np.asarray([r[1] for r in records])

    # --- the loop -----------------------------------------------------------
    def fit(self, train_data, validation_data=None, rounds: int = 10,
            checkpoint_dir: Union[str, Path, None] = None, resume: bool = False,
            validate_every: int = 1, checkpoint_every: int = 1,
            metrics_path: Union[str, Path, None] = None, progress: bool = True,
            until: Optional[Callable[[dict], bool]] = None,
            on_bad_record: str = "error") -> FitResult:
        """Train `rounds` rounds (fewer if `until(record)` says so after a round).

        train_data: (images, labels) numpy arrays on the driver (each worker
        fetches one contiguous slice, as a broadcast of its own); an RDD of
        (ndarray, label) records or a DataFrame (image and label columns), cached
        by the workers as arrays; or a StreamSource (data/streams.py) that the
        workers read from its source on every pass, for partitions larger than
        memory. on_bad_record ('error' or 'skip') applies to records with NaN or
        infinite numbers in an RDD's records (pysparknet.data sources carry their
        own policy).
        """
        self._check_cluster(checkpoint_dir)
        train = self._training_set(train_data, on_bad_record)
        try:
            validation = self._validation_arrays(validation_data)
            if validation is not None:
                self.driver_net.set_validation_data(validation)
            weights, history, start = self._starting_point(checkpoint_dir, resume)
            run = self._open_run(train)
        except BaseException:
            train.unpersist()
            raise
        loop = FitLoop(rounds, validation is not None, validate_every, checkpoint_dir,
                       checkpoint_every, metrics_path, progress, start, history)
        try:
            for r in range(start, rounds):
                weights, record = self.rounds.run(r, rounds, run, weights, loop)
                if not self._after_round(loop, r, weights, record, until):
                    break
        except TrainingDivergedError:
            if checkpoint_dir is not None:  # the last good weights, whatever round
                self._checkpoint(checkpoint_dir, history[-1]["round"] if history else start,
                                 weights, history)
            raise
        finally:
            self.rounds.finish()
            loop.close()
            self._close_run(run)
        self.driver_net.set_weights(weights)
        return FitResult(weights, history)

    def fit_stream(self, stream_df, validation_data=None,
                   checkpoint_dir: Union[str, Path, None] = None, rounds_per_batch: int = 1,
                   buffer_records: int = 4096, validate_every: int = 1,
                   metrics_path: Union[str, Path, None] = None, progress: bool = True,
                   on_bad_record: str = "error", image_col: Optional[str] = None,
                   label_col: Optional[str] = None, shape=None, color=None,
                   trigger: Optional[dict] = None, query_name: Optional[str] = None):
        """Train on a streaming DataFrame as its micro-batches arrive; returns a
        StreamTraining (spark/streaming.py: await_termination(), stop(), history).

        Each micro-batch (columns as fit's DataFrames: image_col, label_col, shape,
        color) is split among the K workers; each adds its share to its buffer of
        the most recent `buffer_records` records, and `rounds_per_batch` rounds of
        tau iterations train on the buffers, newest records first. Validation every
        `validate_every` trained batches. checkpoint_dir holds the model's checkpoint
        (model/, written after every batch) and the query's (stream/, its
        checkpointLocation): started again on the same folder, the training resumes
        both, and every micro-batch is trained on exactly once. Bad records: counted
        and skipped ('skip'), or ('error') the query stops, raising DataError naming
        the batch and record from await_termination(). trigger: the query's trigger
        (e.g. {"availableNow": True}, {"processingTime": "10 seconds"}); backpressure
        is the source's own (maxFilesPerTrigger, maxOffsetsPerTrigger).
        """
        from . import streaming

        streaming._check_stream_options(stream_df, rounds_per_batch, buffer_records,
                                        validate_every, on_bad_record)
        options = {"rounds_per_batch": rounds_per_batch, "buffer_records": buffer_records,
                   "image_col": image_col, "label_col": label_col, "shape": shape,
                   "color": color, "on_bad_record": on_bad_record}
        loop_options = {"validate_every": validate_every, "metrics_path": metrics_path,
                        "progress": progress}
        return streaming.start(self, stream_df, validation_data, checkpoint_dir, options,
                               loop_options, {"trigger": trigger, "query_name": query_name})

    def _check_cluster(self, checkpoint_dir) -> None:
        """What the fit needs, checked before any work (not after round 1's training)."""
        if checkpoint_dir is not None:
            checkpoint.check_writable(Path(checkpoint_dir))
        slots.wait_for_slots(self.sc, self.num_workers, self.slots_timeout)
        if self.device == "gpu":
            slots.check_gpu_assignment(self.sc.getConf(), self.on_unassigned_gpu)
        executors.check_executors(self.sc, self.num_workers)

    def _training_set(self, train_data, on_bad_record: str) -> TrainingSet:
        if isinstance(train_data, StreamSource):
            train = self._streamed(train_data)
        else:
            train = self._training_rdd(train_data, on_bad_record)
        batch, count = self.batch_size, train.count
        if count < self.num_workers * batch:
            train.unpersist()
            raise DataError(f"{count} training records cannot fill a minibatch of {batch} on "
                            f"each of {self.num_workers} workers (need >= "
                            f"{self.num_workers * batch})")
        return train

    def _starting_point(self, checkpoint_dir, resume: bool):
        """(weights, history, first round): the driver net's, or the checkpoint's."""
        self.outer.velocity = None  # a fresh fit has no outer momentum yet
        averaging = self.solver_state == "average"
        self.rounds.history = (np.zeros(self.driver_net.history_size(), np.float32)
                               if averaging else None)
        if checkpoint_dir is not None and resume:
            found = checkpoint.load(Path(checkpoint_dir), self.driver_net)
            if found is not None:
                if averaging:  # the averaged history is the driver solver's own
                    self.rounds.history = self.driver_net.get_history()
                self._check_same_run(found.meta)
                state = found.outer_state
                if state is not None and state.shape != found.weights.flat.shape:
                    raise checkpoint.CheckpointError(
                        f"{checkpoint_dir}: the outer optimizer's state holds {state.size} "
                        f"floats, the net {found.weights.flat.size}")
                self.outer.velocity = state
                return found.weights, found.history, found.round
        return self.driver_net.get_weights(), [], 0

    def _open_run(self, train: Optional[TrainingSet],
                  buffer_records: Optional[int] = None) -> Run:
        """The run's id, solver definition and exchange; buffer_records: a streamed
        fit's (its training set comes with each micro-batch)."""
        run_id = uuid.uuid4().hex
        spec = self.sc.broadcast(NetSpec(run_id, self.net_param.SerializeToString(),
                                         self.solver_param.SerializeToString(), self.device,
                                         self.seed, self.on_unassigned_gpu, self.solver_state,
                                         self.round_seconds, buffer_records))
        exchange = None
        if self.sync == "socket":
            bind, advertise = self._exchange_addresses()
            exchange = WeightExchange(bind, advertise=advertise, tls=self.tls)
            if self.tls:
                exchange_tls.warn_if_rpc_in_clear(self.sc.getConf())
            else:
                _LOG.warning("the weight exchange runs without TLS (tls=False): the weights "
                             "and the run secret cross the network in clear")
        return Run(run_id, spec, exchange, train)

    def _close_run(self, run: Run) -> None:
        self._release(run)
        if run.exchange is not None:
            run.exchange.close()
        run.spec.unpersist()
        if run.train is not None:
            run.train.unpersist()

    def _after_round(self, loop: FitLoop, r: int, weights, record: dict, until) -> bool:
        """Validate, record, checkpoint, report; False when `until` ends the fit."""
        done = r + 1
        if loop.validating and (done % loop.validate_every == 0 or done == loop.rounds):
            self._validate(record, weights)
        loop.history.append(record)
        loop.report(record)
        stop = until is not None and until(record)
        due = done % loop.checkpoint_every == 0 or done == loop.rounds or stop
        if loop.checkpoint_dir is not None and due:
            self._checkpoint(loop.checkpoint_dir, done, weights, loop.history)
        return not stop

    def _validate(self, record: dict, weights) -> None:
        """The weights tested on the driver's validation data, as the record's val_*."""
        self.driver_net.set_weights(weights)
        record.update({f"val_{k}": v for k, v in self.driver_net.test().items()})

    def _checkpoint(self, directory, round_done, weights, history, extra=None):
        self.driver_net.set_weights(weights)
        if self.rounds.history is not None:  # saved in the driver's .solverstate
            self.driver_net.set_history(self.rounds.history)
        self.driver_net.iteration = self.tau.iterations_before(round_done)
        checkpoint.save(Path(directory), self.driver_net, round_done, history,
                        {**self._settings(round_done), **(extra or {})},
                        outer_state=self.outer.velocity)

    def _settings(self, rounds_done: int) -> dict:
        """What a checkpoint records of this trainer, and a resumed one must match."""
        return {**self.tau.describe(rounds_done), "num_workers": self.num_workers,
                "solver_state": self.solver_state, "outer": self.outer.config()}

    def _exchange_addresses(self) -> tuple[str, str]:
        """(listen on, advertise) as Spark's driver does: spark.driver.bindAddress
        (default: the host) and spark.driver.host (default: this machine's name)."""
        conf = self.sc.getConf()
        advertise = conf.get("spark.driver.host", None) or socket.gethostname()
        return conf.get("spark.driver.bindAddress", None) or advertise, advertise

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

    def _release(self, run: Run) -> None:
        """Best effort: free the run's solvers. Over the data-free partitions, whose
        tasks go where the solvers were built (a worker missed here frees them once
        they have been idle for worker.ABANDONED_S)."""
        def free(records):
            for _ in records:  # read it all: a worker that leaves input unread exits
                pass
            yield release(run_id)
        run_id = run.run_id
        try:
            run.train.data_free.mapPartitions(free).collect()
        except Exception:  # noqa: BLE001 - best effort
            pass
