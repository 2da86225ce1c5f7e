"""Readers that print one UID per line as hex (many USB/serial readers do).

Lines end with CR, LF or CR LF. Separators between bytes (``:``, ``-``,
``.``, spaces, tabs) are removed and the rest is upper-cased: ``04:a1:b2:c3``
and ``04 A1 B2 C3`` both give ``04A1B2C3``. Lines that are then empty, not
all hex or longer than ``max_chars`` are discarded.
"""

from __future__ import annotations

import asyncio
import logging
import re
import string

from hal.errors import HalConfigError
from hal.interfaces import HalEvent
from hal.serial.port import SerialPort
from hal.serial.reader import RfidReader

log = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[:\-. \t]")
_LINE_END = re.compile(rb"[\r\n]")
_HEX = frozenset(string.hexdigits)
MAX_LINE_BYTES = 256


def parse_uid_line(line: str, *, max_chars: int = 20) -> str | None:
    """The UID of one line (upper-case hex), None when the line is not a UID."""
    text = _SEPARATORS.sub("", line.strip())
    if not text or len(text) > max_chars or not all(c in _HEX for c in text):
        return None
    return text.upper()


class LineParser:
    """Splits a byte stream into lines; a line longer than ``MAX_LINE_BYTES`` is dropped."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        lines: list[str] = []
        while True:
            match = _LINE_END.search(self._buf)
            if match is None:
                break
            raw = bytes(self._buf[: match.start()])
            del self._buf[: match.end()]
            if self._overflow:
                self._overflow = False
                continue
            if raw:  # CR LF leaves an empty line between CR and LF
                lines.append(raw.decode("ascii", errors="replace"))
        if len(self._buf) > MAX_LINE_BYTES:
            log.info("line reader: over-long line discarded")
            self._buf.clear()
            self._overflow = True
        return lines


class LineReader(RfidReader):
    """A reader that prints UIDs as lines of hex; online once its port is open."""

    def __init__(
        self,
        events: asyncio.Queue[HalEvent],
        *,
        port: str,
        baudrate: int = 9600,
        connector_id: int | None = None,
        max_chars: int = 20,
        reopen_min_s: float = 0.5,
        reopen_max_s: float = 10.0,
        present_timeout_s: float = 0.5,
    ) -> None:
        super().__init__(
            events,
            port=port,
            baudrate=baudrate,
            connector_id=connector_id,
            reopen_min_s=reopen_min_s,
            reopen_max_s=reopen_max_s,
            present_timeout_s=present_timeout_s,
        )
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
            raise HalConfigError(f"max_chars: must be a positive integer, got {max_chars!r}")
        self._max_chars = max_chars

    async def _session(self, port: SerialPort) -> None:
        await self._online()
        lines = LineParser()
        while True:
            data = await port.read()
            for line in lines.feed(data):
                uid = parse_uid_line(line, max_chars=self._max_chars)
                if uid is None:
                    if line.strip():
                        log.info("%s: not a UID, discarded: %r", self._name(), line)
                    continue
                await self._report(uid)
