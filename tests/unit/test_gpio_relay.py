"""GpioRelay on gpiozero mock pins, its far side emulated by GpioPlant over a World."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from hal.emulators.gpio_plant import GpioPlant, GpioWiring
from hal.errors import HalConfigError, RelayError
from hal.gpio.relay import GpioRelay
from hal.interfaces import BoardSettings, Fault, FaultChanged, HalEvent, Relay
from hal.sim.world import World
from tests.unit.aio import drain, looked_after, running, until

COIL, FEEDBACK = 17, 27
DEBOUNCE_S = 0.02
SETTLE_S = 0.12
RELAY_DELAY_S = 0.01


def levels(factory: MockFactory, pin: int) -> list[bool]:
    """Every level the mock pin went through, oldest first."""
    return [bool(s.state) for s in factory.pin(pin).states]


@dataclass
class Bench:
    factory: MockFactory
    world: World
    events: asyncio.Queue[HalEvent]
    relay: GpioRelay
    plant: GpioPlant

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        return running(self.plant.run(), self.relay.run())


def bench(
    *,
    active_high: bool = True,
    feedback: bool = True,
    feedback_active_high: bool = True,
) -> Bench:
    factory = MockFactory()
    world = World(1, BoardSettings())
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    relay = GpioRelay(
        1,
        events,
        pin=COIL,
        active_high=active_high,
        feedback_pin=FEEDBACK if feedback else None,
        feedback_active_high=feedback_active_high,
        debounce_s=DEBOUNCE_S,
        settle_s=SETTLE_S,
        pin_factory=factory,
    )
    wiring = GpioWiring(
        coil_pin=COIL,
        feedback_pin=FEEDBACK if feedback else None,
        coil_active_high=active_high,
        feedback_active_high=feedback_active_high,
    )
    plant = GpioPlant(world, factory, {1: wiring}, relay_delay_s=RELAY_DELAY_S)
    return Bench(factory, world, events, relay, plant)


# ---------------------------------------------------------------- normal operation


async def test_starts_open_with_the_coil_released() -> None:
    b = bench()
    async with b.running():
        await asyncio.sleep(0.03)
        assert isinstance(b.relay, Relay)
        assert b.relay.commanded_closed is False
        assert b.relay.feedback_closed is False
        assert levels(b.factory, COIL) == [False]
        assert b.factory.pin(COIL).function == "output"
        assert b.world.connector(1).coil is False
    assert drain(b.events) == []


async def test_close_and_open_are_verified_through_the_wires() -> None:
    b = bench()
    async with b.running():
        started = time.monotonic()
        await b.relay.close()
        # the contact follows after the relay delay, then must hold for the debounce time
        assert time.monotonic() - started >= RELAY_DELAY_S + DEBOUNCE_S
        assert b.relay.commanded_closed is True
        assert b.relay.feedback_closed is True
        assert b.factory.pin(COIL).state is True
        assert b.factory.pin(FEEDBACK).state is True
        assert b.world.connector(1).contact is True
        await b.relay.open()
        assert b.relay.commanded_closed is False
        assert b.relay.feedback_closed is False
        assert b.world.connector(1).contact is False
        assert b.factory.pin(FEEDBACK).state is False
    assert levels(b.factory, COIL) == [False, True, False]
    assert [text for _, text in b.world.connector(1).relay_history] == ["close", "open"]
    assert drain(b.events) == []


async def test_close_and_open_are_idempotent() -> None:
    b = bench()
    async with b.running():
        await b.relay.close()
        await b.relay.close()
        await b.relay.open()
        await b.relay.open()
    assert levels(b.factory, COIL) == [False, True, False]
    assert drain(b.events) == []


async def test_active_low_coil_and_feedback() -> None:
    b = bench(active_high=False, feedback_active_high=False)
    async with b.running():
        await asyncio.sleep(0.03)
        assert b.factory.pin(COIL).state is True  # released = high on an active-low output
        assert b.factory.pin(FEEDBACK).state is True  # open contact = high (pull-up side)
        assert b.relay.feedback_closed is False
        await b.relay.close()
        assert b.factory.pin(COIL).state is False
        assert b.factory.pin(FEEDBACK).state is False
        assert b.world.connector(1).contact is True
        assert b.relay.feedback_closed is True
        await b.relay.open()
        assert b.world.connector(1).contact is False
    # the mock pin reads low as an unconfigured input, before the driver takes it
    assert levels(b.factory, COIL) == [False, True, False, True]


async def test_relay_without_feedback_is_not_verified() -> None:
    b = bench(feedback=False)
    async with b.running():
        await b.relay.close()
        assert b.relay.commanded_closed is True
        assert b.relay.feedback_closed is None
        assert b.factory.pin(COIL).state is True
        b.world.set_fault(1, Fault.CONTACTOR_WELDED, True)
        await b.relay.open()  # nothing can tell it is welded
        assert b.relay.commanded_closed is False
        assert b.factory.pin(COIL).state is False
        await asyncio.sleep(SETTLE_S + 0.03)
        assert b.world.connector(1).contact is True
    assert drain(b.events) == []


# ---------------------------------------------------------------- welded contactor


async def test_welded_contactor_fails_open_and_is_never_energised_again() -> None:
    b = bench()
    async with b.running():
        await b.relay.close()
        b.world.set_fault(1, Fault.CONTACTOR_WELDED, True)
        with pytest.raises(RelayError, match="welded"):
            await b.relay.open()
        assert b.relay.commanded_closed is False
        assert b.factory.pin(COIL).state is False
        assert b.relay.feedback_closed is True
        assert b.relay.welded is True
        assert drain(b.events) == [FaultChanged(1, Fault.CONTACTOR_WELDED, True)]
        with pytest.raises(RelayError, match="welded"):
            await b.relay.close()
        with pytest.raises(RelayError, match="welded"):
            await b.relay.open()
        await looked_after(b.relay, time.monotonic() + SETTLE_S)
        assert drain(b.events) == []  # reported once
    assert levels(b.factory, COIL) == [False, True, False]


async def test_weld_found_by_the_monitor_while_idle() -> None:
    b = bench()
    async with b.running():
        await asyncio.sleep(0.02)
        b.world.set_fault(1, Fault.CONTACTOR_WELDED, True)
        await until(lambda: not b.events.empty())
        assert drain(b.events) == [FaultChanged(1, Fault.CONTACTOR_WELDED, True)]
        with pytest.raises(RelayError):
            await b.relay.close()
    assert levels(b.factory, COIL) == [False]  # never energised


async def test_contact_closed_at_start_is_never_energised() -> None:
    b = bench()
    b.world.set_fault(1, Fault.CONTACTOR_WELDED, True)
    async with b.running():
        await until(lambda: b.relay.feedback_closed is True)
        assert b.relay.welded is False  # not yet: it could still be opening
        with pytest.raises(RelayError, match="welded"):
            await b.relay.close()  # waits for it to open, up to settle_s, then gives up
        assert b.relay.welded is True
    assert levels(b.factory, COIL) == [False]
    assert drain(b.events) == [FaultChanged(1, Fault.CONTACTOR_WELDED, True)]


async def test_close_right_after_open_waits_for_the_contact_to_open() -> None:
    b = bench()
    async with b.running():
        await b.relay.close()
        opening = asyncio.create_task(b.relay.open())
        await asyncio.sleep(0)
        await b.relay.close()  # the contact still reads closed: this is no weld
        await opening
        assert b.relay.commanded_closed is True and b.relay.feedback_closed is True
    assert levels(b.factory, COIL) == [False, True, False, True]
    assert b.relay.welded is False
    assert drain(b.events) == []


async def test_weld_latch_clears_once_open_for_settle_s() -> None:
    b = bench()
    async with b.running():
        b.world.set_fault(1, Fault.CONTACTOR_WELDED, True)
        await until(lambda: b.relay.welded)
        drain(b.events)
        b.world.set_fault(1, Fault.CONTACTOR_WELDED, False)
        cleared_at = time.monotonic()
        await until(lambda: b.relay.feedback_closed is False)
        assert b.relay.welded is True  # an open reading alone does not clear it yet
        with pytest.raises(RelayError):
            await b.relay.close()
        await until(lambda: not b.relay.welded)
        assert time.monotonic() - cleared_at >= SETTLE_S
        assert drain(b.events) == [FaultChanged(1, Fault.CONTACTOR_WELDED, False)]
        assert levels(b.factory, COIL) == [False]
        await b.relay.close()
        assert b.world.connector(1).contact is True
        await b.relay.open()
    assert drain(b.events) == []


# ---------------------------------------------------------------- failed to close


async def test_failed_to_close_releases_the_coil_and_reports_once() -> None:
    b = bench()
    async with b.running():
        b.world.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, True)
        started = time.monotonic()
        with pytest.raises(RelayError, match="did not close"):
            await b.relay.close()
        assert time.monotonic() - started >= SETTLE_S
        assert b.relay.commanded_closed is False
        assert b.relay.feedback_closed is False
        assert b.factory.pin(COIL).state is False
        assert drain(b.events) == [FaultChanged(1, Fault.CONTACTOR_FAILED_TO_CLOSE, True)]
        with pytest.raises(RelayError):
            await b.relay.close()
        assert drain(b.events) == []
        await b.relay.open()  # an open contactor verifies fine
        b.world.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, False)
        await b.relay.close()
        assert b.relay.feedback_closed is True
        assert drain(b.events) == [FaultChanged(1, Fault.CONTACTOR_FAILED_TO_CLOSE, False)]
        await b.relay.open()
    assert levels(b.factory, COIL) == [False, True, False, True, False, True, False]


async def test_cancelled_close_releases_the_coil() -> None:
    b = bench()
    async with b.running():
        b.world.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, True)
        closing = asyncio.create_task(b.relay.close())
        await until(lambda: b.factory.pin(COIL).state is True)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert b.factory.pin(COIL).state is False
        assert b.relay.commanded_closed is False
    assert drain(b.events) == []


async def test_open_during_close_wins() -> None:
    b = bench()
    async with b.running():
        b.world.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, True)
        closing = asyncio.create_task(b.relay.close())
        await until(lambda: b.factory.pin(COIL).state is True)
        queued = asyncio.create_task(b.relay.close())  # waits for the first one
        await asyncio.sleep(0)
        await b.relay.open()
        with pytest.raises(RelayError, match="interrupted"):
            await closing
        with pytest.raises(RelayError, match="interrupted"):
            await queued
        assert b.factory.pin(COIL).state is False
    assert levels(b.factory, COIL) == [False, True, False]
    assert drain(b.events) == []


# ---------------------------------------------------------------- debounce (test drives the pins)


BARE_SETTLE_S = 0.2


def bare_relay(
    factory: MockFactory, events: asyncio.Queue[HalEvent], debounce_s: float = 0.05
) -> GpioRelay:
    return GpioRelay(
        1,
        events,
        pin=COIL,
        feedback_pin=FEEDBACK,
        debounce_s=debounce_s,
        settle_s=BARE_SETTLE_S,
        pin_factory=factory,
    )


async def flap(factory: MockFactory, rest_high: bool, pulses: int = 8) -> None:
    """Pulse the feedback away from ``rest_high`` for 5 ms every 20 ms."""
    pin = factory.pin(FEEDBACK)
    for _ in range(pulses):
        pin.drive_low() if rest_high else pin.drive_high()
        await asyncio.sleep(0.005)
        pin.drive_high() if rest_high else pin.drive_low()
        await asyncio.sleep(0.015)


async def test_feedback_flapping_faster_than_debounce_is_ignored_while_open() -> None:
    factory = MockFactory()
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    relay = bare_relay(factory, events)
    seen: list[bool | None] = []

    async def watch() -> None:
        while True:
            seen.append(relay.feedback_closed)
            await asyncio.sleep(0.002)

    async with running(relay.run(), watch()):
        await asyncio.sleep(BARE_SETTLE_S)  # from now on a closed reading would be a weld
        await flap(factory, rest_high=False)
    assert len([s for s in factory.pin(FEEDBACK).states if s.state]) == 8
    assert set(seen) == {False}
    assert relay.welded is False
    assert drain(events) == []


async def test_feedback_flapping_faster_than_debounce_is_ignored_while_closed() -> None:
    factory = MockFactory()
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    relay = bare_relay(factory, events)
    async with running(relay.run()):
        closing = asyncio.create_task(relay.close())
        await asyncio.sleep(0.01)
        await flap(factory, rest_high=False, pulses=3)  # a bouncing contact does not verify
        assert not closing.done()
        factory.pin(FEEDBACK).drive_high()
        await closing
        await flap(factory, rest_high=True)
        assert relay.commanded_closed is True
        assert relay.feedback_closed is True
        # a real drop-out (longer than the debounce) releases the coil
        factory.pin(FEEDBACK).drive_low()
        await until(lambda: not relay.commanded_closed)
        assert factory.pin(COIL).state is False
    assert drain(events) == []


async def test_debounce_accepts_a_steady_change() -> None:
    factory = MockFactory()
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    relay = bare_relay(factory, events, debounce_s=0.03)
    factory.pin(FEEDBACK).drive_high()
    changed = time.monotonic()
    assert relay.feedback_closed is False
    await until(lambda: relay.feedback_closed is True)
    assert time.monotonic() - changed >= 0.03


# ---------------------------------------------------------------- configuration


async def test_run_lets_cancellation_through_without_feedback() -> None:
    factory = MockFactory()
    relay = GpioRelay(1, asyncio.Queue(), pin=COIL, pin_factory=factory)
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pin": COIL, "feedback_pin": COIL},
        {"pin": -1},
        {"pin": True},
        {"pin": COIL, "feedback_pin": FEEDBACK, "debounce_s": 0.3, "settle_s": 0.3},
        {"pin": COIL, "settle_s": 0},
        {"pin": COIL, "debounce_s": float("nan")},
        {"pin": COIL, "active_high": 1},
        {"pin": 99},
    ],
)
def test_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(HalConfigError):
        GpioRelay(1, asyncio.Queue(), pin_factory=MockFactory(), **kwargs)


def test_pin_in_use_is_a_config_error_and_frees_what_it_took() -> None:
    factory = MockFactory()
    first = GpioRelay(1, asyncio.Queue(), pin=COIL, pin_factory=factory)
    with pytest.raises(HalConfigError, match="GPIO 17"):
        GpioRelay(2, asyncio.Queue(), pin=5, feedback_pin=COIL, pin_factory=factory)
    second = GpioRelay(2, asyncio.Queue(), pin=5, feedback_pin=6, pin_factory=factory)
    assert first.commanded_closed is False and second.commanded_closed is False  # 5 was freed


def test_release_pins_turns_the_coil_off() -> None:
    factory = MockFactory()
    relay = GpioRelay(1, asyncio.Queue(), pin=COIL, feedback_pin=FEEDBACK, pin_factory=factory)
    relay.release_pins()
    assert factory.pin(COIL).function == "input"
    GpioRelay(1, asyncio.Queue(), pin=COIL, feedback_pin=FEEDBACK, pin_factory=factory)


async def test_a_stalled_event_loop_is_no_weld() -> None:
    # The contact opened in time, but the loop was blocked past settle_s: the first
    # reading after the stall gets its debounce time before any verdict.
    factory = MockFactory()
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    relay = bare_relay(factory, events)
    async with running(relay.run()):
        closing = asyncio.create_task(relay.close())
        await asyncio.sleep(0.01)
        factory.pin(FEEDBACK).drive_high()
        await closing
        opening = asyncio.create_task(relay.open())
        await asyncio.sleep(0)
        factory.pin(FEEDBACK).drive_low()
        time.sleep(BARE_SETTLE_S + 0.05)  # noqa: ASYNC251 - the stall under test
        await opening
        await asyncio.sleep(BARE_SETTLE_S)
    assert relay.welded is False
    assert relay.feedback_closed is False
    assert drain(events) == []


async def test_a_stalled_event_loop_is_no_failure_to_close() -> None:
    factory = MockFactory()
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    relay = bare_relay(factory, events)
    async with running(relay.run()):
        closing = asyncio.create_task(relay.close())
        await asyncio.sleep(0)
        factory.pin(FEEDBACK).drive_high()
        time.sleep(BARE_SETTLE_S + 0.05)  # noqa: ASYNC251 - the stall under test
        await closing
        assert relay.commanded_closed is True and relay.feedback_closed is True
    assert drain(events) == []
