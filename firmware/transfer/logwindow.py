"""Which log lines fall in a GetDiagnostics time window.

The rule, for every line:
- Its time is the first ISO 8601 date-time that starts within its first
  ``STAMP_SEARCH_CHARS`` characters: ``YYYY-MM-DD``, ``T`` or a space,
  ``hh:mm:ss``, an optional fraction (``.`` or ``,``), an optional zone
  (``Z`` or ``±hh[:mm]``, a space before it allowed). No zone means UTC, as
  the firmware logs in UTC. This covers the firmware's own lines
  (``2026-01-01T10:00:00.123Z INFO ...``), Python's default logging format,
  ``journalctl -o short-iso`` and RFC 5424 syslog.
- A line without a time (a traceback, a continued message) goes with the
  line before it, across files too. Lines before the first timed line go with
  that first timed line (at most ``MAX_PENDING_LINES`` of them); if no line
  has a time they are dropped, unless the window is open on both sides, when
  every line is kept.
- A timed line is kept when ``start <= time <= stop`` (both bounds inclusive,
  either may be None).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

STAMP_SEARCH_CHARS = 48
MAX_PENDING_LINES = 1000

_STAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"(?: ?(Z|z|[+-]\d{2}(?::?\d{2})?))?"
)


def line_time(line: str) -> datetime | None:
    """The time of a log line by the rule above, or None."""
    match = _STAMP.search(line, 0, STAMP_SEARCH_CHARS + 40)
    if match is None or match.start() >= STAMP_SEARCH_CHARS:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micro,
            tzinfo=_zone(zone),
        )
    except ValueError:
        return None


def _zone(text: str | None) -> timezone:
    if text is None or text in "Zz":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return timezone(sign * offset)


class Window:
    """Feed lines in order (oldest file first); get back the ones to keep."""

    def __init__(self, start: datetime | None, stop: datetime | None) -> None:
        for bound in (start, stop):
            if bound is not None and bound.tzinfo is None:
                raise ValueError("start and stop must be aware datetimes")
        self._start, self._stop = start, stop
        self._keep: bool | None = None  # None: no timed line seen yet
        self._open = start is None and stop is None
        self._pending: deque[str] = deque(maxlen=MAX_PENDING_LINES)

    def feed(self, line: str) -> Iterator[str]:
        if self._open:
            yield line
            return
        moment = line_time(line)
        if moment is not None:
            self._keep = (self._start is None or moment >= self._start) and (
                self._stop is None or moment <= self._stop
            )
            if self._keep:
                yield from self._pending
            self._pending.clear()
        elif self._keep is None:
            self._pending.append(line)
            return
        if self._keep:
            yield line
