"""Throttled progress reports: ``callback(bytes_done, total_or_None)``."""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressCallback = Callable[[int, int | None], None]


class Progress:
    """Calls ``callback`` at the start, at the end, and in between only once both
    ``every_bytes`` more bytes have moved and ``every_s`` seconds have passed
    since the previous report. ``every_bytes=0`` or ``every_s=0`` drops that bound.
    """

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        every_bytes: int,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self._every_bytes = every_bytes
        self._every_s = every_s
        self._clock = clock
        self.done = 0
        self.total: int | None = None
        self._reported_bytes = -1
        self._reported_at = 0.0

    def start(self, done: int, total: int | None) -> None:
        """A (re)started attempt: ``done`` bytes already there (resume), ``total`` if known."""
        self.done, self.total = done, total
        self._report()

    def add(self, count: int) -> None:
        self.done += count
        if self._callback is None:
            return
        if self.done - self._reported_bytes < self._every_bytes:
            return
        if self._clock() - self._reported_at < self._every_s:
            return
        self._report()

    def finish(self) -> None:
        if self.done != self._reported_bytes:
            self._report()

    def _report(self) -> None:
        if self._callback is None:
            return
        self._reported_bytes = self.done
        self._reported_at = self._clock()
        self._callback(self.done, self.total)
