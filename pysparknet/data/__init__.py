"""Data sources -> (ndarray, label) records and minibatches."""
from .minibatches import Minibatches
from .mnist import fashion_mnist, idx_dataset, read_idx

__all__ = ["Minibatches", "fashion_mnist", "idx_dataset", "read_idx"]
