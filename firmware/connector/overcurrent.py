"""Overcurrent: the vehicle draws more than offered, by a margin, for too long.

IEC 61851 gives a vehicle a few seconds to follow a lower offer; a vehicle
that keeps drawing more than the margin above the offer for ``time_s`` is
cut off (OverCurrentFailure) until it is unplugged.
"""

from __future__ import annotations


class OvercurrentMonitor:
    def __init__(self, margin_a: float, time_s: float) -> None:
        self.margin_a = margin_a
        self.time_s = time_s
        self._since: float | None = None

    def update(self, now: float, measured_a: float, offered_a: float) -> bool:
        """True once the current has exceeded ``offered_a + margin_a`` for ``time_s``.

        ``offered_a`` is 0 when nothing is offered: then any current above the
        margin counts (a contactor that should carry nothing).
        """
        if measured_a <= offered_a + self.margin_a:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.time_s

    def reset(self) -> None:
        self._since = None
