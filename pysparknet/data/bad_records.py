"""What to do with a record that cannot be used: stop naming it, or skip and count.

Skipping drops the image and its label together, so the pairing of the rest
never changes. On Spark the count is an accumulator: it is known on the driver
once an action has read the data.
"""
from __future__ import annotations

import warnings

from ..errors import DataError

POLICIES = ("error", "skip")


class BadRecords:
    def __init__(self, policy: str = "error", counter=None, distinct: bool = False):
        if policy not in POLICIES:
            raise ValueError(f"on_bad_record must be one of {POLICIES}, got {policy!r}")
        self.policy = policy
        self.counter = counter  # a Spark accumulator, or None to count locally
        self.skipped = 0
        # A source read on every pass meets the same bad records again: count each once.
        self._seen: set[str] | None = set() if distinct else None

    def handle(self, where: str, error: Exception) -> None:
        """Raise DataError naming `where`, or count the record as skipped."""
        if self.policy == "error":
            raise DataError(f"{where}: {error}") from error
        if self._seen is not None:
            if where in self._seen:
                return
            self._seen.add(where)
        self.skipped += 1
        if self.counter is not None:
            self.counter.add(1)
        elif self.skipped <= 3:
            warnings.warn(f"skipping bad record {where}: {error}", stacklevel=3)

    def report(self, source: str) -> int:
        """Warn once with the total skipped (driver side); return it."""
        total = self.counter.value if self.counter is not None else self.skipped
        if total:
            warnings.warn(f"{source}: skipped {total} bad record(s) (on_bad_record='skip')",
                          stacklevel=2)
        return total
