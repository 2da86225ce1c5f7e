"""The power of every connector over the last minutes, for the page's charts.

One sample a ``SAMPLE_S`` of each connector's measured power (what the meter
read last), ``KEEP`` samples: 15 minutes, so a page opened at any time draws
the last 10 minutes at least.
"""

from __future__ import annotations

from collections import deque

SAMPLE_S = 1.0
KEEP = 900

Sample = tuple[int, int, list[float]]  # (seq, station time in ms, watts per connector)


class PowerHistory:
    def __init__(self, keep: int = KEEP) -> None:
        self._samples: deque[Sample] = deque(maxlen=keep)
        self.seq = 0

    def add(self, at_ms: int, watts: list[float]) -> None:
        self.seq += 1
        self._samples.append((self.seq, at_ms, watts))

    def since(self, seq: int) -> list[tuple[int, list[float]]]:
        """(time in ms, watts per connector) of the samples after ``seq``, oldest first."""
        if seq >= self.seq:
            return []
        return [(at, watts) for s, at, watts in self._samples if s > seq]
