"""NXP PN532 over HSU (UART, 115200 8N1): frames and an asyncio reader.

Normal information frame::

    00 00 FF LEN LCS TFI data... DCS 00

``LEN`` counts TFI + data, ``LEN + LCS`` and ``TFI + data + DCS`` are 0 mod
256; TFI is D4 host → PN532 and D5 back, the response code is the command
code + 1. Bodies longer than 255 bytes use the extended frame
``00 00 FF FF FF LENM LENL LCS TFI data... DCS 00``. Special frames: ACK
``00 00 FF 00 FF 00``, NACK ``00 00 FF FF 00 00`` and the application error
frame ``00 00 FF 01 FF 7F 81 00`` (TFI 7F).

The reader wakes the PN532 (``55 55`` and zeros), sends SAMConfiguration
(normal mode), asks GetFirmwareVersion (no answer: the reader is offline),
limits passive activation retries with RFConfiguration so that an empty
field answers at once, then polls InListPassiveTarget (one target, 106 kbps
type A) every ``poll_s``. Each command is retried on NACK, error frame and
timeouts; a response with a bad checksum is asked again with a NACK.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from hal.errors import HalConfigError, HalError, HalTimeout
from hal.interfaces import HalEvent
from hal.serial.port import SerialPort
from hal.serial.reader import RfidReader

log = logging.getLogger(__name__)

TFI_HOST = 0xD4
TFI_PN532 = 0xD5
TFI_ERROR = 0x7F

START_CODE = b"\x00\xff"
ACK_FRAME = bytes.fromhex("0000ff00ff00")
NACK_FRAME = bytes.fromhex("0000ffff0000")
ERROR_FRAME = bytes.fromhex("0000ff01ff7f8100")
WAKEUP = b"\x55\x55" + bytes(14)

CMD_GET_FIRMWARE_VERSION = 0x02
CMD_SAM_CONFIGURATION = 0x14
CMD_RF_CONFIGURATION = 0x32
CMD_IN_LIST_PASSIVE_TARGET = 0x4A

SAM_NORMAL_MODE = bytes([0x01, 0x14, 0x01])  # normal mode, 1 s virtual-card timeout, use IRQ
RF_MAX_RETRIES = bytes([0x05, 0xFF, 0x01, 0x02])  # CfgItem 5: MxRtyATR, MxRtyPSL, passive
LIST_ONE_106A = bytes([0x01, 0x00])  # MaxTg 1, BrTy 106 kbps type A

PN532_IC = 0x32
MAX_BODY = 0xFFFF


class Pn532Error(HalError):
    """The PN532 answered wrongly (NACK, error frame, bad response) too often."""


# ---------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Ack:
    """ACK frame."""


@dataclass(frozen=True, slots=True)
class Nack:
    """NACK frame: the other side asks for the last frame again."""


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """Application-level error frame (TFI 7F, no data)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """An information frame: ``tfi`` and the bytes after it (command code first)."""

    tfi: int
    data: bytes


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame whose header was sound but whose data checksum (DCS) was wrong."""

    reason: str


Pn532Item = Ack | Nack | ErrorFrame | Frame | BadFrame

ACK = Ack()
NACK = Nack()
ERROR = ErrorFrame()


def _checksum(data: bytes | bytearray) -> int:
    return (-sum(data)) & 0xFF


def build_frame(data: bytes, tfi: int = TFI_HOST) -> bytes:
    """Frame ``data`` (command code and parameters) with ``tfi``.

    >>> build_frame(bytes([0x02])).hex(" ")
    '00 00 ff 02 fe d4 02 2a 00'
    """
    if not 0 <= tfi <= 0xFF:
        raise ValueError(f"TFI out of range: {tfi!r}")
    body = bytes([tfi]) + bytes(data)
    length = len(body)
    if length > MAX_BODY:
        raise ValueError(f"frame body too long: {length} bytes")
    if length <= 0xFF:
        header = bytes([0x00, 0x00, 0xFF, length, (-length) & 0xFF])
    else:
        lenm, lenl = length >> 8, length & 0xFF
        header = bytes([0x00, 0x00, 0xFF, 0xFF, 0xFF, lenm, lenl, (-(lenm + lenl)) & 0xFF])
    return header + body + bytes([_checksum(body), 0x00])


def parse_frame(frame: bytes) -> Pn532Item:
    """Parse exactly one complete frame (postamble optional); raise ``ValueError`` otherwise."""
    parser = Pn532FrameParser()
    items = parser.feed(frame)
    if len(items) != 1 or isinstance(items[0], BadFrame) or parser.buffered.strip(b"\x00"):
        raise ValueError(f"not one valid PN532 frame: {frame.hex(' ')}")
    return items[0]


class Pn532FrameParser:
    """Incremental parser: feed bytes as they come, get the frames they complete.

    Bytes outside frames (preamble, postamble, noise) are skipped: the parser
    looks for the start code ``00 FF`` and checks LEN/LCS before trusting a
    length, so it resynchronises on the next start code after garbage. A
    frame whose DCS is wrong yields ``BadFrame`` (the caller may NACK it).
    """

    _TFIS = frozenset({TFI_HOST, TFI_PN532, TFI_ERROR})

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0  # bytes discarded as garbage (preamble/postamble zeros not counted)

    @property
    def buffered(self) -> bytes:
        return bytes(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Pn532Item]:
        self._buf += data
        items: list[Pn532Item] = []
        while True:
            item = self._next()
            if item is None:
                return items
            items.append(item)

    def _skip(self, count: int) -> None:
        self.skipped += sum(1 for b in self._buf[:count] if b != 0x00)
        del self._buf[:count]

    def _next(self) -> Pn532Item | None:
        buf = self._buf
        while True:
            start = buf.find(START_CODE)
            if start < 0:
                # keep a trailing 00: it may be the first half of a start code
                self._skip(len(buf) - 1 if buf.endswith(b"\x00") else len(buf))
                return None
            self._skip(start)
            if len(buf) < 4:
                return None
            length, lcs = buf[2], buf[3]
            if length == 0x00 and lcs == 0xFF:
                del buf[:4]
                return ACK
            if length == 0xFF and lcs == 0x00:
                del buf[:4]
                return NACK
            if length == 0xFF and lcs == 0xFF:
                if len(buf) < 7:
                    return None
                lenm, lenl, lcs = buf[4], buf[5], buf[6]
                if (lenm + lenl + lcs) & 0xFF or (lenm << 8 | lenl) <= 0xFF:
                    self._skip(1)
                    continue
                header = 7
                length = lenm << 8 | lenl
            elif (length + lcs) & 0xFF or length == 0:
                self._skip(1)
                continue
            else:
                header = 4
            if len(buf) > header and buf[header] not in self._TFIS:
                self._skip(1)
                continue
            if len(buf) < header + length + 1:
                return None
            body = bytes(buf[header : header + length])
            dcs = buf[header + length]
            if (sum(body) + dcs) & 0xFF:
                self._skip(1)
                return BadFrame(f"DCS mismatch in {length}-byte frame")
            del buf[: header + length + 1]
            if body[0] == TFI_ERROR:
                return ERROR
            return Frame(body[0], body[1:])


def parse_passive_targets(data: bytes) -> list[bytes]:
    """NFCIDs from an InListPassiveTarget 106 kbps type A response.

    ``data`` follows the response code: ``NbTg`` then per target ``Tg
    SENS_RES(2) SEL_RES NFCIDLen NFCID...`` (and ATS when SEL_RES announces
    ISO/IEC 14443-4). Raises ``Pn532Error`` when the response is malformed.
    """
    if not data:
        raise Pn532Error("InListPassiveTarget: empty response")
    count, pos = data[0], 1
    uids: list[bytes] = []
    for _ in range(count):
        if len(data) < pos + 5:
            raise Pn532Error(f"InListPassiveTarget: truncated target: {data.hex(' ')}")
        sel_res, id_len = data[pos + 3], data[pos + 4]
        pos += 5
        if id_len == 0 or len(data) < pos + id_len:
            raise Pn532Error(f"InListPassiveTarget: bad NFCID length: {data.hex(' ')}")
        uids.append(bytes(data[pos : pos + id_len]))
        pos += id_len
        if sel_res & 0x20 and pos < len(data):
            pos += max(data[pos], 1)  # ATS, its first byte counts the whole ATS
    return uids


# ---------------------------------------------------------------- reader


class Pn532Reader(RfidReader):
    """A PN532 on a serial port (HSU). See the module docstring.

    ``ack_timeout_s`` bounds the wait for the ACK of a command,
    ``response_timeout_s`` the wait for its response, ``retries`` how often a
    command is sent again after a NACK, error frame or timeout before the
    reader counts as lost.
    """

    def __init__(
        self,
        events: asyncio.Queue[HalEvent],
        *,
        port: str,
        baudrate: int = 115200,
        connector_id: int | None = None,
        poll_s: float = 0.2,
        ack_timeout_s: float = 0.1,
        response_timeout_s: float = 0.5,
        retries: int = 2,
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
        for name, value in (
            ("poll_s", poll_s),
            ("ack_timeout_s", ack_timeout_s),
            ("response_timeout_s", response_timeout_s),
        ):
            if not value > 0.0:
                raise HalConfigError(f"{name}: must be > 0, got {value!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise HalConfigError(f"retries: must be an integer >= 0, got {retries!r}")
        self._poll_s = float(poll_s)
        self._ack_timeout_s = float(ack_timeout_s)
        self._response_timeout_s = float(response_timeout_s)
        self._retries = retries
        self._parser = Pn532FrameParser()
        self._pending: deque[Pn532Item] = deque()
        self._io: SerialPort | None = None
        self.firmware: tuple[int, int, int, int] | None = None
        """IC, Ver, Rev, Support from GetFirmwareVersion; None before the handshake."""

    async def _session(self, port: SerialPort) -> None:
        self._io = port
        self._parser.reset()
        self._pending.clear()
        try:
            await self._handshake()
            await self._online()
            while True:
                data = await self.command(CMD_IN_LIST_PASSIVE_TARGET, LIST_ONE_106A)
                for uid in parse_passive_targets(data):
                    await self._report(uid.hex().upper())
                await asyncio.sleep(self._poll_s)
        finally:
            self._io = None

    async def _handshake(self) -> None:
        await self.command(CMD_SAM_CONFIGURATION, SAM_NORMAL_MODE, wake=True)
        version = await self.command(CMD_GET_FIRMWARE_VERSION)
        if len(version) < 4:
            raise Pn532Error(f"GetFirmwareVersion: short response {version.hex(' ')}")
        ic, ver, rev, support = version[:4]
        self.firmware = (ic, ver, rev, support)
        if ic != PN532_IC:
            log.warning("%s: IC 0x%02X is not a PN532, trying anyway", self._name(), ic)
        log.info(
            "%s: PN532 firmware %d.%d (IC 0x%02X, support 0x%02X)",
            self._name(),
            ver,
            rev,
            ic,
            support,
        )
        await self.command(CMD_RF_CONFIGURATION, RF_MAX_RETRIES)

    async def command(self, code: int, params: bytes = b"", *, wake: bool = False) -> bytes:
        """Send command ``code`` and return the response data after its code.

        Only valid inside a session. Raises ``HalTimeout`` when the PN532
        never answered, ``Pn532Error`` when it kept answering wrongly, and
        ``SerialPortError`` when the port went away.
        """
        port = self._io
        if port is None:
            raise Pn532Error("no open port")
        frame = build_frame(bytes([code]) + params)
        if wake:
            frame = WAKEUP + frame
        failures: list[str] = []
        for _attempt in range(self._retries + 1):
            self._parser.reset()
            self._pending.clear()
            try:
                async with asyncio.timeout(self._ack_timeout_s):
                    await port.write(frame)
                    reply = await self._next_of(Ack, Nack, ErrorFrame)
            except TimeoutError:
                failures.append("no ACK")
                continue
            if not isinstance(reply, Ack):
                failures.append("NACK" if isinstance(reply, Nack) else "error frame")
                continue
            try:
                async with asyncio.timeout(self._response_timeout_s):
                    result = await self._response(port, code)
            except TimeoutError:
                failures.append("no response")
                await port.write(ACK_FRAME)  # abort the command still running
                continue
            if isinstance(result, bytes):
                return result
            failures.append(result)
        what = f"PN532 command 0x{code:02X}: {', '.join(failures)}"
        if all(f.startswith("no ") for f in failures):
            raise HalTimeout(what)
        raise Pn532Error(what)

    async def _response(self, port: SerialPort, code: int) -> bytes | str:
        """Wait for the response to ``code``; a str says why to retry."""
        nacks = 0
        while True:
            item = await self._next()
            if isinstance(item, Frame):
                if item.tfi == TFI_PN532 and item.data[:1] == bytes([code + 1]):
                    return item.data[1:]
                log.debug("%s: stale frame %s ignored", self._name(), item)
            elif isinstance(item, ErrorFrame):
                return "error frame"
            elif isinstance(item, Nack):
                return "NACK"
            elif isinstance(item, BadFrame):
                if nacks >= self._retries:
                    return "bad checksum"
                nacks += 1
                log.debug("%s: %s, asking again", self._name(), item.reason)
                await port.write(NACK_FRAME)

    async def _next_of(self, *kinds: type[Pn532Item]) -> Pn532Item:
        while True:
            item = await self._next()
            if isinstance(item, kinds):
                return item
            log.debug("%s: %s ignored while waiting for an ACK", self._name(), item)

    async def _next(self) -> Pn532Item:
        port = self._io
        if port is None:
            raise Pn532Error("no open port")
        while not self._pending:
            data = await port.read()
            self._pending.extend(self._parser.feed(data))
        return self._pending.popleft()
