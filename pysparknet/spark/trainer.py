"""The SparkNet driver loop (Moritz et al., ICLR 2016, Algorithm 1).

Each round: send the current weights to every worker; each sets them on its
persistent solver and trains tau iterations on its own cached partition; the
driver takes the mean of the K workers' weights. Spark schedules the round's
tasks; the weights go over direct TCP (transport.py, the default) or by Spark
broadcast and task results (sync="spark"). Validation, checkpoints and
metrics happen between rounds, on the driver.
"""
from __future__ import annotations

import json
import math
import socket
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..data.spark_sources import dataframe_records
from ..data.streams import StreamSource
from ..errors import DataError, SparkNetError
from ..net import Net, TRAIN
from ..prototxt import Source, parse_net, parse_solver
from ..weights import WeightCollection
from . import checkpoint
from .results import collect_stream
from .transport import WeightExchange
from .worker import NetSpec, release, stack_partition, train_round


class TrainingDivergedError(SparkNetError, FloatingPointError):
    """A round produced a non-finite loss; the last good weights were kept."""


@dataclass
class FitResult:
    weights: WeightCollection
    history: list[dict] = field(default_factory=list)


def _worker_failure(error: Exception) -> Exception:
    """Spark wraps a worker's exception in Java's; surface pysparknet's own message."""
    text = str(error)
    for kind in ("DataError", "NetArgumentError", "CaffeError", "FeedError", "TransportError"):
        marker = f"pysparknet.errors.{kind}: "
        if marker in text:
            # the last one: Python prints an exception's causes before it
            message = text.rsplit(marker, 1)[1].splitlines()[0]
            from .. import errors
            return getattr(errors, kind)(f"on a worker: {message}")
    return error


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


@dataclass
class _TrainingSet:
    """The training partitions as the rounds use them."""

    with_data: object  # an RDD whose tasks carry their data (or a stream's index)
    data_free: object  # the same partitions, placed alike, carrying nothing
    count: int  # records
    stream: object = None  # the broadcast StreamSource, when streamed
    solvers_built: bool = False  # after the first round: rounds may run data-free

    def unpersist(self) -> None:
        self.with_data.unpersist()
        self.data_free.unpersist()
        if self.stream is not None:
            self.stream.unpersist()


class SparkNetTrainer:
    """Data-parallel training of a Caffe net on Spark, as SparkNet does it."""

    def __init__(self, spark, net_params: Source, solver_params: Source, num_workers: int = 2,
                 tau: int = 50, device: str = "cpu", seed: Optional[int] = None,
                 sync: str = "socket"):
        if not isinstance(tau, int) or tau <= 0:
            raise ValueError(f"tau must be a positive number of iterations, got {tau!r}")
        if not isinstance(num_workers, int) or num_workers <= 0:
            raise ValueError(f"num_workers must be >= 1, got {num_workers!r}")
        self.spark = spark
        self.sc = spark.sparkContext
        self.net_param = parse_net(net_params)
        self.solver_param = parse_solver(solver_params)
        if sync not in ("socket", "spark"):
            raise ValueError(f"sync must be 'socket' (direct TCP to the driver) or 'spark' "
                             f"(broadcast + task results), got {sync!r}")
        self.num_workers, self.tau, self.device, self.seed = num_workers, tau, device, seed
        self.sync = sync
        # The driver's own net: initial weights, validation, checkpoints (CPU).
        self.driver_net = Net(self.net_param, self.solver_param, device="cpu", seed=seed)
        self.batch_size = self.driver_net.batch_size(TRAIN)
        self._warned_skips = False

    # --- data ---------------------------------------------------------------
    @staticmethod
    def _as_records(data):
        """A DataFrame's (image, label) columns as an RDD of records; RDDs as they are."""
        is_dataframe = hasattr(data, "rdd") and hasattr(data, "columns")
        return dataframe_records(data) if is_dataframe else data

    def _training_rdd(self, train_data):
        """The cached training partitions: one (images, labels) pair each."""
        train_data = self._as_records(train_data)
        bad = getattr(train_data, "bad_records", None)
        if train_data.getNumPartitions() != self.num_workers:
            train_data = train_data.repartition(self.num_workers)
        stacked = train_data.mapPartitionsWithIndex(stack_partition).cache()
        if self.sc.getCheckpointDir():
            # Cut the lineage: an RDD made by sc.parallelize carries its records in
            # every task it has, i.e. in every round. The checkpoint files still let
            # a lost executor's partition be read back.
            stacked.checkpoint()
        try:  # materialises the cache and checks every record's shape
            count = stacked.map(lambda arrays: len(arrays[1])).sum()
        except Exception as error:  # noqa: BLE001
            stacked.unpersist()
            raise _worker_failure(error) from error
        if bad is not None:
            bad.report("training data")
        return _TrainingSet(stacked, _data_free(stacked), count)

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
        return _TrainingSet(tasks, tasks, sum(source.counts), self.sc.broadcast(source))

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
            until: Optional[Callable[[dict], bool]] = None) -> FitResult:
        """Train `rounds` rounds (fewer if `until(record)` says so after a round).

        train_data: an RDD of (ndarray, label) records or a DataFrame (image and
        label columns), cached by the workers as arrays; or a StreamSource
        (data/streams.py) that the workers read from its source on every pass,
        for partitions larger than memory.
        """
        from tqdm import tqdm

        if isinstance(train_data, StreamSource):
            train = self._streamed(train_data)
        else:
            train = self._training_rdd(train_data)
        batch, count = self.batch_size, train.count
        if count < self.num_workers * batch:
            train.unpersist()
            raise DataError(f"{count} training records cannot fill a minibatch of {batch} on "
                            f"each of {self.num_workers} workers (need >= "
                            f"{self.num_workers * batch})")
        validation = self._validation_arrays(validation_data)
        if validation is not None:
            self.driver_net.set_validation_data(validation)

        weights, history, start = self.driver_net.get_weights(), [], 0
        if checkpoint_dir is not None and resume:
            found = checkpoint.load(Path(checkpoint_dir), self.driver_net)
            if found is not None:
                weights, history, start = found.weights, found.history, found.round
                self._check_same_run(found.meta)

        run_id = uuid.uuid4().hex
        spec = self.sc.broadcast(NetSpec(run_id, self.net_param.SerializeToString(),
                                         self.solver_param.SerializeToString(), self.device,
                                         self.seed))
        exchange = WeightExchange(self._driver_host()) if self.sync == "socket" else None
        metrics = None
        if metrics_path:
            Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
            metrics = open(metrics_path, "a")
        bar = tqdm(total=rounds, initial=start, unit="round", disable=not progress)
        started = time.perf_counter() - (history[-1]["elapsed_s"] if history else 0.0)
        try:
            for r in range(start, rounds):
                weights, record = self._round(r, rounds, train, spec, weights, exchange, started)
                if validation is not None and ((r + 1) % validate_every == 0 or r + 1 == rounds):
                    self.driver_net.set_weights(weights)
                    record.update({f"val_{k}": v for k, v in self.driver_net.test().items()})
                history.append(record)
                if metrics:
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                if checkpoint_dir is not None and ((r + 1) % checkpoint_every == 0
                                                   or r + 1 == rounds):
                    self._checkpoint(checkpoint_dir, r + 1, weights, history)
                bar.update(1)
                bar.set_postfix({k: f"{record[k]:.4g}" for k in
                                 ("loss", "val_accuracy", "images_per_s", "sync_s")
                                 if k in record})
                if until is not None and until(record):
                    if checkpoint_dir is not None and (r + 1) % checkpoint_every \
                            and r + 1 != rounds:
                        self._checkpoint(checkpoint_dir, r + 1, weights, history)
                    break
        except TrainingDivergedError:
            if checkpoint_dir is not None:  # the last good weights, whatever round
                self._checkpoint(checkpoint_dir, history[-1]["round"] if history else start,
                                 weights, history)
            raise
        finally:
            bar.close()
            if metrics:
                metrics.close()
            self._release(run_id)
            if exchange is not None:
                exchange.close()
            spec.unpersist()
            train.unpersist()
        self.driver_net.set_weights(weights)
        return FitResult(weights, history)

    def _round(self, r, rounds, train, spec, weights, exchange, started):
        self.sc.setJobGroup(f"sparknet-round-{r + 1}",
                            f"SparkNet round {r + 1}/{rounds}: K={self.num_workers} workers "
                            f"x tau={self.tau} iterations")
        tic = time.perf_counter()
        job = partial(train_round, spec_bc=spec, tau=self.tau, start_iter=r * self.tau,
                      stream_bc=train.stream)
        if exchange is not None:
            total, results = self._sync_by_socket(r, train, job, weights, exchange)
        else:
            total, results = self._sync_by_spark(train.with_data, job, weights)
        losses = [s.outputs.get("loss", float("nan")) for s in results if s.outputs is not None]
        compute = max(s.compute_s for s in results)
        rebuilt = sum(s.rebuilt for s in results)
        skipped = sum(s.skipped for s in results)
        if not all(math.isfinite(loss) for loss in losses):
            raise TrainingDivergedError(f"round {r + 1}: a worker's loss is {losses}; the "
                                        f"weights of round {r} are kept")
        total /= np.float32(self.num_workers)
        mean = WeightCollection(weights.layout, total)
        wall = time.perf_counter() - tic
        record = {"round": r + 1, "iterations": (r + 1) * self.tau,
                  "loss": float(np.mean(losses)),
                  "images_per_s": self.num_workers * self.tau * self.batch_size / wall,
                  "compute_s": compute, "sync_s": max(wall - compute, 0.0), "round_s": wall,
                  "rebuilt_solvers": rebuilt, "elapsed_s": time.perf_counter() - started}
        if train.stream is not None:  # streamed sources meet bad records as they train
            record["skipped_records"] = skipped
            if skipped and not self._warned_skips:
                warnings.warn(f"round {r + 1}: the workers skipped {skipped} bad record(s) so "
                              "far (on_bad_record='skip')", stacklevel=3)
                self._warned_skips = True
        return mean, record

    def _sync_by_socket(self, r, train, job, weights, exchange):
        """Weights over the WeightExchange; Spark runs the tasks and returns their stats.

        Rounds after a fit's first run data-free, on the solvers the workers kept; a
        task whose worker has none asks the exchange for its data, and its partition
        reruns with it in a job of its own while the round goes on.
        """
        from pyspark import InheritableThread  # carries the job group's properties

        gathered: dict = {}
        reruns: list = []  # (thread, its result dict)
        job = partial(job, exchange=(exchange.address, exchange.token, r))
        with_data = train.with_data.mapPartitionsWithIndex(job)
        group = self.sc.getLocalProperty("spark.jobGroup.id")

        def rerun(part):
            result: dict = {}

            def run():
                self.sc.setJobGroup(group, f"SparkNet round {r + 1}: partition {part} with "
                                           "its data (its worker had no solver)")
                try:
                    result["stats"] = self.sc.runJob(with_data, lambda it: it, [part])
                except Exception as error:  # noqa: BLE001 - reported after the round
                    result["error"] = error
                    exchange.abort()
            thread = InheritableThread(target=run)
            thread.start()
            reruns.append((thread, result))

        def gather():
            try:
                gathered["total"] = exchange.gather(self.num_workers, weights.flat.size)
            except Exception as error:  # noqa: BLE001 - reported after the job
                gathered["error"] = error
                exchange.abort()  # fail the waiting workers' tasks, not hang the job

        exchange.start_round(r, weights.flat, on_needs_data=rerun)
        thread = threading.Thread(target=gather, name=f"sparknet-gather-{r + 1}", daemon=True)
        thread.start()
        try:
            tasks = with_data if not train.solvers_built else \
                train.data_free.mapPartitionsWithIndex(job)
            stats = tasks.collect()
        except Exception as error:  # noqa: BLE001 - re-raised with the worker's cause
            exchange.abort()
            self.sc.cancelJobGroup(group)
            while reruns:
                reruns.pop(0)[0].join()
            thread.join()
            raise _worker_failure(error) from error
        thread.join()
        while reruns:  # all started before the job ended: their tasks waited for it
            rerun_thread, result = reruns.pop(0)
            rerun_thread.join()
            if "error" in result:
                raise _worker_failure(result["error"]) from result["error"]
            stats += result["stats"]
        if "error" in gathered:
            raise gathered["error"]
        train.solvers_built = True
        # One report per partition: the one that trained (an attempt that found its
        # result already held, or asked for its data, reports nothing).
        by_part = {s.index: s for s in stats if s.outputs is None}
        by_part.update({s.index: s for s in stats if s.outputs is not None})
        return gathered["total"], [by_part[i] for i in sorted(by_part)]

    def _sync_by_spark(self, train, job, weights):
        """Weights by Spark broadcast out and task results back, summed as they arrive."""
        shipped = self.sc.broadcast(weights.flat)
        total, results = None, []
        try:
            # In partition order, one result at a time: the driver never holds all K.
            for stats, flat in collect_stream(
                    train.mapPartitionsWithIndex(partial(job, weights_bc=shipped))):
                if total is None:
                    total = flat if flat.flags.writeable else flat.copy()
                else:
                    total += flat
                del flat
                results.append(stats)
        except Exception as error:  # noqa: BLE001 - re-raised with the worker's cause
            raise _worker_failure(error) from error
        finally:
            shipped.unpersist()
        return total, results

    def _checkpoint(self, directory, round_done, weights, history):
        self.driver_net.set_weights(weights)
        self.driver_net.iteration = round_done * self.tau
        checkpoint.save(Path(directory), self.driver_net, round_done, history,
                        {"tau": self.tau, "num_workers": self.num_workers})

    def _driver_host(self) -> str:
        """Where executors reach the driver: Spark's own driver address."""
        return self.sc.getConf().get("spark.driver.host", None) or socket.gethostname()

    def _check_same_run(self, meta: dict) -> None:
        if meta.get("tau") != self.tau or meta.get("num_workers") != self.num_workers:
            raise ValueError(f"the checkpoint was written with tau={meta.get('tau')}, "
                             f"K={meta.get('num_workers')}; this trainer has tau={self.tau}, "
                             f"K={self.num_workers}")

    def _release(self, run_id: str) -> None:
        """Best effort: free the run's solvers on every worker."""
        try:
            self.sc.parallelize(range(self.num_workers), self.num_workers).map(
                lambda _: release(run_id)).collect()
        except Exception:  # noqa: BLE001 - an idle worker frees them at the next run
            pass
