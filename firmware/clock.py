"""Wall clock adjusted to the CSMS's time, and OCPP date-time formatting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class Clock:
    """UTC wall time, corrected by the offset learned from the CSMS.

    ``monotonic()`` is for timeouts; ``now()`` only for payload timestamps.
    """

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._listeners: list[Callable[[timedelta], None]] = []

    def subscribe(self, callback: Callable[[timedelta], None]) -> None:
        """``callback(step)`` after each adoption: how far it moved the clock."""
        self._listeners.append(callback)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def monotonic(self) -> float:
        return time.monotonic()

    def adopt(self, csms_time: datetime) -> None:
        """Adopt the CSMS's idea of the current time."""
        offset = csms_time - datetime.now(UTC)
        step, self._offset = offset - self._offset, offset
        for callback in self._listeners:
            callback(step)


def iso(moment: datetime) -> str:
    """OCPP date-time: UTC, milliseconds, trailing Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse an RFC 3339 date-time; a missing zone is taken as UTC. Raises ValueError."""
    if not isinstance(text, str) or len(text) < 10:
        raise ValueError(f"not a date-time: {text!r}")
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
