"""The exceptions pysparknet raises. Each carries the cause in its message."""


class SparkNetError(Exception):
    """Base class of every pysparknet error."""


class CaffeError(SparkNetError, RuntimeError):
    """Caffe refused something: a CHECK failed (bad net, shape, file contents)."""


class NetArgumentError(SparkNetError, ValueError):
    """An argument the native layer cannot accept (device, buffer size, ...)."""


class CaffeIOError(SparkNetError, OSError):
    """A Caffe file could not be read or written."""


class PrototxtError(SparkNetError, ValueError):
    """A prototxt text does not parse as the expected Caffe message."""


class DataError(SparkNetError, ValueError):
    """A training or validation record is unusable (shape, label, type)."""


class FeedError(SparkNetError, RuntimeError):
    """The data feed failed inside a forward pass for a reason given here."""


class TransportError(SparkNetError, ConnectionError):
    """Weights could not travel between the driver and a worker."""


class RoundTimeoutError(TransportError, TimeoutError):
    """A round's results did not all reach the driver before the round's deadline."""


class ClusterError(SparkNetError, RuntimeError):
    """The cluster cannot run the fit as asked (too few task slots, an unsuited master)."""


class WorkerError(SparkNetError, RuntimeError):
    """A worker failed with an exception that is not pysparknet's own (type and message)."""


class TrainingDivergedError(SparkNetError, FloatingPointError):
    """A round produced a non-finite loss; the last good weights were kept."""
