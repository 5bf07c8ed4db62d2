"""Caffe messages from what users hand over: a message, prototxt text, or a path."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar, Union

from google.protobuf import message as pb_message
from google.protobuf import text_format

from .errors import PrototxtError
from .proto import caffe_pb2

M = TypeVar("M", bound=pb_message.Message)
Source = Union[pb_message.Message, str, os.PathLike]


def _looks_like_text(source: str) -> bool:
    return any(ch in source for ch in "{}:\n") or not source.strip()


def parse(source: Source, message_type: type[M]) -> M:
    """A copy of `source` as `message_type`: a message, prototxt text, or a file path.

    Objects that carry their message as `.proto` (NetParams), `.net` or `.solver`
    (a zoo.ZooModel) count as that message.
    """
    for attribute in ("proto", "net", "solver"):
        carried = getattr(source, attribute, None)
        if isinstance(carried, message_type):
            source = carried
            break
    if isinstance(source, message_type):
        copy = message_type()
        copy.CopyFrom(source)
        return copy
    if isinstance(source, pb_message.Message):
        raise TypeError(f"expected a caffe_pb2.{message_type.__name__}, "
                        f"got {type(source).__name__}")
    if isinstance(source, os.PathLike) or (isinstance(source, str)
                                           and not _looks_like_text(source)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no prototxt file at {path}")
        return _parse_text(path.read_text(), message_type, str(path))
    if isinstance(source, str):
        return _parse_text(source, message_type, "<prototxt text>")
    raise TypeError(f"cannot read a {message_type.__name__} from {type(source).__name__}")


def _parse_text(text: str, message_type: type[M], origin: str) -> M:
    try:
        return text_format.Parse(text, message_type())
    except text_format.ParseError as e:
        raise PrototxtError(f"{origin} is not a valid {message_type.__name__} "
                            f"prototxt: {e}") from None


def parse_net(source: Source) -> caffe_pb2.NetParameter:
    return parse(source, caffe_pb2.NetParameter)


def parse_solver(source: Source) -> caffe_pb2.SolverParameter:
    return parse(source, caffe_pb2.SolverParameter)


def to_text(message: pb_message.Message) -> str:
    return text_format.MessageToString(message)
