"""GpioLock on gpiozero mock pins, the lock motor emulated by GpioPlant over a World."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from hal.emulators.gpio_plant import GpioPlant, GpioWiring
from hal.errors import HalConfigError, LockError
from hal.gpio.lock import GpioLock
from hal.interfaces import BoardSettings, ConnectorLock, Fault, FaultChanged, HalEvent
from hal.sim.world import World
from tests.unit.aio import drain, looked_after, running, until

COIL, FEEDBACK = 17, 27
LOCK, UNLOCK, POSITION = 22, 23, 24
PULSE_S = 0.04
SETTLE_S = 0.03
LOCK_DELAY_S = 0.02


class RecordingPin(MockPin):  # type: ignore[misc]
    """A mock pin that appends every level change to a log shared by all pins."""

    def __init__(self, factory: Any, info: Any, log: list[tuple[int, bool]]) -> None:
        self.log = log
        super().__init__(factory, info)

    def _change_state(self, value: bool) -> bool:
        changed: bool = super()._change_state(value)
        if changed and self.function == "output":
            self.log.append((int(self.info.name.removeprefix("GPIO")), bool(value)))
        return changed


def pulses(factory: MockFactory, pin: int) -> list[float]:
    """Durations of the high pulses the pin went through."""
    states = factory.pin(pin).states
    return [
        states[i + 1].timestamp
        for i in range(len(states) - 1)
        if states[i].state and not states[i + 1].state
    ]


@dataclass
class Bench:
    factory: MockFactory
    world: World
    events: asyncio.Queue[HalEvent]
    lock: GpioLock
    plant: GpioPlant
    log: list[tuple[int, bool]]


@contextlib.asynccontextmanager
async def bench(*, retries: int = 2, position_active_high: bool = True) -> AsyncIterator[Bench]:
    factory = MockFactory()
    log: list[tuple[int, bool]] = []
    for pin in (LOCK, UNLOCK):
        factory.pin(pin, pin_class=RecordingPin, log=log)
    world = World(1, BoardSettings())
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    lock = GpioLock(
        1,
        events,
        lock_pin=LOCK,
        unlock_pin=UNLOCK,
        feedback_pin=POSITION,
        feedback_active_high=position_active_high,
        pulse_s=PULSE_S,
        settle_s=SETTLE_S,
        retries=retries,
        pin_factory=factory,
    )
    wiring = GpioWiring(
        coil_pin=COIL,
        feedback_pin=FEEDBACK,
        lock_pin=LOCK,
        unlock_pin=UNLOCK,
        lock_feedback_pin=POSITION,
        lock_feedback_active_high=position_active_high,
    )
    plant = GpioPlant(world, factory, {1: wiring}, lock_delay_s=LOCK_DELAY_S)
    async with running(plant.run()):
        await asyncio.sleep(0.01)
        yield Bench(factory, world, events, lock, plant, log)


def never_both_driven(log: list[tuple[int, bool]]) -> bool:
    high: set[int] = set()
    for pin, level in log:
        if level:
            high.add(pin)
        else:
            high.discard(pin)
        if {LOCK, UNLOCK} <= high:
            return False
    return True


async def test_lock_and_unlock_through_the_wires() -> None:
    async with bench() as b:
        assert isinstance(b.lock, ConnectorLock)
        assert b.lock.locked is False
        await b.lock.lock()
        assert b.lock.locked is True
        assert b.world.connector(1).locked is True
        assert b.factory.pin(POSITION).state is True
        await b.lock.unlock()
        assert b.lock.locked is False
        assert b.world.connector(1).locked is False
        await b.lock.lock()
        await b.lock.lock()  # idempotent: a second pulse against the end stop
        assert b.lock.locked is True
    # back-to-back pulses on one pin look like one longer pulse from the far side
    assert [text for _, text in b.world.connector(1).lock_history] == ["lock", "unlock", "lock"]
    assert len(pulses(b.factory, LOCK)) == 3
    assert len(pulses(b.factory, UNLOCK)) == 1
    assert all(duration >= PULSE_S for duration in pulses(b.factory, LOCK))
    assert b.log[:4] == [(LOCK, True), (LOCK, False), (UNLOCK, True), (UNLOCK, False)]
    assert never_both_driven(b.log)
    assert drain(b.events) == []


async def test_active_low_position_switch() -> None:
    async with bench(position_active_high=False) as b:
        assert b.factory.pin(POSITION).state is True
        assert b.lock.locked is False
        await b.lock.lock()
        assert b.factory.pin(POSITION).state is False
        assert b.lock.locked is True


async def test_retries_then_lock_failure_with_event() -> None:
    async with bench(retries=2) as b:
        b.world.set_fault(1, Fault.LOCK_FAILURE, True)
        started = time.monotonic()
        with pytest.raises(LockError, match="3 attempt"):
            await b.lock.lock()
        assert time.monotonic() - started >= 3 * (PULSE_S + SETTLE_S)
        assert len(pulses(b.factory, LOCK)) == 3
        assert pulses(b.factory, UNLOCK) == []
        assert b.lock.locked is False
        assert b.lock.failed is True
        assert drain(b.events) == [FaultChanged(1, Fault.LOCK_FAILURE, True)]
        with pytest.raises(LockError):
            await b.lock.lock()
        assert drain(b.events) == []  # still the same fault
        assert never_both_driven(b.log)


async def test_no_retries() -> None:
    async with bench(retries=0) as b:
        b.world.set_fault(1, Fault.LOCK_FAILURE, True)
        with pytest.raises(LockError, match="1 attempt"):
            await b.lock.lock()
        assert len(pulses(b.factory, LOCK)) == 1
        assert b.lock.locked is False


async def test_already_in_position_is_success_even_with_a_stuck_motor() -> None:
    async with bench(retries=0) as b:
        b.world.set_fault(1, Fault.LOCK_FAILURE, True)
        await b.lock.unlock()  # the switch already reads unlocked: nothing to detect
        assert len(pulses(b.factory, UNLOCK)) == 1
    assert drain(b.events) == []


async def test_success_after_failure_clears_the_fault() -> None:
    async with bench(retries=0) as b:
        b.world.set_fault(1, Fault.LOCK_FAILURE, True)
        with pytest.raises(LockError):
            await b.lock.lock()
        assert b.lock.locked is False  # keeps its position
        b.world.set_fault(1, Fault.LOCK_FAILURE, False)
        await b.lock.lock()
        assert b.lock.locked is True
        assert b.lock.failed is False
        assert drain(b.events) == [
            FaultChanged(1, Fault.LOCK_FAILURE, True),
            FaultChanged(1, Fault.LOCK_FAILURE, False),
        ]


async def test_a_retry_can_succeed_without_a_fault() -> None:
    async with bench(retries=2) as b:
        b.world.set_fault(1, Fault.LOCK_FAILURE, True)
        locking = asyncio.create_task(b.lock.lock())
        await until(lambda: bool(pulses(b.factory, LOCK)))
        await asyncio.sleep(0.01)  # the first pulse is over and the plant has seen it
        b.world.set_fault(1, Fault.LOCK_FAILURE, False)  # the motor frees itself
        await locking
        assert b.lock.locked is True
        assert len(pulses(b.factory, LOCK)) == 2
    assert drain(b.events) == []


async def test_cancelled_operation_stops_driving() -> None:
    async with bench() as b:
        locking = asyncio.create_task(b.lock.lock())
        await until(lambda: b.factory.pin(LOCK).state is True)
        locking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await locking
        assert b.factory.pin(LOCK).state is False


async def test_concurrent_operations_never_drive_both_pins() -> None:
    async with bench() as b:
        await asyncio.gather(b.lock.lock(), b.lock.unlock(), b.lock.lock())
        assert b.lock.locked is True
        assert never_both_driven(b.log)
        assert len(b.log) == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lock_pin": LOCK, "unlock_pin": LOCK, "feedback_pin": POSITION},
        {"lock_pin": LOCK, "unlock_pin": UNLOCK, "feedback_pin": UNLOCK},
        {"lock_pin": LOCK, "unlock_pin": UNLOCK, "feedback_pin": POSITION, "retries": -1},
        {"lock_pin": LOCK, "unlock_pin": UNLOCK, "feedback_pin": POSITION, "retries": 1.5},
        {"lock_pin": LOCK, "unlock_pin": UNLOCK, "feedback_pin": POSITION, "pulse_s": 0},
        {"lock_pin": LOCK, "unlock_pin": UNLOCK, "feedback_pin": 200},
    ],
)
def test_bad_configuration(kwargs: dict[str, Any]) -> None:
    factory = MockFactory()
    with pytest.raises(HalConfigError):
        GpioLock(1, asyncio.Queue(), pin_factory=factory, **kwargs)
    # whatever was taken before the error was given back
    assert factory.pin(LOCK).function == "input"


# ---------------------------------------------------------------- supervision


async def test_supervision_reports_a_lock_that_breaks_open_and_its_return() -> None:
    async with bench() as b, running(b.lock.run()):
        await b.lock.lock()
        b.world.set_locked(1, False)  # the bolt is forced back
        await until(lambda: b.lock.failed)
        assert b.lock.locked is False
        assert drain(b.events) == [FaultChanged(1, Fault.LOCK_FAILURE, True)]
        b.world.set_locked(1, True)  # it springs back
        await until(lambda: not b.lock.failed)
        assert b.lock.locked is True
        assert drain(b.events) == [FaultChanged(1, Fault.LOCK_FAILURE, False)]


async def test_supervision_ignores_a_blip_shorter_than_supervise_s() -> None:
    async with bench() as b, running(b.lock.run()):
        await b.lock.lock()
        b.world.set_locked(1, False)
        await asyncio.sleep(0.05)
        b.world.set_locked(1, True)
        await looked_after(b.lock, time.monotonic() + 0.3)  # longer than supervise_s
        assert b.lock.failed is False
        assert drain(b.events) == []


async def test_supervision_waits_for_a_confirmed_position() -> None:
    async with bench() as b, running(b.lock.run()):
        b.world.set_locked(1, True)  # moved by hand before any operation: nothing expected
        await looked_after(b.lock, time.monotonic() + 0.3)
        assert drain(b.events) == []
        await b.lock.unlock()
        b.world.set_locked(1, True)  # now it must stay unlocked
        await until(lambda: b.lock.failed)
        assert drain(b.events) == [FaultChanged(1, Fault.LOCK_FAILURE, True)]
        await b.lock.unlock()  # a confirmed operation clears it
        assert drain(b.events) == [FaultChanged(1, Fault.LOCK_FAILURE, False)]
