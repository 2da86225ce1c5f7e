"""CAN EVSE controller driver against the emulated controller, on python-can virtual buses.

Every test has its own virtual channel. Periods are shortened (status every
20 ms, timeout 400 ms) to keep the tests quick; the frames are real
``EVSE_Status`` / ``EVSE_Command`` frames encoded with the DBC.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import can
import cantools
import pytest
from cantools.database.can import Database, Message
from cantools.typechecking import SignalDictType

from hal import resources
from hal.can import busio
from hal.can.dbc import load
from hal.can.evse import CanEvseController
from hal.emulators.evse_controller import EmulatedEvseController
from hal.errors import HalConfigError
from hal.interfaces import (
    BoardSettings,
    EvseController,
    Fault,
    FaultChanged,
    HalEvent,
    PilotChanged,
    PilotState,
)
from hal.sim.world import World

PERIOD_S = 0.02
TIMEOUT_S = 0.4
WAIT_S = 1.0

OpenBus = Callable[[], can.BusABC]


# ---------------------------------------------------------------- fixtures and helpers


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


class Tasks:
    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        return task

    async def close(self) -> None:
        for task in self._tasks:
            if task.done():
                task.result()
                raise AssertionError("run() returned before it was cancelled")
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert task.cancelled(), "run() swallowed its cancellation"


@pytest.fixture
async def tasks(open_bus: OpenBus) -> AsyncIterator[Tasks]:
    """Background tasks, cancelled (and checked) before the buses are shut down."""
    runner = Tasks()
    yield runner
    await runner.close()


async def until(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def next_event(events: asyncio.Queue[HalEvent], timeout_s: float = WAIT_S) -> HalEvent:
    return await asyncio.wait_for(events.get(), timeout_s)


async def status_taken(evse: CanEvseController, count: int = 3) -> None:
    """Wait until the driver has taken ``count`` more status frames: after that, an
    event it did not emit is one it decided not to emit."""
    start = evse.status_frames
    await until(lambda: evse.status_frames >= start + count)


async def commands_seen(emulator: EmulatedEvseController, count: int = 3) -> None:
    """Wait until the emulated controller has received ``count`` more command frames."""
    start = emulator.commands_received
    await until(lambda: emulator.commands_received >= start + count)


def pending(events: asyncio.Queue[HalEvent]) -> list[HalEvent]:
    found: list[HalEvent] = []
    while not events.empty():
        found.append(events.get_nowait())
    return found


class Bench:
    """A world, its emulated controllers on one bus and the drivers on another."""

    def __init__(
        self,
        open_bus: OpenBus,
        tasks: Tasks,
        *,
        connectors: int = 1,
        cable_rating_a: float | None = 32.0,
        emulate: bool = True,
    ) -> None:
        self.world = World(connectors, BoardSettings())
        self.events: asyncio.Queue[HalEvent] = asyncio.Queue()
        self.host_bus = open_bus()
        self.plant_bus = open_bus()
        self.evse: dict[int, CanEvseController] = {}
        self.emulators: dict[int, EmulatedEvseController] = {}
        for cid in self.world.connector_ids:
            status_id, command_id = 0x200 + 0x10 * (cid - 1), 0x201 + 0x10 * (cid - 1)
            self.evse[cid] = CanEvseController(
                cid,
                self.events,
                self.host_bus,
                status_id=status_id,
                command_id=command_id,
                status_timeout_s=TIMEOUT_S,
                command_period_s=PERIOD_S,
            )
            tasks.start(self.evse[cid].run())
            if emulate:
                self.emulators[cid] = EmulatedEvseController(
                    self.world,
                    self.plant_bus,
                    cid,
                    cable_rating_a=cable_rating_a,
                    status_id=status_id,
                    command_id=command_id,
                    period_s=PERIOD_S,
                )
                tasks.start(self.emulators[cid].run())

    async def started(self) -> Bench:
        """Wait until every driver has seen a first status."""
        await until(lambda: all(e.duty_actual_percent is not None for e in self.evse.values()))
        return self


STATUS = load("evse").get_message_by_name("EVSE_Status")


def decode(message: Message, data: bytes, *, choices: bool = False) -> SignalDictType:
    values = message.decode(data, decode_choices=choices)
    assert isinstance(values, dict)
    return values


def status_frame(frame_id: int = 0x200, **changes: int | float) -> can.Message:
    values: dict[str, int | float] = {
        "CP_State": 1,
        "PP_Ampacity": 32,
        "CP_DutyActual": 0.0,
        "Fault_RCD_Trip": 0,
        "Fault_DiodeMissing": 0,
        "Fault_OverTemperature": 0,
        "Contactor_Feedback": 0,
    }
    values.update(changes)
    return can.Message(
        arbitration_id=frame_id, data=STATUS.encode(values, strict=False), is_extended_id=False
    )


# ---------------------------------------------------------------- DBC


def test_evse_dbc_layout_and_round_trip() -> None:
    db = cantools.database.load_file(resources.find("can", "evse", ".dbc"))
    assert isinstance(db, Database)
    status = db.get_message_by_name("EVSE_Status")
    command = db.get_message_by_name("EVSE_Command")
    assert (status.frame_id, status.length, status.cycle_time) == (0x200, 8, 100)
    assert command.frame_id == 0x201
    values = {
        "CP_State": 2,
        "PP_Ampacity": 32,
        "CP_DutyActual": 53.3,
        "Fault_RCD_Trip": 1,
        "Fault_DiodeMissing": 0,
        "Fault_OverTemperature": 1,
        "Contactor_Feedback": 1,
    }
    assert decode(status, status.encode(values)) == pytest.approx(values)
    assert decode(status, status.encode(values), choices=True)["CP_State"] == "C"
    data = command.encode({"PWM_DutySetpoint": 26.6, "PWM_Enable": 1})
    assert data == bytes([0x0A, 0x05, 0, 0, 0, 0, 0, 0])  # 266 = 0x10A, enable = bit 10


# ---------------------------------------------------------------- pilot and cable


async def test_driver_satisfies_the_protocol_and_starts_idle(
    open_bus: OpenBus, tasks: Tasks
) -> None:
    bench = Bench(open_bus, tasks)
    evse = bench.evse[1]
    assert isinstance(evse, EvseController)
    assert evse.pilot is PilotState.A
    assert evse.offered_current_a == 0.0
    await bench.started()
    assert evse.pilot is PilotState.A
    assert pending(bench.events) == []


async def test_pilot_changes_produce_one_event_each(open_bus: OpenBus, tasks: Tasks) -> None:
    bench = await Bench(open_bus, tasks).started()
    for state in (PilotState.B, PilotState.C, PilotState.D, PilotState.B, PilotState.A):
        bench.world.set_cp_state(1, state)
        assert await next_event(bench.events) == PilotChanged(1, state)
        assert bench.evse[1].pilot is state
    await status_taken(bench.evse[1], 4)
    assert pending(bench.events) == []


@pytest.mark.parametrize(("rating", "expected"), [(32.0, 32.0), (13.0, 13.0), (None, None)])
async def test_cable_rating_from_proximity_pilot(
    open_bus: OpenBus, tasks: Tasks, rating: float | None, expected: float | None
) -> None:
    bench = await Bench(open_bus, tasks, cable_rating_a=rating).started()
    assert bench.evse[1].cable_rating_a == expected


# ---------------------------------------------------------------- offer


async def test_offer_goes_by_command_frame_to_the_world(open_bus: OpenBus, tasks: Tasks) -> None:
    bench = await Bench(open_bus, tasks).started()
    evse, state = bench.evse[1], bench.world.connector(1)
    await evse.offer_current(16.0)
    assert evse.offered_current_a == 16.0
    assert evse.duty_setpoint_percent == 26.6
    await until(lambda: state.offered_a > 0.0)
    assert state.offered_a == pytest.approx(15.96)  # what the EV reads from 26.6 %
    await until(lambda: evse.duty_actual_percent == 26.6)
    await evse.offer_current(63)
    await until(lambda: state.offered_a == pytest.approx(63.0))
    await evse.offer_current(0.0)
    await until(lambda: state.offered_a == 0.0)
    await until(lambda: evse.duty_actual_percent == 0.0)
    assert evse.offered_current_a == 0.0
    assert evse.duty_setpoint_percent is None


@pytest.mark.parametrize("current_a", [0.1, 5.99, -1.0, 80.1, math.nan, math.inf])
async def test_invalid_offer_raises_and_changes_nothing(
    open_bus: OpenBus, tasks: Tasks, current_a: float
) -> None:
    bench = await Bench(open_bus, tasks).started()
    evse = bench.evse[1]
    await evse.offer_current(10.0)
    await until(lambda: bench.world.connector(1).offered_a == pytest.approx(9.96))
    with pytest.raises(ValueError):
        await evse.offer_current(current_a)
    assert evse.offered_current_a == 10.0
    assert evse.duty_setpoint_percent == 16.6
    await commands_seen(bench.emulators[1])
    assert bench.world.connector(1).offered_a == pytest.approx(9.96)


async def test_command_is_repeated_cyclically(open_bus: OpenBus, tasks: Tasks) -> None:
    bench = await Bench(open_bus, tasks).started()
    state = bench.world.connector(1)
    await bench.evse[1].offer_current(32.0)
    await until(lambda: state.offered_a > 0.0)
    bench.world.set_offer(1, 0.0)  # the controller restarted and forgot the offer
    await until(lambda: state.offered_a == pytest.approx(31.98))
    await commands_seen(bench.emulators[1])  # repeated with nothing new to say


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("fault", [Fault.RCD_TRIP, Fault.DIODE_FAULT, Fault.OVER_TEMPERATURE])
async def test_fault_bits_produce_fault_events(
    open_bus: OpenBus, tasks: Tasks, fault: Fault
) -> None:
    bench = await Bench(open_bus, tasks).started()
    bench.world.set_fault(1, fault, True)
    assert await next_event(bench.events) == FaultChanged(1, fault, True)
    assert bench.evse[1].faults == {fault}
    await status_taken(bench.evse[1])  # the bit still set: no second event
    assert pending(bench.events) == []
    bench.world.set_fault(1, fault, False)
    assert await next_event(bench.events) == FaultChanged(1, fault, False)
    assert bench.evse[1].faults == set()


async def test_lost_status_withdraws_the_offer_until_it_returns(
    open_bus: OpenBus, tasks: Tasks
) -> None:
    bench = await Bench(open_bus, tasks).started()
    evse, state = bench.evse[1], bench.world.connector(1)
    bench.world.set_cp_state(1, PilotState.C)
    assert await next_event(bench.events) == PilotChanged(1, PilotState.C)
    await evse.offer_current(16.0)
    await until(lambda: state.offered_a > 0.0)

    bench.world.set_fault(1, Fault.EV_COMMUNICATION_LOST, True)
    assert await next_event(bench.events) == FaultChanged(1, Fault.EV_COMMUNICATION_LOST, True)
    assert await next_event(bench.events) == PilotChanged(1, PilotState.F)
    assert evse.pilot is PilotState.F
    assert evse.communication_lost
    assert evse.offered_current_a == 0.0
    await until(lambda: state.offered_a == 0.0)  # the zero command reached the controller
    await commands_seen(bench.emulators[1])  # the driver went on, with nothing to report
    assert pending(bench.events) == []

    bench.world.set_cp_state(1, PilotState.B)
    bench.world.set_fault(1, Fault.EV_COMMUNICATION_LOST, False)
    assert await next_event(bench.events) == FaultChanged(1, Fault.EV_COMMUNICATION_LOST, False)
    assert await next_event(bench.events) == PilotChanged(1, PilotState.B)
    assert (evse.pilot, evse.communication_lost) == (PilotState.B, False)
    assert evse.offered_current_a == 0.0


async def test_silent_controller_is_a_communication_fault(open_bus: OpenBus, tasks: Tasks) -> None:
    bench = Bench(open_bus, tasks, emulate=False)
    sniffer = open_bus()
    assert await next_event(bench.events, 3 * TIMEOUT_S) == FaultChanged(
        1, Fault.EV_COMMUNICATION_LOST, True
    )
    assert await next_event(bench.events) == PilotChanged(1, PilotState.F)
    frame = await asyncio.to_thread(sniffer.recv, WAIT_S)
    assert frame is not None and frame.arbitration_id == 0x201
    assert bytes(frame.data) == bytes(8)  # PWM disabled, no offer


# ---------------------------------------------------------------- malformed frames


BAD_FRAMES = {
    "cp_state_6": status_frame(CP_State=6),
    "cp_state_7": status_frame(CP_State=7),
    "duty_over_100": status_frame(CP_DutyActual=102.3),
    "ampacity_over_80": status_frame(PP_Ampacity=81),
    "short": can.Message(arbitration_id=0x200, data=b"\x01\x20\x00", is_extended_id=False),
    "empty": can.Message(arbitration_id=0x200, data=b"", is_extended_id=False),
    "extended_id": can.Message(arbitration_id=0x200, data=bytes(8), is_extended_id=True),
    "remote": can.Message(arbitration_id=0x200, is_remote_frame=True, dlc=8, is_extended_id=False),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
async def test_malformed_status_is_ignored(open_bus: OpenBus, tasks: Tasks, name: str) -> None:
    bench = Bench(open_bus, tasks, emulate=False)
    controller = open_bus()
    evse = bench.evse[1]
    controller.send(status_frame(CP_State=1))
    assert await next_event(bench.events) == PilotChanged(1, PilotState.B)
    controller.send(BAD_FRAMES[name])
    controller.send(status_frame(CP_State=2, PP_Ampacity=20))
    assert await next_event(bench.events) == PilotChanged(1, PilotState.C)
    assert evse.ignored_frames == 1
    assert evse.cable_rating_a == 20.0
    assert pending(bench.events) == []


async def test_malformed_frames_do_not_feed_the_watchdog(open_bus: OpenBus, tasks: Tasks) -> None:
    bench = Bench(open_bus, tasks, emulate=False)
    controller = open_bus()
    controller.send(status_frame(CP_State=1))
    assert await next_event(bench.events) == PilotChanged(1, PilotState.B)
    for _ in range(round(1.5 * TIMEOUT_S / PERIOD_S)):  # malformed for longer than the timeout
        controller.send(status_frame(CP_State=7))
        await asyncio.sleep(PERIOD_S)
    assert bench.evse[1].communication_lost
    assert pending(bench.events) == [
        FaultChanged(1, Fault.EV_COMMUNICATION_LOST, True),
        PilotChanged(1, PilotState.F),
    ]


# ---------------------------------------------------------------- buses and life cycle


async def test_connectors_share_one_bus_with_their_own_ids(open_bus: OpenBus, tasks: Tasks) -> None:
    bench = await Bench(open_bus, tasks, connectors=2).started()
    bench.world.set_cp_state(2, PilotState.C)
    assert await next_event(bench.events) == PilotChanged(2, PilotState.C)
    assert bench.evse[1].pilot is PilotState.A
    await bench.evse[1].offer_current(20.0)
    await until(lambda: bench.world.connector(1).offered_a > 0.0)
    await commands_seen(bench.emulators[2])
    await status_taken(bench.evse[2])
    assert bench.world.connector(2).offered_a == 0.0
    assert pending(bench.events) == []


async def test_cancelled_run_stops_its_notifier(open_bus: OpenBus) -> None:
    bus = open_bus()
    evse = CanEvseController(1, asyncio.Queue(), bus, command_period_s=PERIOD_S)
    task = asyncio.create_task(evse.run())
    await until(lambda: busio.active(bus))
    (notifier,) = can.Notifier.find_instances(bus)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not busio.active(bus)
    assert notifier.stopped


def test_configuration_errors() -> None:
    queue: asyncio.Queue[HalEvent] = asyncio.Queue()
    bus = can.Bus(interface="virtual", channel=f"config-{uuid.uuid4().hex}")
    try:
        with pytest.raises(HalConfigError):
            CanEvseController(1, queue, bus, status_id=0x200, command_id=0x200)
        with pytest.raises(HalConfigError):
            CanEvseController(1, queue, bus, status_id=0x800)
        with pytest.raises(HalConfigError):
            CanEvseController(1, queue, bus, dbc="no-such-dbc")
        with pytest.raises(HalConfigError):
            CanEvseController(1, queue, bus, dbc="chademo")
        with pytest.raises(HalConfigError):
            CanEvseController(1, queue, bus, status_timeout_s=0.0)
    finally:
        bus.shutdown()
