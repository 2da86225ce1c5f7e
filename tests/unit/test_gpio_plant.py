"""GpioPlant: the far side of the GPIO wires, moving the World from gpiozero mock pins."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory

from hal.emulators.gpio_plant import GpioPlant, GpioWiring
from hal.errors import HalConfigError
from hal.gpio.relay import GpioRelay
from hal.interfaces import BoardSettings, Fault, HalEvent
from hal.sim.world import World
from tests.unit.aio import running, until

COIL, FEEDBACK = 17, 27
LOCK, UNLOCK, POSITION = 22, 23, 24
ESTOP = 4


def output(factory: MockFactory, pin: int, active_high: bool = True) -> Any:
    """A bare gpiozero output standing in for a driver (keep a reference: gpiozero
    releases the pin when the device is garbage collected)."""
    return OutputDevice(pin, active_high=active_high, initial_value=False, pin_factory=factory)


FULL = GpioWiring(
    coil_pin=COIL,
    feedback_pin=FEEDBACK,
    lock_pin=LOCK,
    unlock_pin=UNLOCK,
    lock_feedback_pin=POSITION,
)


# ---------------------------------------------------------------- contactor


def test_contact_follows_the_coil_after_the_delay() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    plant = GpioPlant(world, factory, {1: FULL}, relay_delay_s=0.02)
    coil = output(factory, COIL)
    plant.update()
    assert world.connector(1).coil is False
    assert factory.pin(FEEDBACK).state is False
    coil.on()
    plant.update()
    assert world.connector(1).coil is True
    assert world.connector(1).contact is False  # not yet: the delay runs
    time.sleep(0.025)
    plant.update()
    assert world.connector(1).contact is True
    assert factory.pin(FEEDBACK).state is True
    coil.off()
    plant.update()
    assert world.connector(1).contact is True
    time.sleep(0.025)
    plant.update()
    assert world.connector(1).contact is False
    assert factory.pin(FEEDBACK).state is False
    assert [text for _, text in world.connector(1).relay_history] == ["close", "open"]


def test_undriven_coil_pin_never_energises_even_when_wired_active_low() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    wiring = GpioWiring(coil_pin=COIL, feedback_pin=FEEDBACK, coil_active_high=False)
    plant = GpioPlant(world, factory, {1: wiring}, relay_delay_s=0.0)
    plant.update()
    assert factory.pin(COIL).state is False  # low, but nobody drives it
    assert world.connector(1).coil is False
    coil = output(factory, COIL, active_high=False)
    plant.update()
    assert factory.pin(COIL).state is True and world.connector(1).coil is False
    coil.on()
    plant.update()
    assert factory.pin(COIL).state is False
    assert world.connector(1).contact is True


@pytest.mark.parametrize("feedback_active_high", [True, False])
def test_welded_contact_reads_closed_with_the_coil_off(feedback_active_high: bool) -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    wiring = GpioWiring(COIL, FEEDBACK, feedback_active_high=feedback_active_high)
    plant = GpioPlant(world, factory, {1: wiring}, relay_delay_s=0.0)
    coil = output(factory, COIL)  # held released all along
    plant.update()
    assert factory.pin(FEEDBACK).state is not feedback_active_high
    world.set_fault(1, Fault.CONTACTOR_WELDED, True)
    plant.update()
    assert coil.value == 0 and world.connector(1).coil is False
    assert factory.pin(FEEDBACK).state is feedback_active_high
    world.set_fault(1, Fault.CONTACTOR_WELDED, False)
    plant.update()
    assert factory.pin(FEEDBACK).state is not feedback_active_high


def test_failed_to_close_keeps_the_contact_open() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    plant = GpioPlant(world, factory, {1: FULL}, relay_delay_s=0.0)
    coil = output(factory, COIL)
    world.set_fault(1, Fault.CONTACTOR_FAILED_TO_CLOSE, True)
    coil.on()
    plant.update()
    plant.update()
    assert world.connector(1).coil is True
    assert world.connector(1).contact is False
    assert factory.pin(FEEDBACK).state is False


def test_rcd_trip_opens_the_contact_while_the_pin_is_still_driven() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    plant = GpioPlant(world, factory, {1: FULL}, relay_delay_s=0.0)
    coil = output(factory, COIL)
    coil.on()
    plant.update()
    assert world.connector(1).contact is True
    world.set_fault(1, Fault.RCD_TRIP, True)
    plant.update()
    plant.update()
    assert factory.pin(COIL).state is True
    assert world.connector(1).coil is False
    assert world.connector(1).contact is False
    assert factory.pin(FEEDBACK).state is False
    world.set_fault(1, Fault.RCD_TRIP, False)
    plant.update()
    assert world.connector(1).contact is True  # a still-driven coil pulls in again


async def test_rcd_trip_makes_the_relay_driver_release_its_coil() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    relay = GpioRelay(
        1,
        events,
        pin=COIL,
        feedback_pin=FEEDBACK,
        debounce_s=0.02,
        settle_s=0.5,  # the close waits this long for feedback on a loaded machine
        pin_factory=factory,
    )
    plant = GpioPlant(world, factory, {1: FULL}, relay_delay_s=0.01)
    async with running(plant.run(), relay.run()):
        await relay.close()
        world.set_fault(1, Fault.RCD_TRIP, True)
        assert world.connector(1).contact is False
        await until(lambda: not relay.commanded_closed)
        assert factory.pin(COIL).state is False
        assert relay.feedback_closed is False
        world.set_fault(1, Fault.RCD_TRIP, False)
        plant.update()  # a poll after the fault cleared: the coil is not driven again
        assert factory.pin(COIL).state is False
        assert world.connector(1).contact is False  # it does not close again by itself
        await relay.close()
        assert world.connector(1).contact is True
    assert [text for _, text in world.connector(1).relay_history] == [
        "close",
        "open (rcd_trip)",
        "open",
        "close",
    ]
    assert events.empty()  # the RCD trip is reported by whoever watches the RCD


def test_connectors_are_independent() -> None:
    factory = MockFactory()
    world = World(2, BoardSettings())
    plant = GpioPlant(
        world, factory, {1: GpioWiring(COIL, FEEDBACK), 2: GpioWiring(5, 6)}, relay_delay_s=0.0
    )
    coil1, coil2 = output(factory, COIL), output(factory, 5)
    coil2.on()
    world.set_fault(1, Fault.CONTACTOR_WELDED, True)
    plant.update()
    assert coil1.value == 0
    assert world.connector(2).contact is True
    assert factory.pin(6).state is True
    assert world.connector(1).coil is False
    assert factory.pin(FEEDBACK).state is True


# ---------------------------------------------------------------- lock


def test_lock_reaches_its_position_lock_delay_s_after_a_pulse_starts() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    plant = GpioPlant(world, factory, {1: FULL}, lock_delay_s=0.02)
    lock, unlock = output(factory, LOCK), output(factory, UNLOCK)
    lock.on()
    plant.update()
    assert world.connector(1).locked is False
    time.sleep(0.025)
    plant.update()
    assert world.connector(1).locked is True
    assert factory.pin(POSITION).state is True
    lock.off()
    unlock.on()  # a pulse shorter than the travel time still gets there
    plant.update()
    unlock.off()
    plant.update()
    assert world.connector(1).locked is True
    time.sleep(0.025)
    plant.update()
    assert world.connector(1).locked is False
    assert factory.pin(POSITION).state is False
    assert [text for _, text in world.connector(1).lock_history] == ["lock", "unlock"]


def test_lock_does_not_move_with_both_outputs_driven() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    plant = GpioPlant(world, factory, {1: FULL}, lock_delay_s=0.02)
    lock, unlock = output(factory, LOCK), output(factory, UNLOCK)
    lock.on()
    plant.update()
    unlock.on()
    plant.update()
    time.sleep(0.025)
    plant.update()
    assert world.connector(1).locked is False
    assert lock.value == 1 and unlock.value == 1


def test_stuck_lock_moves_only_if_freed_while_driven() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    plant = GpioPlant(world, factory, {1: FULL}, lock_delay_s=0.01)
    lock, unlock = output(factory, LOCK), output(factory, UNLOCK)
    world.set_fault(1, Fault.LOCK_FAILURE, True)
    lock.on()
    plant.update()
    time.sleep(0.015)
    plant.update()
    assert world.connector(1).locked is False
    world.set_fault(1, Fault.LOCK_FAILURE, False)  # frees itself during the pulse
    plant.update()
    assert world.connector(1).locked is True
    lock.off()
    world.set_fault(1, Fault.LOCK_FAILURE, True)
    unlock.on()
    plant.update()
    time.sleep(0.015)
    plant.update()
    unlock.off()
    plant.update()
    world.set_fault(1, Fault.LOCK_FAILURE, False)  # too late: the pulse is over
    plant.update()
    assert world.connector(1).locked is True
    assert factory.pin(POSITION).state is True


def test_lock_position_active_low() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    wiring = GpioWiring(
        COIL,
        FEEDBACK,
        lock_pin=LOCK,
        unlock_pin=UNLOCK,
        lock_feedback_pin=POSITION,
        lock_feedback_active_high=False,
    )
    plant = GpioPlant(world, factory, {1: wiring}, lock_delay_s=0.0)
    plant.update()
    assert factory.pin(POSITION).state is True
    world.set_locked(1, True)
    plant.update()
    assert factory.pin(POSITION).state is False


# ---------------------------------------------------------------- emergency stop pin


@pytest.mark.parametrize("active_high", [False, True])
def test_estop_pin_follows_the_station_fault(active_high: bool) -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    plant = GpioPlant(world, factory, {1: FULL}, estop_pin=ESTOP, estop_active_high=active_high)
    plant.update()
    assert factory.pin(ESTOP).state is not active_high
    world.set_fault(0, Fault.EMERGENCY_STOP, True)
    plant.update()
    assert factory.pin(ESTOP).state is active_high
    world.set_fault(0, Fault.EMERGENCY_STOP, False)
    plant.update()
    assert factory.pin(ESTOP).state is not active_high


# ---------------------------------------------------------------- configuration and life cycle


@pytest.mark.parametrize(
    ("wiring", "options"),
    [
        ({1: GpioWiring(COIL, COIL)}, {}),
        ({1: GpioWiring(COIL, FEEDBACK), 2: GpioWiring(5, FEEDBACK)}, {}),
        ({1: GpioWiring(COIL, FEEDBACK, lock_pin=LOCK)}, {}),
        ({1: FULL}, {"estop_pin": POSITION}),
        ({1: FULL}, {"relay_delay_s": -0.1}),
        ({1: FULL}, {"lock_delay_s": float("inf")}),
    ],
)
def test_bad_wiring(wiring: dict[int, GpioWiring], options: dict[str, Any]) -> None:
    with pytest.raises(HalConfigError):
        GpioPlant(World(2, BoardSettings()), MockFactory(), wiring, **options)


def test_unknown_connector() -> None:
    with pytest.raises(KeyError):
        GpioPlant(World(1, BoardSettings()), MockFactory(), {2: GpioWiring(COIL, FEEDBACK)})


def test_an_input_taken_as_an_output_is_refused() -> None:
    factory = MockFactory()
    plant = GpioPlant(World(1, BoardSettings()), factory, {1: GpioWiring(COIL, FEEDBACK)})
    wrong = output(factory, FEEDBACK)
    with pytest.raises(HalConfigError, match="GPIO 27"):
        plant.update()
    assert wrong.value == 0


async def test_run_polls_until_cancelled() -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    plant = GpioPlant(world, factory, {1: GpioWiring(COIL, FEEDBACK)}, relay_delay_s=0.0)
    coil = output(factory, COIL)
    task = asyncio.create_task(plant.run())
    coil.on()
    await until(lambda: factory.pin(FEEDBACK).state is True)
    assert world.connector(1).contact is True
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
