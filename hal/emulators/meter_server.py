"""An energy meter as a Modbus RTU server on a serial port, measuring the simulated plant.

``EmulatedMeter`` serves the registers of a meter map (``config/meters``) on
``port_path`` (usually the far end of a ``PtyPair``). Every request is answered
from ``world.reading(connector_id)`` at that moment, encoded with the map, so
the real ``ModbusMeter`` driver reads the plant's physics through real RTU
frames. Like the real meter it:

- answers only its own ``device_id`` (other ids and broadcasts get silence);
- answers only the map's function (03 or 04) and addresses inside the map's
  read blocks (others: exception 01 / 02), and refuses writes;
- says nothing at all while ``Fault.METER_OFFLINE`` is active on the connector.

``requests`` counts the requests it received, ``answers`` the frames it sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hal.errors import HalConfigError
from hal.interfaces import Fault
from hal.modbus.registers import load_map
from hal.sim.world import World

log = logging.getLogger("hal.emulators.meter")


class _Server(Protocol):
    """The part of pymodbus's ``ModbusSerialServer`` used here, typed."""

    async def serve_forever(self, *, background: bool = False) -> None: ...

    async def shutdown(self) -> None: ...


class EmulatedMeter:
    """Modbus RTU meter whose registers follow ``world.reading(connector_id)``."""

    def __init__(
        self,
        world: World,
        connector_id: int,
        port_path: str,
        *,
        map: str = "sdm630",
        device_id: int = 1,
        baudrate: int = 9600,
    ) -> None:
        world.connector(connector_id)  # KeyError for an unknown connector
        if isinstance(device_id, bool) or not 1 <= device_id <= 247:
            raise HalConfigError(f"device_id: must be 1..247, got {device_id!r}")
        self.register_map = load_map(map)
        self._world = world
        self._id = connector_id
        self._port_path = port_path
        self._device_id = device_id
        self._baudrate = baudrate
        self._mute = False
        self.requests = 0
        self.answers = 0
        self.ready = asyncio.Event()

    @property
    def port_path(self) -> str:
        return self._port_path

    @property
    def offline(self) -> bool:
        """True while the world holds this meter offline (it does not answer)."""
        return Fault.METER_OFFLINE in self._world.faults(self._id)

    async def run(self) -> None:
        """Serve until cancelled; the port is closed on the way out."""
        device = SimDevice(
            id=0,  # every id reaches the device; answers for other ids are muted
            simdata=[
                SimData(
                    block.address, count=block.count, datatype=DataType.REGISTERS, readonly=True
                )
                for block in self.register_map.blocks
            ],
            action=self._action,
        )
        server: _Server = ModbusSerialServer(
            device,
            framer=FramerType.RTU,
            port=self._port_path,
            baudrate=self._baudrate,
            trace_packet=self._trace_packet,
            trace_pdu=self._trace_pdu,
        )
        try:
            # serve_forever() without background swallows CancelledError: keep our own wait.
            await server.serve_forever(background=True)
        except RuntimeError as err:
            await server.shutdown()
            raise HalConfigError(f"emulated meter: cannot open {self._port_path}: {err}") from err
        log.info(
            "emulated %s (id %d) for connector %d on %s",
            self.register_map.model,
            self._device_id,
            self._id,
            self._port_path,
        )
        self.ready.set()
        try:
            await asyncio.Future()
        finally:
            self.ready.clear()
            await server.shutdown()

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Fill the requested registers from the world (pymodbus's per-request hook)."""
        if values is not None:
            return ExcCodes.ILLEGAL_ADDRESS
        if function_code != self.register_map.function_code:
            return ExcCodes.ILLEGAL_FUNCTION
        image = self.register_map.encode(self._world.reading(self._id))
        for at in range(address, address + count):
            registers[at - start_address] = image.get(at, 0)
        return None

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending:
            self._mute = self.offline or pdu.dev_id != self._device_id
        else:
            self.requests += 1
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        if self._mute:
            self._mute = False
            return b""
        self.answers += 1
        return data
