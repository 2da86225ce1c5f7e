"""Energy meter on a Modbus RTU line (``EnergyMeter`` over pymodbus's async serial client).

``ModbusMeter`` reads the blocks its register map (``config/meters``) plans,
each request retried ``retries`` times on a timeout, a bad checksum (which
pymodbus drops, so it shows as a timeout), a Modbus exception answer or a
malformed answer; the first block that still fails ends the read.

The port is opened lazily by ``read()`` and reopened after a failure of the
line; ``run()`` (optional) keeps it open in the background and closes it when
cancelled; ``close()`` closes it at once. Meters given the same ``port``
string share one client (an RS-485 bus with one meter per connector, told
apart by ``device_id``): one transaction at a time, and the port closes when
the last of them closes. Their serial settings and ``timeout_s`` must agree.

Loss of the meter: a failed read raises ``MeterError``. After ``loss_after``
consecutive failed reads the meter is lost: ``FaultChanged(connector_id,
METER_OFFLINE, True)`` is queued once and, with ``on_loss="estimate"``, reads
return the last good reading with its energy advanced by its power x the time
since (the fault stays reported) instead of raising. The first good read
after the loss queues ``FaultChanged(..., False)``.

The energy never goes backwards: a reading below what was already returned
(meter glitch, an estimate ahead of the meter) reports the earlier value.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Final, Literal, get_args

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from hal.errors import HalConfigError, MeterError
from hal.interfaces import EnergyMeter, Fault, FaultChanged, HalEvent, MeterReading
from hal.modbus.registers import Block, RegisterMap, load_map

log = logging.getLogger("hal.modbus")

OnLoss = Literal["suspend", "estimate"]

PARITIES: Final = ("N", "E", "O")
STOPBITS: Final = (1, 2)
RECONNECT_S: Final = 1.0
HOUR_S: Final = 3600.0


class _ReadFailed(Exception):
    """The line or one block could not be read after every attempt."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Settings:
    baudrate: int
    parity: str
    stopbits: int
    timeout_s: float


class _Line:
    """One serial port and its pymodbus client, shared by the meters on its bus."""

    def __init__(self, port: str, settings: _Settings) -> None:
        self.port = port
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        self._holders: weakref.WeakSet[object] = weakref.WeakSet()
        self._open_ok: bool | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def lock(self) -> asyncio.Lock:
        """Held for each transaction: one at a time on the bus."""
        self._bind()
        return self._lock

    def _bind(self) -> None:
        # pymodbus binds a client to the loop that builds it, so it is built
        # in the running loop (not at configuration time), once per loop.
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._client is not None:  # left open by an earlier loop (tests)
            with contextlib.suppress(RuntimeError, OSError):
                self._client.close()
        self._loop, self._client, self._lock = loop, None, asyncio.Lock()

    def hold(self, holder: object) -> None:
        """Keep the port open for ``holder`` until it calls ``release()``."""
        self._holders.add(holder)

    async def open(self, holder: object) -> AsyncModbusSerialClient:
        """The connected client (the caller holds ``lock()``); ``_ReadFailed`` if it won't open."""
        self._bind()
        client = self._client
        if client is None:
            client = self._client = AsyncModbusSerialClient(
                self.port,
                framer=FramerType.RTU,
                baudrate=self.settings.baudrate,
                bytesize=8,
                parity=self.settings.parity,
                stopbits=self.settings.stopbits,
                timeout=self.settings.timeout_s,
                retries=0,  # retried by the meter, Modbus exception answers included
                reconnect_delay=0,  # no background reconnect task: reopened on demand
            )
        self.hold(holder)
        if client.connected:
            return client
        if not await client.connect():
            if self._open_ok is not False:
                log.warning("modbus: cannot open %s", self.port)
            self._open_ok = False
            raise _ReadFailed(f"cannot open {self.port}")
        if self._open_ok is not True:
            log.info("modbus: opened %s", self.port)
        self._open_ok = True
        return client

    def reset(self) -> None:
        """Close after a failure of the line; the next ``open()`` reopens."""
        if self._client is not None:
            self._client.close()

    def release(self, holder: object) -> None:
        """``holder`` is done; the port closes when nobody holds it."""
        self._holders.discard(holder)
        if not self._holders and self.connected:
            self.reset()
            log.info("modbus: closed %s", self.port)


_LINES: weakref.WeakValueDictionary[str, _Line] = weakref.WeakValueDictionary()


def _line(port: str, settings: _Settings) -> _Line:
    line = _LINES.get(port)
    if line is None:
        line = _LINES[port] = _Line(port, settings)
    elif line.settings != settings:
        raise HalConfigError(
            f"meter port {port}: serial settings {settings} differ from "
            f"{line.settings} of another meter on the same port"
        )
    return line


class ModbusMeter:
    """``EnergyMeter`` reading a Modbus RTU meter through a register map."""

    def __init__(
        self,
        connector_id: int,
        events: asyncio.Queue[HalEvent],
        *,
        port: str,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        device_id: int = 1,
        map: str = "sdm630",
        timeout_s: float = 0.5,
        retries: int = 2,
        on_loss: OnLoss = "suspend",
        loss_after: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(port, str) or not port:
            raise HalConfigError(f"meter port: must be a device path, got {port!r}")
        _whole("baudrate", baudrate, 50, 4_000_000)
        if parity not in PARITIES:
            raise HalConfigError(f"meter parity: must be one of N, E, O, got {parity!r}")
        if stopbits not in STOPBITS or isinstance(stopbits, bool):
            raise HalConfigError(f"meter stopbits: must be 1 or 2, got {stopbits!r}")
        _whole("device_id", device_id, 1, 247)
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, int | float)
            or not 0.0 < timeout_s <= 60.0
        ):
            raise HalConfigError(f"meter timeout_s: must be > 0 and <= 60, got {timeout_s!r}")
        _whole("retries", retries, 0, 10)
        if on_loss not in get_args(OnLoss):
            raise HalConfigError(f"meter on_loss: must be suspend or estimate, got {on_loss!r}")
        _whole("loss_after", loss_after, 1, 1000)
        self.connector_id = connector_id
        self.register_map: RegisterMap = load_map(map)
        self._line = _line(port, _Settings(baudrate, parity, stopbits, float(timeout_s)))
        self._events = events
        self._device_id = device_id
        self._timeout_s = float(timeout_s)
        self._retries = retries
        self._on_loss: OnLoss = on_loss
        self._loss_after = loss_after
        self._clock = clock
        self._lock = asyncio.Lock()
        self._failures = 0
        self._lost = False
        self._last: MeterReading | None = None
        self._last_s = 0.0
        self._floor_wh: float | None = None

    def __repr__(self) -> str:
        return (
            f"ModbusMeter(connector {self.connector_id}, {self.register_map.model} "
            f"id {self._device_id} on {self.port})"
        )

    # ------------------------------------------------------------ state

    @property
    def port(self) -> str:
        return self._line.port

    @property
    def connected(self) -> bool:
        """Whether the serial port is open now."""
        return self._line.connected

    @property
    def lost(self) -> bool:
        """True from ``loss_after`` consecutive failed reads until the next good one."""
        return self._lost

    # ------------------------------------------------------------ EnergyMeter

    async def read(self) -> MeterReading:
        """Read every block of the map; see the module docstring for failures."""
        async with self._lock:
            try:
                values = await self._read_all()
                reading = self.register_map.decode(values, last_energy_wh=self._floor_wh)
            except (_ReadFailed, MeterError) as err:
                return self._failed(str(err))
            return self._succeeded(reading)

    # ------------------------------------------------------------ life cycle

    async def run(self) -> None:
        """Keep the port open (retrying every second when it won't open) until cancelled."""
        self._line.hold(self)
        try:
            while True:
                if not self._line.connected:
                    async with self._line.lock():
                        with contextlib.suppress(_ReadFailed):  # logged by the line
                            await self._line.open(self)
                await asyncio.sleep(RECONNECT_S)
        finally:
            self.close()

    def close(self) -> None:
        """Let go of the port: it closes unless another meter on it still reads."""
        self._line.release(self)

    # ------------------------------------------------------------ reading

    async def _read_all(self) -> dict[int, int]:
        values: dict[int, int] = {}
        for block in self.register_map.blocks:
            words = await self._read_block(block)
            values.update(zip(range(block.address, block.end), words, strict=True))
        return values

    async def _read_block(self, block: Block) -> Sequence[int]:
        problem = "no attempt"
        for _attempt in range(self._retries + 1):
            async with self._line.lock():
                client = await self._line.open(self)
                try:
                    # pymodbus times the answer out itself; this bounds a stuck transaction
                    async with asyncio.timeout(2.0 * self._timeout_s + 1.0):
                        response = await self._request(client, block)
                except (ConnectionException, OSError) as err:
                    problem = f"line failure: {err}"
                    self._line.reset()
                    continue
                except (ModbusException, TimeoutError) as err:
                    problem = f"no valid answer within {self._timeout_s:g} s ({err})"
                    continue
            if response.isError():
                problem = f"Modbus exception {response.exception_code}"
                continue
            if (
                response.function_code != self.register_map.function_code
                or len(response.registers) != block.count
            ):
                problem = (
                    f"unexpected answer (function {response.function_code}, "
                    f"{len(response.registers)} registers)"
                )
                continue
            return response.registers
        raise _ReadFailed(f"{block}: {problem} ({self._retries + 1} attempt(s))")

    async def _request(self, client: AsyncModbusSerialClient, block: Block) -> ModbusPDU:
        if self.register_map.function == "holding":
            return await client.read_holding_registers(
                block.address, count=block.count, device_id=self._device_id
            )
        return await client.read_input_registers(
            block.address, count=block.count, device_id=self._device_id
        )

    # ------------------------------------------------------------ outcome

    def _failed(self, problem: str) -> MeterReading:
        self._failures += 1
        where = f"connector {self.connector_id}: meter id {self._device_id} on {self.port}"
        if self._lost:
            log.debug("%s: still lost: %s", where, problem)
        elif self._failures >= self._loss_after:
            self._lost = True
            log.error("%s lost after %d failed reads: %s", where, self._failures, problem)
            self._emit(True)
        else:
            log.warning("%s: read failed: %s", where, problem)
        if self._lost and self._on_loss == "estimate" and self._last is not None:
            return self._estimate()
        raise MeterError(f"{where}: {problem}")

    def _estimate(self) -> MeterReading:
        assert self._last is not None
        elapsed_s = max(0.0, self._clock() - self._last_s)
        energy_wh = self._last.energy_wh + max(0.0, self._last.power_w) * elapsed_s / HOUR_S
        if self._floor_wh is not None:
            energy_wh = max(energy_wh, self._floor_wh)
        self._floor_wh = energy_wh
        return dataclasses.replace(self._last, energy_wh=energy_wh)

    def _succeeded(self, reading: MeterReading) -> MeterReading:
        floor_wh = self._floor_wh
        if floor_wh is not None and reading.energy_wh < floor_wh:
            reading = dataclasses.replace(reading, energy_wh=floor_wh)
        self._floor_wh = reading.energy_wh
        self._last = reading
        self._last_s = self._clock()
        self._failures = 0
        if self._lost:
            self._lost = False
            log.info("connector %d meter answers again", self.connector_id)
            self._emit(False)
        return reading

    def _emit(self, active: bool) -> None:
        event = FaultChanged(self.connector_id, Fault.METER_OFFLINE, active)
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            log.error("connector %d meter: event queue full, dropped %s", self.connector_id, event)


def _whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HalConfigError(f"meter {name}: must be a whole number {low}..{high}, got {value!r}")


_PROTOCOL: type[EnergyMeter] = ModbusMeter
