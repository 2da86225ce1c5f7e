"""An emulated PN532 on a ``SerialLink``, answering the real HSU protocol.

It starts asleep, as after power-up: frames are ignored until the host sends
the wake-up bytes (``55 55`` ...). Every valid command is acknowledged
(``ACK``) and answered with a response frame (code + 1): GetFirmwareVersion,
SAMConfiguration, RFConfiguration and InListPassiveTarget (0 or 1 target,
106 kbps type A, the UID set with ``present()``). Unknown commands get the
error frame. A NACK from the host makes it send its last response again; an
ACK from the host (abort) is accepted and ignored. A replug of the link is a
power cycle: the device is asleep again.

Test knobs: ``nack_next()`` answers the next command with a NACK instead of
an ACK (and does not execute it), ``error_next()`` acknowledges it and then
sends the error frame, ``corrupt_next()`` spoils the data checksum of the
next response (the host's NACK then gets the good frame), ``garbage(data)``
puts ``data`` on the wire just before the next frame the device sends.
"""

from __future__ import annotations

import logging

from hal.emulators.serial_link import LinkClosed, SerialLink
from hal.serial.pn532 import (
    ACK_FRAME,
    CMD_GET_FIRMWARE_VERSION,
    CMD_IN_LIST_PASSIVE_TARGET,
    CMD_RF_CONFIGURATION,
    CMD_SAM_CONFIGURATION,
    ERROR_FRAME,
    NACK_FRAME,
    TFI_HOST,
    TFI_PN532,
    Frame,
    Nack,
    Pn532FrameParser,
    build_frame,
)

log = logging.getLogger(__name__)

WAKE_BYTE = 0x55
SENS_RES = b"\x00\x04"  # ATQA of a MIFARE Classic 1K
SEL_RES = 0x08  # SAK of a MIFARE Classic 1K


class Pn532Device:
    """The far side of ``hal.serial.pn532.Pn532Reader`` (see the module docstring)."""

    def __init__(
        self, link: SerialLink, *, firmware: tuple[int, int, int, int] = (0x32, 0x01, 0x06, 0x07)
    ) -> None:
        self.link = link
        self.firmware = firmware
        self.awake = False
        self.sam_configured = False
        self.commands: list[int] = []
        """Codes of the commands received (acknowledged or not), oldest first."""
        self._uid: bytes | None = None
        self._parser = Pn532FrameParser()
        self._generation = link.generation
        self._last_response: bytes | None = None
        self._nack_next = 0
        self._error_next = 0
        self._corrupt_next = 0
        self._garbage = bytearray()

    # ------------------------------------------------------------ plant

    @property
    def uid(self) -> str | None:
        """The UID in the field (upper-case hex), None without a card."""
        return self._uid.hex().upper() if self._uid is not None else None

    def present(self, uid_hex: str) -> None:
        """Hold a type A card with this UID (4, 7 or 10 bytes as hex) to the reader."""
        try:
            uid = bytes.fromhex(uid_hex)
        except ValueError:
            raise ValueError(f"UID must be hex, got {uid_hex!r}") from None
        if not 1 <= len(uid) <= 10:
            raise ValueError(f"UID must be 1..10 bytes, got {uid_hex!r}")
        self._uid = uid

    def remove(self) -> None:
        """Take the card away."""
        self._uid = None

    def nack_next(self) -> None:
        self._nack_next += 1

    def error_next(self) -> None:
        self._error_next += 1

    def corrupt_next(self) -> None:
        self._corrupt_next += 1

    def garbage(self, data: bytes) -> None:
        self._garbage += data

    # ------------------------------------------------------------ wire

    async def run(self) -> None:
        """Answer the host until cancelled; closes the link on exit."""
        try:
            while True:
                data = await self.link.read()
                if self.link.generation != self._generation:
                    self._power_cycle()
                self.receive(data)
        except LinkClosed:
            return
        finally:
            self.link.close()

    def _power_cycle(self) -> None:
        self._generation = self.link.generation
        self.awake = False
        self.sam_configured = False
        self._parser.reset()
        self._last_response = None

    def receive(self, data: bytes) -> None:
        """Handle bytes from the host (``run()`` calls this for everything it reads)."""
        if not self.awake:
            wake = data.find(bytes([WAKE_BYTE]))
            if wake < 0:
                log.debug("PN532 asleep, %d byte(s) ignored", len(data))
                return
            self.awake = True
            data = data[wake:]
        for item in self._parser.feed(data):
            if isinstance(item, Frame) and item.tfi == TFI_HOST and item.data:
                self._command(item.data[0], item.data[1:])
            elif isinstance(item, Nack):
                if self._last_response is not None:
                    self._send(self._last_response)
            else:
                log.debug("PN532 emulator: %s ignored", item)

    def _command(self, code: int, params: bytes) -> None:
        self.commands.append(code)
        if self._nack_next:
            self._nack_next -= 1
            self._send(NACK_FRAME)
            return
        self._send(ACK_FRAME)
        if self._error_next:
            self._error_next -= 1
            response = ERROR_FRAME
        else:
            data = self._answer(code, params)
            if data is None:
                response = ERROR_FRAME
            else:
                response = build_frame(bytes([code + 1]) + data, tfi=TFI_PN532)
        self._last_response = response
        if self._corrupt_next and response is not ERROR_FRAME:
            self._corrupt_next -= 1
            dcs = len(response) - 2
            response = response[:dcs] + bytes([response[dcs] ^ 0xFF]) + response[dcs + 1 :]
        self._send(response)

    def _answer(self, code: int, params: bytes) -> bytes | None:
        if code == CMD_GET_FIRMWARE_VERSION:
            return bytes(self.firmware)
        if code == CMD_SAM_CONFIGURATION:
            if not params or params[0] not in (0x01, 0x02, 0x03, 0x04):
                return None
            self.sam_configured = True
            return b""
        if code == CMD_RF_CONFIGURATION:
            return b"" if params else None
        if code == CMD_IN_LIST_PASSIVE_TARGET:
            if len(params) < 2 or params[0] not in (1, 2):
                return None
            if params[1] != 0x00 or self._uid is None:
                return b"\x00"
            uid = self._uid
            return bytes([1, 1]) + SENS_RES + bytes([SEL_RES, len(uid)]) + uid
        return None

    def _send(self, frame: bytes) -> None:
        if self._garbage:
            frame = bytes(self._garbage) + frame
            self._garbage.clear()
        self.link.write(frame)
