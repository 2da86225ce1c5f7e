"""An emulated RDM6300 on a ``SerialLink``: repeats its frame while a card is held.

``present(tag_hex10)`` holds a card (version byte + 32-bit tag as 10 hex
characters), ``remove()`` takes it away. Knobs: ``bad_checksum_next()``
spoils the checksum of the next frame, ``garbage(data)`` sends ``data``
before the next frame (or at once when no card is held).
"""

from __future__ import annotations

import asyncio

from hal.emulators.serial_link import SerialLink
from hal.serial.rdm6300 import build_rdm6300_frame, parse_rdm6300_frame, rdm6300_checksum


class Rdm6300Device:
    """The far side of ``hal.serial.rdm6300.Rdm6300Reader``."""

    def __init__(self, link: SerialLink, *, interval_s: float = 0.1) -> None:
        if not interval_s > 0.0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.link = link
        self.interval_s = interval_s
        self.frames_sent = 0
        self._tag: str | None = None
        self._bad_checksum = 0
        self._garbage = bytearray()
        self._changed = asyncio.Event()

    @property
    def tag(self) -> str | None:
        return self._tag

    def present(self, tag_hex10: str) -> None:
        parse_rdm6300_frame(build_rdm6300_frame(tag_hex10))  # validates
        self._tag = tag_hex10.upper()
        self._changed.set()

    def remove(self) -> None:
        self._tag = None

    def bad_checksum_next(self) -> None:
        self._bad_checksum += 1

    def garbage(self, data: bytes) -> None:
        self._garbage += data
        self._changed.set()

    async def run(self) -> None:
        """Send frames until cancelled; closes the link on exit."""
        try:
            while True:
                if self._garbage:
                    self.link.write(bytes(self._garbage))
                    self._garbage.clear()
                if self._tag is not None:
                    self._send_frame(self._tag)
                    await asyncio.sleep(self.interval_s)
                else:
                    self._changed.clear()
                    await self._changed.wait()
        finally:
            self.link.close()

    def _send_frame(self, tag: str) -> None:
        checksum = None
        if self._bad_checksum:
            self._bad_checksum -= 1
            checksum = rdm6300_checksum(bytes.fromhex(tag)) ^ 0xFF
        self.link.write(build_rdm6300_frame(tag, checksum=checksum))
        self.frames_sent += 1
