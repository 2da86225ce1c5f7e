"""Tap-to-energize latency: from the read of a token to the relay close command.

The reader driver stamps each ``TokenPresented`` with the monotonic instant it
read the UID; the station notes that instant per idTag, and the connector that
closes its relay for a session of that idTag turns it into one figure. Taps
that stop a session or are refused are forgotten, so a later start by other
means (a remote start) is never counted as a tap. The figure includes every
wait on the way: authorization, the persisted StartTransaction, and a vehicle
that is not yet asking for energy.

The last ``KEEP`` figures are kept (in milliseconds) for the local API status
and ``make bench``; every figure also goes into a histogram (seconds, since
the daemon started) for ``/metrics``.
"""

from __future__ import annotations

import bisect
import logging
from collections import OrderedDict, deque

from hal.tokens import Tag

log = logging.getLogger("firmware.metrics")

KEEP = 256  # figures kept for the status
MAX_PENDING = 16  # idTags read and not yet energized (oldest dropped)
# Upper bounds in seconds: a local hit takes milliseconds, an online Authorize
# tens of them, a vehicle that waits before asking for energy seconds.
TAP_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    """Observations counted into fixed buckets (each bucket counts its own range only)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with (inf, count)."""
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append((bound, total))
        return out


class TapLatency:
    def __init__(self, keep: int = KEEP) -> None:
        self._read_at: OrderedDict[str, float] = OrderedDict()
        self._figures: deque[float] = deque(maxlen=keep)
        self.count = 0
        self.histogram = Histogram(TAP_BUCKETS_S)

    def token_read(self, id_tag: str, read_at: float) -> None:
        self._read_at.pop(id_tag, None)
        self._read_at[id_tag] = read_at
        while len(self._read_at) > MAX_PENDING:
            self._read_at.popitem(last=False)

    def forget(self, id_tag: str) -> None:
        """The tap did not start a session (it stopped one, or was refused)."""
        self._read_at.pop(id_tag, None)

    def energized(self, id_tag: str, commanded_at: float) -> float | None:
        """The relay close for a session of ``id_tag`` was commanded; the figure in ms."""
        read_at = self._read_at.pop(id_tag, None)
        if read_at is None:
            return None
        ms = (commanded_at - read_at) * 1000.0
        self._figures.append(ms)
        self.count += 1
        self.histogram.observe(ms / 1000.0)
        log.debug("tap-to-energize %.3f ms (token %s)", ms, Tag(id_tag))
        return ms

    def snapshot(self) -> dict[str, object]:
        return {"count": self.count, "tap_to_energize_ms": [round(f, 3) for f in self._figures]}
