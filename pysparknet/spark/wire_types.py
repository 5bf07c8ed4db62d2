"""The types a ring's chunks travel in (exchange dtype 'float32', 'bfloat16' or
'float16'), and the casts between float32 and them.

bfloat16 is float32's top 16 bits, so its casts are integer shifts on the bits
(rounding to nearest, ties to even, as ml_dtypes does): about 2x faster to the
wire and 3x from it than ml_dtypes' element loops, which matters when K
executors share a host's cores. A piece with a NaN or an infinity goes through
ml_dtypes, which keeps a NaN a NaN (the shift would carry its payload into the
exponent or the sign).
"""
from __future__ import annotations

import numpy as np

_RUN_OF_ONES = np.uint32(0x7FFF)  # below half of the lowest kept bit


def wire_dtype(name: str) -> np.dtype:
    """The numpy dtype of an exchange dtype's name. ml_dtypes (bfloat16) is imported
    only when asked for: its import costs about half a second a process."""
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype({"float32": np.float32, "float16": np.float16}[name])


class WireCast:
    """float32 to and from one wire dtype, a piece of at most `piece` floats a call."""

    def __init__(self, wire: np.dtype, piece: int):
        self.wire = np.dtype(wire)
        self._shifts = self.wire.name == "bfloat16"
        self._bits = np.empty(piece if self._shifts else 0, np.uint32)

    def to_wire(self, values: np.ndarray, out: np.ndarray) -> None:
        """out[:] = values rounded to the wire type."""
        if not self._shifts or not np.isfinite(values).all():
            with np.errstate(invalid="ignore"):  # a NaN stays one; the losses report it
                out[:] = values
            return
        bits, rounded = values.view(np.uint32), self._bits[:values.size]
        np.right_shift(bits, 16, out=rounded)
        np.bitwise_and(rounded, 1, out=rounded)  # the lowest kept bit: ties go to even
        np.add(rounded, _RUN_OF_ONES, out=rounded)
        np.add(rounded, bits, out=rounded)
        np.right_shift(rounded, 16, out=out.view(np.uint16), casting="unsafe")

    def from_wire(self, wire_values: np.ndarray, out: np.ndarray) -> None:
        """out[:] = wire_values as float32 (exact)."""
        if not self._shifts:
            out[:] = wire_values
            return
        np.left_shift(wire_values.view(np.uint16), 16, out=out.view(np.uint32),
                      dtype=np.uint32)
