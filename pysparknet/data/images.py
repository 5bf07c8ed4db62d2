"""Encoded images (JPEG, PNG, ...) -> Caffe's (C, H, W) uint8 arrays.

Caffe reads images with OpenCV, which stores colour pixels as BGR; so does
Spark's image data source. Pillow (libjpeg-turbo) decodes here and the
channels are reordered to BGR, so arrays match what Caffe's tools produce from
the same files.
"""
from __future__ import annotations

import io
from typing import Optional

import numpy as np

from ..errors import DataError


def decode_image(data: bytes, color: Optional[bool] = None,
                 size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Decode one encoded image to uint8 (C, H, W), BGR when C == 3.

    color: True -> 3 channels, False -> 1, None -> the file's own (grey stays 1,
    anything else 3; alpha is dropped), as Caffe's Data layer decodes encoded
    Datums. size: (height, width) to resize to (bilinear), e.g. (256, 256).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if color is False and image.format == "JPEG":
                image.draft("L", image.size)  # libjpeg's own luma, as OpenCV's grey read
            if color is None:
                color = image.mode not in ("L", "1", "I;16", "I", "F")
            image = image.convert("RGB" if color else "L")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(f"cannot decode image ({len(data)} bytes): {error}") from error
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        return pixels[None].copy()
    return np.ascontiguousarray(pixels[:, :, ::-1].transpose(2, 0, 1))


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
