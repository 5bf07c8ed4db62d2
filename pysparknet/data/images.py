"""Encoded images (JPEG, PNG, ...) <-> Caffe's (C, H, W) uint8 arrays.

Decoding goes through the shim to the OpenCV that Caffe itself links, with
Caffe's flags and its resize: the pixels are the ones Caffe's convert_imageset
and Data layer produce, BGR like OpenCV (and Spark's image data source). The
call releases the GIL. Encoding (for writing datasets) uses Pillow.
"""
from __future__ import annotations

import io
from ctypes import c_int64
from typing import Optional

import numpy as np

from .. import _native

from ..errors import DataError, SparkNetError


def decode_image(data: bytes, color: Optional[bool] = None,
                 size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Decode one encoded image to uint8 (C, H, W), BGR when C == 3.

    color: True -> 3 channels, False -> 1, None -> the file's own (grey stays 1,
    anything else 3; alpha is dropped), as Caffe's Data layer decodes encoded
    Datums. size: (height, width) to resize to, as convert_imageset --resize_*.
    """
    data = data if isinstance(data, bytes) else bytes(data)
    if not data:
        raise DataError("cannot decode image (0 bytes)")
    mode = -1 if color is None else int(bool(color))
    height, width = size if size is not None else (0, 0)
    shape = (c_int64 * 3)()
    out = np.empty((1 if color is False else 3) * height * width, np.uint8)
    for _ in range(2):  # a second call only when the first learned the native size
        status = _native.sn_decode_image(data, len(data), mode, height, width,
                                         out.ctypes.data if out.size else None, out.size, shape)
        if status == _native.SN_OK:
            return out[:shape[0] * shape[1] * shape[2]].reshape(tuple(shape))
        if shape[0] == 0 or status != _native.SN_ERR_ARGUMENT:
            break
        out = np.empty(shape[0] * shape[1] * shape[2], np.uint8)
    try:
        _native.check(status)
    except SparkNetError as error:  # whatever the native side says: this image is bad
        raise DataError(str(error)) from None
    raise DataError("cannot decode image")  # a size learned twice: never expected


def encode_image(image: np.ndarray, format: str = "PNG", quality: int = 95) -> bytes:
    """uint8 (C, H, W) array (BGR when C == 3) or (H, W) grey -> encoded bytes."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise DataError(f"expected a uint8 (1|3, H, W) array, got {image.dtype} {image.shape}")
    pixels = image[0] if image.shape[0] == 1 else image[::-1].transpose(1, 2, 0)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(out, format=format, quality=quality)
    return out.getvalue()
