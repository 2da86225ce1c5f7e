"""CHAdeMO BMS driver: the DBC, the checked example frame, and SoC from the emulated vehicle."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import can
import cantools
import pytest
from cantools.database.can import Database, Message
from cantools.typechecking import SignalDictType

from hal import resources
from hal.can import busio
from hal.can.bms import ChademoBms, ChademoFault, ChademoStatus
from hal.can.dbc import load
from hal.emulators.ev_bms import EmulatedChademoVehicle
from hal.errors import HalConfigError
from hal.interfaces import Bms, BoardSettings, HalEvent, PilotState
from hal.sim.world import World

PERIOD_S = 0.02
STALE_S = 0.15
WAIT_S = 1.0
EXAMPLE = bytes.fromhex("029A010000C95600")

OpenBus = Callable[[], can.BusABC]
DB = load("chademo")
REQUEST = DB.get_message_by_name("EV_ChargeRequest")


def decode(message: Message, data: bytes) -> SignalDictType:
    values = message.decode(data, decode_choices=False)
    assert isinstance(values, dict)
    return values


@pytest.fixture
def open_bus(request: pytest.FixtureRequest) -> Iterator[OpenBus]:
    """Opens virtual buses on this test's own channel; all are shut down at teardown."""
    channel = f"{request.node.name}-{uuid.uuid4().hex}"
    opened: list[can.BusABC] = []

    def factory() -> can.BusABC:
        bus = can.Bus(interface="virtual", channel=channel)
        opened.append(bus)
        return bus

    yield factory
    for bus in opened:
        assert not busio.active(bus), "a subscription outlived its task"
        bus.shutdown()


@pytest.fixture
async def bms(open_bus: OpenBus) -> AsyncIterator[ChademoBms]:
    """A running ``ChademoBms`` on connector 1 (cancelled and checked at teardown)."""
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    driver = ChademoBms(1, events, open_bus(), stale_after_s=STALE_S)
    task = asyncio.create_task(driver.run())
    yield driver
    assert not task.done(), "run() returned before it was cancelled"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled(), "run() swallowed its cancellation"
    assert events.empty()


@pytest.fixture
async def world(open_bus: OpenBus, bms: ChademoBms) -> AsyncIterator[World]:
    """A one-connector world whose vehicle talks CHAdeMO to ``bms``."""
    plant = World(1, BoardSettings())
    vehicle = EmulatedChademoVehicle(plant, open_bus(), 1, PERIOD_S)
    task = asyncio.create_task(vehicle.run())
    yield plant
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def until(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def request_frame(data: bytes, frame_id: int = 0x102) -> can.Message:
    return can.Message(arbitration_id=frame_id, data=data, is_extended_id=False)


# ---------------------------------------------------------------- DBC


def test_example_frame_decodes() -> None:
    db = cantools.database.load_file(resources.find("can", "chademo", ".dbc"))
    assert isinstance(db, Database)
    assert db.get_message_by_name("EV_ChargeRequest").frame_id == 0x102
    values = decode(REQUEST, EXAMPLE)
    assert values["EV_ProtocolNumber"] == 2
    assert values["EV_TargetVoltage"] == 410
    assert values["EV_CurrentRequest"] == 0
    assert values["EV_SoC"] == 86
    assert values["EV_Status_ChargingEnabled"] == 1
    assert values["EV_Status_ContactorOpen"] == 1
    assert values["EV_Status_StopRequest"] == 0


def test_chademo_dbc_round_trip() -> None:
    assert [(m.name, m.frame_id, m.length) for m in DB.messages] == [
        ("EV_Parameters", 0x100, 8),
        ("EV_ChargeTime", 0x101, 8),
        ("EV_ChargeRequest", 0x102, 8),
    ]
    values = decode(REQUEST, EXAMPLE)
    # Bits 6 and 7 of the status byte have no signal: they do not survive.
    assert REQUEST.encode(values) == bytes.fromhex("029A010000095600")
    parameters = DB.get_message_by_name("EV_Parameters")
    limits = {
        "EV_MinCurrent": 2,
        "EV_MinBatteryVoltage": 300,
        "EV_MaxBatteryVoltage": 0x1B3,
        "EV_ChargedRateRef": 100,
    }
    data = parameters.encode(limits)
    assert data == bytes([2, 0, 0x2C, 0x01, 0xB3, 0x01, 100, 0])  # little-endian words
    assert decode(parameters, data) == limits
    charge_time = DB.get_message_by_name("EV_ChargeTime")
    times = {
        "EV_MaxChargeTime10s": 2550,
        "EV_MaxChargeTimeMin": 90,
        "EV_EstChargeTimeMin": 30,
        "EV_BatteryCapacity": 62.5,
    }
    data = charge_time.encode(times)
    assert data == bytes([0, 0xFF, 90, 30, 0, 0x71, 0x02, 0])  # 625 x 0.1 kWh
    assert decode(charge_time, data) == pytest.approx(times)


# ---------------------------------------------------------------- driver on the bus


async def test_example_frame_on_the_bus(open_bus: OpenBus, bms: ChademoBms) -> None:
    assert isinstance(bms, Bms)
    assert bms.soc_percent is None
    assert bms.status_flags is None
    open_bus().send(request_frame(EXAMPLE))
    await until(lambda: bms.soc_percent is not None)
    assert bms.soc_percent == 86.0
    assert bms.protocol_number == 2
    assert bms.target_voltage_v == 410.0
    assert bms.current_request_a == 0.0
    assert bms.fault_flags == ChademoFault.NONE
    assert bms.status_flags == ChademoStatus.CHARGING_ENABLED | ChademoStatus.CONTACTOR_OPEN
    assert bms.charging_enabled
    assert not bms.stop_request


async def test_values_are_forgotten_when_frames_stop(open_bus: OpenBus, bms: ChademoBms) -> None:
    open_bus().send(request_frame(EXAMPLE))
    await until(lambda: bms.soc_percent is not None)
    await until(lambda: bms.soc_percent is None, timeout_s=3 * STALE_S)
    assert bms.target_voltage_v is None
    assert bms.status_flags is None
    assert not bms.stop_request


async def test_fault_and_stop_bits(open_bus: OpenBus, bms: ChademoBms) -> None:
    data = bytearray(EXAMPLE)
    data[4] = 0x09  # overvoltage, high temperature
    data[5] = 0x10  # stop request
    open_bus().send(request_frame(bytes(data)))
    await until(lambda: bms.fault_flags is not None)
    assert bms.fault_flags == ChademoFault.OVERVOLTAGE | ChademoFault.HIGH_TEMPERATURE
    assert bms.stop_request
    assert not bms.charging_enabled


BAD_FRAMES = {
    "short": request_frame(EXAMPLE[:6]),
    "soc_150": request_frame(EXAMPLE[:6] + bytes([150, 0])),
    "extended_id": can.Message(arbitration_id=0x102, data=EXAMPLE, is_extended_id=True),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
async def test_malformed_frames_are_ignored(open_bus: OpenBus, bms: ChademoBms, name: str) -> None:
    vehicle = open_bus()
    vehicle.send(BAD_FRAMES[name])
    vehicle.send(request_frame(EXAMPLE[:6] + bytes([40, 0])))
    await until(lambda: bms.soc_percent is not None)
    assert bms.soc_percent == 40.0
    assert bms.ignored_frames == 1


async def test_soc_not_available(open_bus: OpenBus, bms: ChademoBms) -> None:
    open_bus().send(request_frame(EXAMPLE[:6] + bytes([0xFF, 0])))
    await until(lambda: bms.target_voltage_v is not None)
    assert bms.soc_percent is None
    assert bms.ignored_frames == 0


# ---------------------------------------------------------------- emulated vehicle


async def test_an_unplugged_vehicle_sends_nothing(open_bus: OpenBus) -> None:
    plant = World(1, BoardSettings())
    vehicle = EmulatedChademoVehicle(plant, open_bus(), 1, PERIOD_S)
    assert vehicle.frame_values() is None and vehicle.send_frames() == 0
    plant.set_cp_state(1, PilotState.B)
    assert vehicle.send_frames() == 3


async def test_soc_flows_from_the_world(world: World, bms: ChademoBms) -> None:
    assert bms.target_voltage_v is None
    world.set_cp_state(1, PilotState.B)
    world.set_soc(1, 40.0)
    await until(lambda: bms.soc_percent == 40.0)
    assert bms.battery_capacity_kwh == pytest.approx(60.0)
    assert bms.max_battery_voltage_v == 435.0
    assert bms.current_request_a == 0.0
    world.set_soc(1, 55.4)
    await until(lambda: bms.soc_percent == 55.0)
    world.set_cp_state(1, PilotState.C)
    await until(lambda: bms.charging_enabled)
    assert bms.current_request_a == 32.0
    world.set_cp_state(1, PilotState.A)
    await until(lambda: bms.soc_percent is None, timeout_s=STALE_S + WAIT_S)
    assert bms.target_voltage_v is None


async def test_unknown_soc_in_the_world(world: World, bms: ChademoBms) -> None:
    world.set_cp_state(1, PilotState.B)
    await until(lambda: bms.target_voltage_v is not None)
    assert bms.target_voltage_v == 410.0
    assert bms.soc_percent is None


async def test_full_battery_requests_stop(world: World, bms: ChademoBms) -> None:
    world.set_cp_state(1, PilotState.C)
    world.set_soc(1, 100.0)
    await until(lambda: bms.stop_request)
    assert bms.soc_percent == 100.0
    assert bms.current_request_a == 0.0
    assert not bms.charging_enabled


def test_configuration_errors() -> None:
    queue: asyncio.Queue[HalEvent] = asyncio.Queue()
    bus = can.Bus(interface="virtual", channel=f"config-{uuid.uuid4().hex}")
    try:
        with pytest.raises(HalConfigError):
            ChademoBms(1, queue, bus, request_id=0x100)
        with pytest.raises(HalConfigError):
            ChademoBms(1, queue, bus, dbc="evse")
        with pytest.raises(HalConfigError):
            ChademoBms(1, queue, bus, stale_after_s=-1.0)
    finally:
        bus.shutdown()
