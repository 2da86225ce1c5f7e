"""RDM6300 125 kHz (EM4100) reader, 9600 8N1.

While a card is in the field the reader repeats a 14-byte frame::

    02 | 10 ASCII hex: version byte + 32-bit tag | 2 ASCII hex: XOR of the 5 bytes | 03

e.g. ``\\x0201004CB0A954\\x03`` is version 0x01, tag 0x004CB0A9 (5025961),
checksum 0x54. The idTag reported is the upper-case hex of the 5 bytes
(``01004CB0A9``). Frames with bad framing or checksum are discarded.
"""

from __future__ import annotations

import asyncio
import logging
import string
from functools import reduce
from operator import xor

from hal.interfaces import HalEvent
from hal.serial.port import SerialPort
from hal.serial.reader import RfidReader

log = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03
FRAME_LEN = 14
_HEX = frozenset(string.hexdigits.encode("ascii"))


def rdm6300_checksum(tag: bytes) -> int:
    """XOR of the 5 tag bytes."""
    return reduce(xor, tag, 0)


def build_rdm6300_frame(tag_hex10: str, *, checksum: int | None = None) -> bytes:
    """The frame an RDM6300 sends for ``tag_hex10`` (10 hex chars: version + tag).

    ``checksum`` overrides the computed one (to build a bad frame).
    """
    tag = _tag_bytes(tag_hex10)
    value = rdm6300_checksum(tag) if checksum is None else checksum
    if not 0 <= value <= 0xFF:
        raise ValueError(f"checksum out of range: {value!r}")
    text = f"{tag.hex().upper()}{value:02X}".encode("ascii")
    return bytes([STX]) + text + bytes([ETX])


def parse_rdm6300_frame(frame: bytes) -> str:
    """The idTag (10 upper-case hex chars) of one 14-byte frame; ``ValueError`` if bad."""
    if len(frame) != FRAME_LEN or frame[0] != STX or frame[-1] != ETX:
        raise ValueError(f"bad RDM6300 framing: {frame!r}")
    text = frame[1:13]
    if not all(b in _HEX for b in text):
        raise ValueError(f"RDM6300 frame is not hex: {frame!r}")
    tag = bytes.fromhex(text[:10].decode("ascii"))
    expected = rdm6300_checksum(tag)
    got = int(text[10:12], 16)
    if got != expected:
        raise ValueError(f"RDM6300 checksum {got:02X}, expected {expected:02X}: {frame!r}")
    return tag.hex().upper()


def rdm6300_tag_number(id_tag: str) -> int:
    """The 32-bit card number of an idTag (``01004CB0A9`` → 5025961)."""
    return int.from_bytes(_tag_bytes(id_tag)[1:], "big")


def _tag_bytes(tag_hex10: str) -> bytes:
    if len(tag_hex10) != 10 or not all(c in string.hexdigits for c in tag_hex10):
        raise ValueError(f"an RDM6300 tag is 10 hex characters, got {tag_hex10!r}")
    return bytes.fromhex(tag_hex10)


class Rdm6300Parser:
    """Incremental frame parser: resynchronises on the next STX after a bad frame."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.discarded = 0  # frames or stray bytes thrown away

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        tags: list[str] = []
        buf = self._buf
        while True:
            start = buf.find(STX)
            if start < 0:
                if buf:
                    self.discarded += 1
                    log.debug("RDM6300: %d stray byte(s) discarded", len(buf))
                buf.clear()
                return tags
            if start:
                self.discarded += 1
                log.debug("RDM6300: %d stray byte(s) discarded", start)
                del buf[:start]
            if len(buf) < FRAME_LEN:
                if all(b in _HEX for b in buf[1:]):
                    return tags
                # a partial frame with a non-hex byte can never complete
                self.discarded += 1
                log.info("RDM6300: bad frame discarded: %r", bytes(buf))
                del buf[:1]
                continue
            frame = bytes(buf[:FRAME_LEN])
            try:
                tags.append(parse_rdm6300_frame(frame))
            except ValueError as err:
                self.discarded += 1
                log.info("RDM6300: frame discarded: %s", err)
                del buf[:1]
            else:
                del buf[:FRAME_LEN]


class Rdm6300Reader(RfidReader):
    """An RDM6300 on a serial port. The reader only talks, so it is online once open."""

    def __init__(
        self,
        events: asyncio.Queue[HalEvent],
        *,
        port: str,
        baudrate: int = 9600,
        connector_id: int | None = None,
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

    async def _session(self, port: SerialPort) -> None:
        await self._online()
        parser = Rdm6300Parser()
        while True:
            data = await port.read()
            for tag in parser.feed(data):
                await self._report(tag)
