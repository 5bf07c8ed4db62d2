"""SparkNetTrainer: the API of SparkNet on Spark (Moritz et al., ICLR 2016).

Each round the driver sends the current weights to K workers; each sets them on
its persistent solver and trains tau iterations on its own cached partition;
the driver takes the mean. The machinery is below: fit_run.py (a fit's life),
round_driver.py (one round's mean and record), the schedules
(schedule_segments.py, schedule_jobs.py) on stages (stage.py) over the link
(link_driver_end.py / link_worker_end.py), and the executors' side
(worker_task.py, solvers.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

from ..net import TRAIN, Net
from ..outer import OuterOptimizer
from ..prototxt import Source, parse_net, parse_solver
from ..weights import WeightCollection
from . import options, slots, tracking
from .fit_run import FitRun
from .options import Exchange, Faults, Stragglers
from .round_driver import RoundDriver
from .round_log import RoundLog
from .schedule_jobs import JobSchedule
from .schedule_segments import SegmentSchedule
from .tau import TauSchedule, TauSpec
from .worker_task import run_stage_task


@dataclass
class FitResult:
    weights: WeightCollection
    history: list[dict] = field(default_factory=list)


class SparkNetTrainer:
    """Data-parallel training of a Caffe net on Spark, as SparkNet does it.

    Args:
        spark: the SparkSession whose executors train (local-cluster, standalone,
            YARN, Kubernetes); one task slot per worker at once.
        net_params: the net (prototxt text or path, a caffe_pb2.NetParameter, or
            a zoo model, which brings its solver).
        solver_params: the solver (prototxt text or a caffe_pb2.SolverParameter).
        num_workers: K, the workers (partitions, persistent solvers).
        tau: local iterations a round, or a function of the round (from 0)
            giving them (spark/tau.py).
        device: 'cpu', 'gpu' (the GPU Spark assigns each task) or 'gpu:N'.
        seed: seeds the driver's net and each worker's (seed + partition).
        outer: the driver's step with each round's averaged update: 'plain'
            (SparkNet's mean), 'bmuf', 'nesterov', or an OuterOptimizer.
        solver_state: each worker's solver history (momentum) between rounds:
            'local' (kept, as SparkNet does), 'reset' (zeroed each round) or
            'average' (averaged like the weights, traveling with them).
        schedule: 'segments' (the default: one barrier stage runs the rounds up
            to the next checkpoint) or 'jobs' (one ordinary Spark job a round:
            slots free between rounds, dynamic allocation allowed).
        exchange: how the weights travel (options.Exchange: kind 'driver' or
            'ring', tls); a string is the kind.
        stragglers: rounds that do not wait for the slowest worker
            (options.Stragglers: round_seconds, min_workers).
        faults: how long to wait before calling something lost
            (options.Faults: round_timeout, slots_timeout).
        on_unassigned_gpu: with device='gpu' and no GPU in Spark's task
            resources: 'warn' (each worker uses gpu:0) or 'error'.
        **flat_options: the earlier flat keywords, still taken (sync, tls,
            round_timeout, slots_timeout, rounds, round_seconds, min_workers):
            rounds= is schedule=, the others fields of the groups above.
    """

    def __init__(self, spark, net_params: Source, solver_params: Optional[Source] = None,
                 num_workers: int = 2, tau: TauSpec = 50, device: str = "cpu",
                 seed: Optional[int] = None, *, outer: Union[str, OuterOptimizer] = "plain",
                 solver_state: str = "local", schedule: Optional[str] = None,
                 exchange: Union[Exchange, str, None] = None,
                 stragglers: Optional[Stragglers] = None,
                 faults: Optional[Faults] = None, on_unassigned_gpu: str = "warn",
                 **flat_options):
        options.check_options(num_workers, on_unassigned_gpu, solver_state)
        self.spark, self.sc = spark, spark.sparkContext
        self._take_options(schedule, exchange, stragglers, faults, flat_options)
        options.check_stragglers(self.stragglers, num_workers)
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
        options.check_exchange(self.exchange, self.stragglers,
                               "plain" if self.outer.is_plain else self.outer.kind)
        self.num_workers, self.device, self.seed = num_workers, device, seed
        self.on_unassigned_gpu, self.solver_state = on_unassigned_gpu, solver_state
        # The driver's own net: initial weights, validation, checkpoints (CPU).
        self.driver_net = Net(self.net_param, self.solver_param, device="cpu", seed=seed)
        self.batch_size = self.driver_net.batch_size(TRAIN)
        self.round_driver = RoundDriver(self._schedule(), self.tau, self.batch_size,
                                        self.outer, self.faults.round_timeout,
                                        self.stragglers.active)

    def _take_options(self, schedule, exchange, stragglers, faults, flat: dict) -> None:
        """The option groups, from the groups given and the earlier flat keywords."""
        known = {"sync", "tls", "round_timeout", "slots_timeout", "rounds", "round_seconds",
                 "min_workers"}
        unknown = sorted(set(flat) - known)
        if unknown:
            raise TypeError(f"SparkNetTrainer got unexpected keyword(s) {unknown}")
        options.check_sync(flat.get("sync"))
        if schedule is not None and flat.get("rounds") is not None:
            raise ValueError("pass the schedule as schedule= or rounds=, not both")
        self.schedule = options.check_schedule(schedule or flat.get("rounds"),
                                               self.sc.getConf())
        if isinstance(exchange, str):  # exchange='ring' for Exchange(kind='ring')
            exchange = Exchange(kind=exchange)
        self.exchange = options.merged(Exchange(), exchange, {"tls": flat.get("tls")})
        self.stragglers = options.merged(Stragglers(), stragglers, {
            "round_seconds": flat.get("round_seconds"),
            "min_workers": flat.get("min_workers")})
        self.faults = options.merged(Faults(), faults, {
            "round_timeout": flat.get("round_timeout"),
            "slots_timeout": flat.get("slots_timeout")})

    def _schedule(self):
        kind = SegmentSchedule if self.schedule == "segments" else JobSchedule
        return kind(self.sc, run_stage_task, self.num_workers, self.faults.slots_timeout,
                    slots.max_task_attempts(self.sc),
                    weighted=self.stragglers.round_seconds is not None,
                    quorum=self.stragglers.min_workers, wire=self.exchange.dtype)

    def fit(self, train_data, validation_data=None, rounds: int = 10,
            checkpoint_dir: Union[str, Path, None] = None, resume: bool = False,
            validate_every: int = 1, checkpoint_every: int = 1,
            metrics_path: Union[str, Path, None] = None, progress: bool = True,
            until: Optional[Callable[[dict], bool]] = None,
            on_bad_record: str = "error", mlflow: Optional[bool] = None) -> FitResult:
        """Train `rounds` rounds (fewer if `until(record)` says so after a round).

        Args:
            train_data: (images, labels) numpy arrays on the driver (each worker
                fetches one contiguous slice, as a broadcast of its own); an RDD of
                (ndarray, label) records or a DataFrame (image and label columns),
                cached by the workers as arrays; or a StreamSource
                (data/streams.py) the workers read on every pass.
            validation_data: the same kinds (or None): tested on the driver.
            rounds: how many rounds to train (counting a resumed run's).
            checkpoint_dir: where checkpoints go (Caffe's .caffemodel and
                .solverstate, and the history).
            resume: start from checkpoint_dir's latest checkpoint, if any.
            validate_every: rounds between validations (and after the last).
            checkpoint_every: rounds between checkpoints (and after the last).
            metrics_path: a JSON-lines file, one record per round.
            progress: show progress (a bar on a terminal).
            until: called with each round's record; True ends the fit (the ring's
                next round, already started, finishes and is dropped).
            on_bad_record: 'error' or 'skip' for records with NaN or infinite
                numbers in an RDD's records (pysparknet.data sources carry their
                own policy).
            mlflow: log the fit to MLflow (spark/tracking.py): None logs into
                the active run, if any; True always (a new run if none is
                active; needs pysparknet[mlflow]); False never.

        Returns:
            FitResult: the final weights and one record per round.
        """
        mlflow_module = tracking.mlflow_for(mlflow)
        run = FitRun(self)
        validating, weights, history, start = run.prepare(
            train_data, validation_data, checkpoint_dir, resume, on_bad_record)
        log = RoundLog(rounds, validating, validate_every, checkpoint_dir, checkpoint_every,
                       metrics_path, progress, start, history)
        with tracking.tracked_fit(mlflow_module, self, log):
            try:
                weights = run.run_rounds(start, weights, log, until)
            finally:
                log.close()
                run.close()
            self.driver_net.set_weights(weights)
        return FitResult(weights, log.history)

    def fit_stream(self, stream_df, validation_data=None,
                   checkpoint_dir: Union[str, Path, None] = None, rounds_per_batch: int = 1,
                   buffer_records: int = 4096, validate_every: int = 1,
                   metrics_path: Union[str, Path, None] = None, progress: bool = True,
                   on_bad_record: str = "error", image_col: Optional[str] = None,
                   label_col: Optional[str] = None, shape=None, color=None,
                   trigger: Optional[dict] = None, query_name: Optional[str] = None):
        """Train on a streaming DataFrame as its micro-batches arrive.

        Each micro-batch is split among the K workers; each adds its share to its
        buffer of the most recent `buffer_records` records, and `rounds_per_batch`
        rounds of tau iterations train on the buffers, newest records first.

        Args:
            stream_df: a streaming DataFrame (spark.readStream...).
            validation_data: as fit's; tested every `validate_every` trained batches.
            checkpoint_dir: holds the model's checkpoint (model/, written after
                every batch) and the query's (stream/, its checkpointLocation):
                started again on the same folder, the training resumes both, and
                every micro-batch is trained on exactly once.
            rounds_per_batch: rounds trained on each micro-batch, as above.
            buffer_records: each worker's buffer of recent records, as above.
            validate_every: as fit's, counted in trained batches.
            metrics_path: as fit's.
            progress: as fit's.
            on_bad_record: 'skip' (counted) or 'error' (the query stops, raising
                DataError naming the batch and record from await_termination()).
            image_col: the image column, as fit's DataFrames.
            label_col: the label column, as fit's DataFrames.
            shape: reshapes raw bytes and arrays, as fit's DataFrames.
            color: picks encoded images' channels, as fit's DataFrames.
            trigger: the query's trigger (e.g. {"availableNow": True}).
            query_name: the streaming query's name.

        Returns:
            StreamTraining (spark/streaming.py): await_termination(), stop(), history.
        """
        from . import streaming

        streaming.check_stream_options(stream_df, rounds_per_batch, buffer_records,
                                       validate_every, on_bad_record)
        batch_options = {"rounds_per_batch": rounds_per_batch,
                         "buffer_records": buffer_records, "image_col": image_col,
                         "label_col": label_col, "shape": shape, "color": color,
                         "on_bad_record": on_bad_record}
        log_options = {"validate_every": validate_every, "metrics_path": metrics_path,
                       "progress": progress}
        return streaming.start(FitRun(self), stream_df, validation_data, checkpoint_dir,
                               batch_options, log_options,
                               {"trigger": trigger, "query_name": query_name})
