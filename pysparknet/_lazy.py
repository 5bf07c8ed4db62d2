"""Public names a package imports on first use, so that a process importing one of
its modules (an executor unpickling a task) does not import the rest."""
from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_names(package: str, homes: dict) -> Callable[[str], object]:
    """The package's module __getattr__: a name in `homes` from the module it
    names there (relative to the package), an AttributeError for any other."""
    def attribute(name: str):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(homes[name], package), name)
    return attribute
