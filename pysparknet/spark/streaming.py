"""SparkNet on a Structured Streaming DataFrame: rounds run as micro-batches arrive.

`SparkNetTrainer.fit_stream` starts a streaming query whose `foreachBatch`
hands each micro-batch to `BatchRounds`: the batch is split into K shares,
each worker adds its share to its buffer of recent records (stream_buffer.py),
and `rounds_per_batch` SparkNet rounds train on the buffers, in one segment.

Exactly once. Spark's checkpoint (checkpoint_dir/stream: the offsets of each
batch, and which batches were committed) and the model's (checkpoint_dir/model)
are kept together: the model's checkpoint, which names the last batch it
covers, is written before `foreachBatch` returns, and Spark commits a batch
only after that. A driver that dies before the model's checkpoint has the
batch rerun by Spark on restart (same offsets, same records); one that dies
after it has Spark offer the batch again, and it is passed over as covered.
"""
from __future__ import annotations

import logging
import os
import threading
from functools import partial
from pathlib import Path
from typing import Optional

from ..data.bad_records import POLICIES
from ..data.spark_sources import dataframe_records
from ..errors import DataError
from . import checkpoint
from .failures import worker_failure
from ..data.partitions import PartitionSizes
from .round_log import RoundLog
from .stream_buffer import share_partition
from .training_set import TrainingSet, placement

_LOG = logging.getLogger("pysparknet")
CLOSE_WAIT_S = 600.0  # how long stop() waits for the batch in progress to finish
# A test hook: the driver exits right after checkpointing this batch id.
EXIT_AFTER_CHECKPOINT = "PYSPARKNET_STREAM_EXIT_AFTER_CHECKPOINT"
# What a checkpoint records of the stream: the last batch it covers, records seen,
# skipped as bad, batches trained, and [batch id, records] of every batch.
_STREAM_STATE = ("last_batch", "records", "skipped", "trained", "batch_records")


class StreamCheckpointError(checkpoint.CheckpointError):
    """The stream's checkpoint and the model's do not belong together."""


def checkpoint_dirs(checkpoint_dir) -> tuple[Optional[Path], Optional[str]]:
    """(the model's checkpoint folder, Spark's checkpointLocation) under one folder."""
    if checkpoint_dir is None:
        return None, None
    root = Path(checkpoint_dir)
    return root / "model", str(root / "stream")


def committed_batches(stream_location: Optional[str]) -> list[int]:
    """The batch ids Spark's checkpoint says were committed (its commits/ folder)."""
    commits = Path(stream_location) / "commits" if stream_location else None
    if commits is None or not commits.is_dir():
        return []
    return sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit())


def check_together(stream_location: Optional[str], last_batch: int) -> None:
    """Refuse a stream checkpoint that committed batches the model never trained on:
    Spark would not offer them again, and they would be lost."""
    committed = committed_batches(stream_location)
    beyond = [b for b in committed if b > last_batch]
    if beyond:
        raise StreamCheckpointError(
            f"{stream_location} has committed micro-batches {beyond[0]}..{beyond[-1]}, which "
            f"the model's checkpoint (last batch {last_batch}) does not cover: the two "
            "checkpoints are not from one run (use a fresh checkpoint_dir)")


class BatchRounds:
    """The foreachBatch function: one micro-batch -> shares -> rounds -> checkpoint."""

    def __init__(self, run, log: RoundLog, weights, options: dict, stream_state: dict):
        self.run, self.log, self.weights = run, log, weights
        self.num_workers = run.trainer.num_workers
        self.placement = run.train  # K cached tasks, to free the solvers with at the end
        self.options = options  # rounds_per_batch, buffer_records, columns, model_dir, ...
        self.state = stream_state  # _STREAM_STATE, and each worker's buffered records
        self.error: Optional[BaseException] = None
        self.passed_over: list[int] = []  # batches Spark offered again, covered already
        self.closed = False
        self._lock = threading.Lock()

    def __call__(self, batch_df, batch_id: int) -> None:
        with self._lock:
            if self.closed:
                raise DataError(f"micro-batch {batch_id} arrived after the training stopped")
            try:
                self._batch(batch_df, int(batch_id))
            except BaseException as error:
                self.error = error
                self._close()
                raise

    def _batch(self, batch_df, batch_id: int) -> None:
        if batch_id <= self.state["last_batch"]:
            _LOG.warning("micro-batch %d: the model's checkpoint covers it already (the "
                         "driver stopped before Spark committed it); passed over", batch_id)
            self.passed_over.append(batch_id)
            return
        shares, counts = self._shares(batch_df, batch_id)
        try:
            buffered = [min(held + new, self.options["buffer_records"])
                        for held, new in zip(self.state["buffered"], counts)]
            self.state["buffered"] = buffered
            if sum(counts) and min(buffered) > 0:
                self._train(shares, batch_id, counts)
            elif sum(counts):
                _LOG.warning("micro-batch %d (%d records): buffered; training starts once "
                             "every worker holds records (per worker: %s)", batch_id,
                             sum(counts), buffered)
        finally:
            shares.unpersist()
        self.state.update(last_batch=batch_id, records=self.state["records"] + sum(counts))
        self.state["batch_records"].append([batch_id, sum(counts)])
        if self.options["model_dir"] is not None:
            self._checkpoint()
            if os.environ.get(EXIT_AFTER_CHECKPOINT) == str(batch_id):
                os._exit(3)  # the test hook: a driver lost before Spark commits the batch

    def _shares(self, batch_df, batch_id: int):
        """The batch's K shares, cached (one BatchShare per partition), and their sizes."""
        opts = self.options
        records = dataframe_records(batch_df, opts["image_col"], opts["label_col"],
                                    opts["shape"], opts["color"], opts["on_bad_record"])
        sizes = self.run.sc.accumulator({}, PartitionSizes())
        shares = records.repartition(self.num_workers).mapPartitionsWithIndex(
            partial(share_partition, batch_id=batch_id, bad=records.bad_records,
                    sizes=sizes)).cache()
        try:
            # Counted by the JVM: a Python count over the cached shares would run a
            # second Python worker beside each task's, and the executors' pools of
            # Python workers would grow (each persistent solver lives in one of them).
            shares._jrdd.count()
        except Exception as error:  # noqa: BLE001 - the record that failed, by batch
            shares.unpersist()
            cause = worker_failure(error)
            if isinstance(cause, DataError):
                raise DataError(f"micro-batch {batch_id}: {cause}") from None
            raise cause from error
        self.state["skipped"] += records.bad_records.report(f"micro-batch {batch_id}")
        return shares, [sizes.value.get(i, 0) for i in range(self.num_workers)]

    def _train(self, shares, batch_id: int, counts: list) -> None:
        """The batch's rounds, in one segment, its tasks carrying the shares."""
        first = len(self.log.history)
        self.run.train = TrainingSet(shares, shares, sum(counts))
        last = first + self.options["rounds_per_batch"]
        self.state["trained"] += 1
        try:
            for r in range(first, last):
                self.weights, record = self.run.round(r, last, self.weights, self.log)
                record.update(batch_id=batch_id, batch_records=sum(counts),
                              buffered_records=list(self.state["buffered"]),
                              skipped_records=self.state["skipped"])
                if r + 1 == last:
                    self._validate(record)
                self.log.history.append(record)
                self.log.report(record)
        finally:
            self.run.trainer.round_driver.close()

    def _validate(self, record: dict) -> None:
        if self.log.validating and self.state["trained"] % self.log.validate_every == 0:
            self.run.validate(record, self.weights)

    def _checkpoint(self) -> None:
        stream = {k: self.state[k] for k in _STREAM_STATE}
        self.run.checkpoint(self.options["model_dir"], len(self.log.history), self.weights,
                            self.log.history, extra={"stream": stream})

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Free the run once the batch in progress (if any) is done."""
        if not self._lock.acquire(timeout=wait_s):
            raise TimeoutError(f"the micro-batch in progress did not finish within {wait_s:.0f} s")
        try:
            self._close()
        finally:
            self._lock.release()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.log.close()
        self.run.train = self.placement  # its tasks free the solvers where they live
        self.run.close()
        self.run.trainer.driver_net.set_weights(self.weights)


class StreamTraining:
    """A running streamed fit: the streaming query and what it trained so far."""

    def __init__(self, query, batches: BatchRounds):
        self.query, self._batches = query, batches

    @property
    def history(self) -> list:
        """One record per round (as fit's), with its batch_id and batch_records."""
        return self._batches.log.history

    @property
    def weights(self):
        return self._batches.weights

    @property
    def last_batch(self) -> int:
        """The id of the last micro-batch taken in (trained on, or buffered); -1: none."""
        return self._batches.state["last_batch"]

    @property
    def records_seen(self) -> int:
        """Records of the micro-batches taken in, over every run on this checkpoint."""
        return self._batches.state["records"]

    @property
    def batch_records(self) -> list:
        """[batch id, records] of every micro-batch taken in, in order (as checkpointed)."""
        return self._batches.state["batch_records"]

    @property
    def passed_over(self) -> list[int]:
        """Batches Spark offered again after a restart that the checkpoint covered."""
        return self._batches.passed_over

    def await_termination(self, timeout: Optional[float] = None) -> bool:
        """Wait for the query to end (True), or `timeout` seconds (False). A query that
        failed raises here: the training's own error when the training failed."""
        try:
            ended = self.query.awaitTermination(timeout)
        except Exception:
            self._batches.close()
            if self._batches.error is not None:
                raise self._batches.error from None
            raise
        if ended or ended is None:
            self._batches.close()
            return True
        return False

    def stop(self) -> None:
        """Stop the query; the batch in progress finishes (and is checkpointed) first."""
        self.query.stop()
        self._batches.close()

    def __enter__(self) -> "StreamTraining":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def check_stream_options(stream_df, rounds_per_batch, buffer_records, validate_every,
                          on_bad_record: str) -> None:
    if on_bad_record not in POLICIES:
        raise ValueError(f"on_bad_record must be one of {POLICIES}, got {on_bad_record!r}")
    if not getattr(stream_df, "isStreaming", False):
        raise ValueError("fit_stream takes a streaming DataFrame (spark.readStream...); "
                         "train on a batch DataFrame with fit()")
    for name, value in (("rounds_per_batch", rounds_per_batch),
                        ("buffer_records", buffer_records), ("validate_every", validate_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


def _resumed_state(model_dir: Optional[Path], num_workers: int) -> dict:
    """What the model's checkpoint says of the stream (a fresh one: nothing yet)."""
    manifest = checkpoint.read_manifest(model_dir) or {}
    stream = manifest.get("stream") or {}
    state = {"last_batch": -1, "records": 0, "skipped": 0, "trained": 0, "batch_records": []}
    state.update({k: v for k, v in stream.items() if k in _STREAM_STATE})
    state["buffered"] = [0] * num_workers  # a restarted run's workers start empty
    return state


def start(run, stream_df, validation_data, checkpoint_dir, options: dict,
          log_options: dict, writer_options: dict) -> StreamTraining:
    """Resume from checkpoint_dir (if it holds a run), open the run, start the query."""
    model_dir, location = checkpoint_dirs(checkpoint_dir)
    num_workers = run.trainer.num_workers
    run.check_cluster(model_dir)
    validating = run.set_validation(validation_data)
    weights, history, _ = run.starting_point(model_dir, resume=True)
    state = _resumed_state(model_dir, num_workers)
    check_together(location, state["last_batch"])
    tasks = placement(run.sc, num_workers)  # where the run's solvers are freed at its end
    run.open(TrainingSet(tasks, tasks, 0), buffer_records=options["buffer_records"])
    log = RoundLog(None, validating, log_options["validate_every"], None, 1,
                   log_options["metrics_path"], log_options["progress"], len(history), history)
    batches = BatchRounds(run, log, weights, {**options, "model_dir": model_dir}, state)
    try:
        return StreamTraining(_writer(stream_df, batches, location, writer_options).start(),
                              batches)
    except BaseException:
        batches.close()
        raise


def _writer(stream_df, batches, location, writer_options: dict):
    writer = stream_df.writeStream.foreachBatch(batches)
    if location is not None:
        writer = writer.option("checkpointLocation", location)
    if writer_options.get("trigger"):
        writer = writer.trigger(**writer_options["trigger"])
    if writer_options.get("query_name"):
        writer = writer.queryName(writer_options["query_name"])
    return writer
