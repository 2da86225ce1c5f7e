"""Readers that print one token per line: USB/serial card readers, keypads, QR readers.

Lines end with CR, LF or CR LF. By default a line is a token as it is: blanks
and tabs around it are removed, the rest is reported unchanged (case and
punctuation kept) when it is an idTag, 1 to ``max_chars`` (at most 20)
printable ASCII characters (``hal.tokens``); other lines are discarded.

``hex_only`` is for noisy card readers that print chip UIDs as hex: separators
between bytes (``:``, ``-``, ``.``, spaces, tabs) are removed and the rest is
upper-cased, so ``04:a1:b2:c3`` and ``04 A1 B2 C3`` both give ``04A1B2C3``;
lines that are then empty, not all hex or longer than ``max_chars`` are
discarded.
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
from hal.tokens import ID_TAG_MAX_CHARS, Tag, id_tag_problem

log = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[:\-. \t]")
_LINE_END = re.compile(rb"[\r\n]")
_HEX = frozenset(string.hexdigits)
MAX_LINE_BYTES = 256


def parse_uid_line(line: str, *, max_chars: int = ID_TAG_MAX_CHARS) -> str | None:
    """The UID of one line (upper-case hex), None when the line is not a UID (``hex_only``)."""
    text = _SEPARATORS.sub("", line.strip())
    if not text or len(text) > max_chars or not all(c in _HEX for c in text):
        return None
    return text.upper()


def parse_token_line(line: str, *, max_chars: int = ID_TAG_MAX_CHARS) -> str | None:
    """The token of one line, unchanged but for blanks around it; None when not an idTag."""
    text = line.strip(" \t")
    if len(text) > max_chars or id_tag_problem(text) is not None:
        return None
    return text


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
    """A reader that prints one token per line; online once its port is open."""

    def __init__(
        self,
        events: asyncio.Queue[HalEvent],
        *,
        port: str,
        baudrate: int = 9600,
        connector_id: int | None = None,
        max_chars: int = ID_TAG_MAX_CHARS,
        hex_only: bool = False,
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
        if (
            isinstance(max_chars, bool)
            or not isinstance(max_chars, int)
            or not 1 <= max_chars <= ID_TAG_MAX_CHARS
        ):
            raise HalConfigError(
                f"max_chars: must be an integer 1..{ID_TAG_MAX_CHARS} (an idTag's length), "
                f"got {max_chars!r}"
            )
        if not isinstance(hex_only, bool):
            raise HalConfigError(f"hex_only: must be true or false, got {hex_only!r}")
        self._max_chars = max_chars
        self._parse = parse_uid_line if hex_only else parse_token_line

    async def _session(self, port: SerialPort) -> None:
        await self._online()
        lines = LineParser()
        while True:
            data = await port.read()
            for line in lines.feed(data):
                uid = self._parse(line, max_chars=self._max_chars)
                if uid is None:
                    if line.strip():
                        # The line may be a card number the reader mangled: masked too.
                        log.info("%s: not a token, discarded: %r", self._name(), Tag(line))
                    continue
                await self._report(uid)
