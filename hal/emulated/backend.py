"""The emulated backend: every real driver, against an emulator of its device.

The plant physics are the simulator's (``hal.sim.world.World``); what differs
from the simulated backend is that nothing reaches the firmware except through
a real protocol:

- contactor and cable lock: gpiozero drivers on mock pins, wired to a plant
  whose contacts follow their coils with delays (``GpioPlant``); the
  emergency stop and the tamper switch are GPIO inputs the plant drives;
- EVSE pilot controller: CAN frames encoded with the DBC file, on a
  python-can ``virtual`` bus, from an emulated controller;
- vehicle BMS: CHAdeMO frames on a CAN bus of each connector;
- energy meter: Modbus RTU over a pair of pseudo-terminals, served by a
  pymodbus server with an SDM630 register map;
- RFID: a PN532 on a pseudo-terminal for the station, a UID-per-line
  reader for each connector, and one for the station that carries tokens a
  PN532 cannot (any idTag that is not upper-case hex of whole bytes).

``plant`` drives the far side exactly like the simulated backend's, so the
end-to-end suite runs unchanged against both.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import can
from gpiozero.pins.mock import MockFactory

from hal.can.bms import ChademoBms
from hal.can.evse import CanEvseController
from hal.emulated.plant import EmulatedPlant, LineReaderDevice
from hal.emulators.ev_bms import EmulatedChademoVehicle
from hal.emulators.evse_controller import EmulatedEvseController
from hal.emulators.gpio_plant import GpioPlant, GpioWiring
from hal.emulators.meter_server import EmulatedMeter
from hal.emulators.pn532_device import Pn532Device
from hal.emulators.pty_pair import PtyPair
from hal.emulators.serial_link import SerialLink
from hal.errors import HalConfigError
from hal.gpio.inputs import GpioEmergencyStop, GpioTamper
from hal.gpio.lock import GpioLock
from hal.gpio.relay import GpioRelay
from hal.interfaces import BoardSettings, ConnectorHardware, HalEvent
from hal.lifecycle import DriverSet
from hal.modbus.meter import ModbusMeter
from hal.modbus.registers import load_map
from hal.registry import BackendCheck, BackendFactory
from hal.serial.line_reader import LineReader
from hal.serial.pn532 import Pn532Reader
from hal.sim.backend import nullable_option, number_option, option_getter
from hal.sim.world import MAX_CURRENT_A, MIN_OFFER_A, Clock, World

log = logging.getLogger("hal.emulated")

MAX_CONNECTORS = 4  # pins on the emulated 40-pin header: five per connector
ESTOP_PIN = 26
TAMPER_PIN = 25
READER_HOLD_OFF_S = 0.3  # same card ignored this long after its last sighting
READER_REOPEN_S = (0.2, 1.0)  # backoff of a reader that went away: first and longest wait


def wiring(connector_id: int) -> GpioWiring:
    """BCM pins of connector ``connector_id`` on the emulated board."""
    base = 4 + 5 * (connector_id - 1)
    return GpioWiring(
        coil_pin=base,
        feedback_pin=base + 1,
        lock_pin=base + 2,
        unlock_pin=base + 3,
        lock_feedback_pin=base + 4,
    )


@dataclass(frozen=True, slots=True)
class EmulatedOptions:
    """Options of the emulated backend (the ``hal:`` mapping minus ``backend``)."""

    cable_rating_a: float = 32.0
    ev_max_current_a: float = 32.0
    battery_kwh: float | None = 60.0  # None: no battery model, no SoC
    meter_start_wh: float = 0.0
    meter_map: str = "sdm630"
    relay_delay_s: float = 0.03
    lock_delay_s: float = 0.05

    @classmethod
    def parse(cls, options: Mapping[str, object]) -> EmulatedOptions:
        """Validate ``options``; ``HalConfigError`` names ``hal.<option>`` and the problem."""
        get = option_getter(options, cls, "emulated")
        meter_map = get("meter_map")
        if not isinstance(meter_map, str) or not meter_map:
            raise HalConfigError(f"hal.meter_map: must be a register map name, got {meter_map!r}")
        try:
            load_map(meter_map)
        except HalConfigError as err:
            raise HalConfigError(f"hal.meter_map: {err}") from None
        return cls(
            cable_rating_a=number_option(
                "cable_rating_a", get("cable_rating_a"), low=MIN_OFFER_A, high=MAX_CURRENT_A
            ),
            ev_max_current_a=number_option(
                "ev_max_current_a", get("ev_max_current_a"), low=0.0, high=MAX_CURRENT_A
            ),
            battery_kwh=nullable_option(
                "battery_kwh", get("battery_kwh"), "no SoC", low=0.0, low_open=True
            ),
            meter_start_wh=number_option("meter_start_wh", get("meter_start_wh"), low=0.0),
            meter_map=meter_map,
            relay_delay_s=number_option("relay_delay_s", get("relay_delay_s"), low=0.0, high=1.0),
            lock_delay_s=number_option("lock_delay_s", get("lock_delay_s"), low=0.0, high=1.0),
        )


def _check_connectors(connectors: int) -> None:
    if not 1 <= connectors <= MAX_CONNECTORS:
        raise HalConfigError(
            f"connectors: the emulated board has room for 1..{MAX_CONNECTORS}, got {connectors}"
        )


class EmulatedBackend:
    def __init__(
        self,
        connectors: int,
        board: BoardSettings,
        options: EmulatedOptions,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        _check_connectors(connectors)
        self.options = options
        self.world = World(
            connectors,
            board,
            ev_max_current_a=options.ev_max_current_a,
            battery_kwh=options.battery_kwh,
            meter_start_wh=options.meter_start_wh,
            clock=clock,
        )
        self._events: asyncio.Queue[HalEvent] = asyncio.Queue()
        self._dir = Path(tempfile.mkdtemp(prefix="chargepoint-emulated-"))
        hardware: dict[int, ConnectorHardware] = {}
        self._connectors: Mapping[int, ConnectorHardware] = MappingProxyType(hardware)
        self._parts = DriverSet(self._connectors)
        self.factory = MockFactory()
        channel = f"emulated-{uuid.uuid4().hex[:8]}"

        wirings = {cid: wiring(cid) for cid in self.world.connector_ids}
        self.gpio_plant = GpioPlant(
            self.world,
            self.factory,
            wirings,
            relay_delay_s=options.relay_delay_s,
            lock_delay_s=options.lock_delay_s,
            estop_pin=ESTOP_PIN,
            tamper_pin=TAMPER_PIN,
        )
        self._parts.parts.append(self.gpio_plant)
        self._parts.parts.append(
            GpioEmergencyStop(self._events, pin=ESTOP_PIN, pin_factory=self.factory)
        )
        self._parts.parts.append(GpioTamper(self._events, pin=TAMPER_PIN, pin_factory=self.factory))

        self.line_readers: dict[int, LineReaderDevice] = {}
        for cid in self.world.connector_ids:
            w = wirings[cid]
            relay = GpioRelay(
                cid,
                self._events,
                pin=w.coil_pin,
                feedback_pin=w.feedback_pin,
                pin_factory=self.factory,
            )
            lock = None
            if board.has_lock:
                assert w.lock_pin is not None and w.unlock_pin is not None
                assert w.lock_feedback_pin is not None
                lock = GpioLock(
                    cid,
                    self._events,
                    lock_pin=w.lock_pin,
                    unlock_pin=w.unlock_pin,
                    feedback_pin=w.lock_feedback_pin,
                    pulse_s=0.05,
                    settle_s=0.3,
                    pin_factory=self.factory,
                )
            evse_bus = self._bus(channel)
            evse = CanEvseController(
                cid,
                self._events,
                evse_bus,
                status_id=0x200 + 0x10 * (cid - 1),
                command_id=0x201 + 0x10 * (cid - 1),
                # The emulated controller shares the daemon's event loop: a stall of a
                # few hundred ms on a loaded machine is the loop, not a lost controller.
                status_timeout_s=1.0,
            )
            self._parts.parts.append(
                EmulatedEvseController(
                    self.world,
                    self._bus(channel),
                    cid,
                    status_id=0x200 + 0x10 * (cid - 1),
                    command_id=0x201 + 0x10 * (cid - 1),
                    cable_rating_a=options.cable_rating_a,
                )
            )
            bms = None
            if board.has_bms:
                bms_channel = f"{channel}-bms{cid}"
                bms = ChademoBms(cid, self._events, self._bus(bms_channel))
                self._parts.parts.append(
                    EmulatedChademoVehicle(self.world, self._bus(bms_channel), cid)
                )
            pair = PtyPair(self._dir, f"meter{cid}")
            self._parts.parts.append(pair)
            self._parts.parts.append(
                EmulatedMeter(self.world, cid, str(pair.server_path), map=options.meter_map)
            )
            meter = ModbusMeter(
                cid,
                self._events,
                port=str(pair.client_path),
                map=options.meter_map,
                timeout_s=0.1,
                retries=1,
                loss_after=2,
            )
            link = SerialLink(self._dir, f"reader{cid}")
            self.line_readers[cid] = LineReaderDevice(link)
            self._parts.parts.append(self.line_readers[cid])
            self._parts.parts.append(
                LineReader(
                    self._events,
                    port=str(link.path),
                    baudrate=9600,
                    connector_id=cid,
                    present_timeout_s=READER_HOLD_OFF_S,
                    reopen_min_s=READER_REOPEN_S[0],
                    reopen_max_s=READER_REOPEN_S[1],
                )
            )
            self._parts.parts += [relay, evse, meter] + [d for d in (lock, bms) if d is not None]
            hardware[cid] = ConnectorHardware(cid, relay, evse, meter, lock, bms)
        # Station taps that are not chip UIDs: the station's reader stands in for a
        # keypad or QR reader. Its outage is the PN532's (the plant refuses taps
        # while the station reader is offline), so the fault is reported once.
        lines_link = SerialLink(self._dir, "reader-station-lines")
        self.station_line_reader = LineReaderDevice(lines_link)
        self._parts.parts.append(self.station_line_reader)
        self._parts.parts.append(
            LineReader(
                self._events,
                port=str(lines_link.path),
                baudrate=9600,
                connector_id=None,
                present_timeout_s=READER_HOLD_OFF_S,
                reopen_min_s=READER_REOPEN_S[0],
                reopen_max_s=READER_REOPEN_S[1],
            )
        )
        station_link = SerialLink(self._dir, "reader-station")
        self.pn532 = Pn532Device(station_link)
        self._parts.parts.append(self.pn532)
        self._parts.parts.append(
            Pn532Reader(
                self._events,
                port=str(station_link.path),
                baudrate=115200,
                poll_s=0.1,
                ack_timeout_s=0.5,  # generous: the device shares the daemon's event loop
                response_timeout_s=1.0,
                present_timeout_s=READER_HOLD_OFF_S,
                reopen_min_s=READER_REOPEN_S[0],
                reopen_max_s=READER_REOPEN_S[1],
            )
        )
        self._plant = EmulatedPlant(self.world, self._events, self)

    def _bus(self, channel: str) -> can.BusABC:
        bus = can.Bus(interface="virtual", channel=channel)
        self._parts.buses.append(bus)
        return bus

    # ------------------------------------------------------------ HalBackend

    @property
    def connectors(self) -> Mapping[int, ConnectorHardware]:
        return self._connectors

    @property
    def events(self) -> asyncio.Queue[HalEvent]:
        return self._events

    @property
    def plant(self) -> EmulatedPlant:
        return self._plant

    async def run(self) -> None:
        log.info(
            "emulated plant running: %d connector(s); drivers on mock GPIO, CAN virtual bus, "
            "Modbus RTU and serial readers on pseudo-terminals under %s",
            len(self._connectors),
            self._dir,
        )
        try:
            await self._parts.run()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    async def safe_state(self) -> None:
        await self._parts.safe_state()


def build(
    options: Mapping[str, object],
    connectors: int,
    board: BoardSettings,
    *,
    clock: Clock = time.monotonic,
) -> EmulatedBackend:
    """Factory for ``hal.registry``; ``clock`` is the plant's (the drivers keep real time)."""
    return EmulatedBackend(connectors, board, EmulatedOptions.parse(options), clock=clock)


def check(options: Mapping[str, object], connectors: int, board: BoardSettings) -> None:
    """What ``build`` refuses, without its pseudo-terminals, buses and emulators."""
    EmulatedOptions.parse(options)
    _check_connectors(connectors)


_FACTORY: BackendFactory = build  # mypy: EmulatedBackend must satisfy HalBackend
_CHECK: BackendCheck = check
