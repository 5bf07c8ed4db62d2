"""What Spark gave the running task: its GPU and its cores. Kept apart from the
solvers so that scoring (pysparknet.ml.scoring) imports no training code."""
from __future__ import annotations

from pyspark import TaskContext

from ..errors import NetArgumentError


def device_for_task(device: str, on_unassigned_gpu: str = "warn") -> str:
    """'gpu' means the GPU Spark assigned to this task; with none assigned, gpu:0
    (the driver warned at the start of the fit) or an error."""
    if device != "gpu":
        return device
    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context else None
    if gpus and gpus.addresses:
        return f"gpu:{gpus.addresses[0]}"
    if on_unassigned_gpu == "error":
        raise NetArgumentError("device='gpu', but Spark assigned no GPU to this task: set "
                               "spark.task.resource.gpu.amount (and the executors' GPU "
                               "resources), or pass device='gpu:N'")
    return "gpu:0"


def task_threads() -> int:
    """The cores Spark gave this task (spark.task.cpus): the solver's threads."""
    context = TaskContext.get()
    return max(1, context.cpus()) if context else 1
