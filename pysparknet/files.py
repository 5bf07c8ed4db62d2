"""Files written so that a crash or a power loss leaves the old file or the new one,
never a part: a temporary name beside it, fsync, rename, fsync the folder."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


def fsync_path(path: PathLike) -> None:
    """fsync a file, or a folder (its entries: renames and new names)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class atomic_path:
    """`with atomic_path(p) as tmp:` write tmp (any writer, native ones too); it is
    renamed onto p only if the block succeeds, and removed otherwise."""

    def __init__(self, path: PathLike):
        self.path = Path(path)

    def __enter__(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, *_):
        try:
            if exc_type is None:
                fsync_path(self.tmp)  # the bytes are on disk before the name points at them
                os.replace(self.tmp, self.path)
                fsync_path(self.path.parent)
        finally:
            if os.path.exists(self.tmp):  # the write or the rename failed
                os.unlink(self.tmp)


def write_atomically(path: PathLike, data: Union[bytes, str]) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data.encode() if isinstance(data, str) else data)
