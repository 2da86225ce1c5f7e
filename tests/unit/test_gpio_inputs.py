"""GpioEmergencyStop and GpioTamper on gpiozero mock pins, and the pin factory helper."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from hal.emulators.gpio_plant import GpioPlant, GpioWiring
from hal.errors import HalConfigError
from hal.gpio import make_factory
from hal.gpio.inputs import GpioEmergencyStop, GpioTamper
from hal.interfaces import BoardSettings, Fault, FaultChanged, HalEvent
from hal.sim.world import World
from tests.unit.aio import drain, looked_after, running, until

ESTOP = 4
DEBOUNCE_S = 0.03
PRESSED = FaultChanged(0, Fault.EMERGENCY_STOP, True)
RELEASED = FaultChanged(0, Fault.EMERGENCY_STOP, False)


@pytest.mark.parametrize("active_high", [False, True])
async def test_estop_reports_each_change_through_the_plant(active_high: bool) -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    estop = GpioEmergencyStop(
        events, pin=ESTOP, active_high=active_high, debounce_s=DEBOUNCE_S, pin_factory=factory
    )
    plant = GpioPlant(
        world,
        factory,
        {1: GpioWiring(17, 27)},
        estop_pin=ESTOP,
        estop_active_high=active_high,
    )
    async with running(plant.run(), estop.run()):
        await looked_after(estop, time.monotonic() + DEBOUNCE_S * 2)  # released all along
        assert factory.pin(ESTOP).state is not active_high
        assert estop.active is False
        assert drain(events) == []
        world.set_fault(0, Fault.EMERGENCY_STOP, True)
        pressed_at = time.monotonic()
        await until(lambda: not events.empty())
        assert time.monotonic() - pressed_at >= DEBOUNCE_S
        assert factory.pin(ESTOP).state is active_high
        assert estop.active is True
        assert drain(events) == [PRESSED]
        world.set_fault(0, Fault.EMERGENCY_STOP, False)
        await until(lambda: not events.empty())
        assert estop.active is False
        await looked_after(estop, time.monotonic() + DEBOUNCE_S * 2)
    assert drain(events) == [RELEASED]


@pytest.mark.parametrize("active_high", [False, True])
async def test_estop_with_nothing_holding_the_line_reads_pressed(active_high: bool) -> None:
    factory = MockFactory()
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    estop = GpioEmergencyStop(
        events, pin=ESTOP, active_high=active_high, debounce_s=DEBOUNCE_S, pin_factory=factory
    )
    # the pull resistor takes an open line (pressed button, broken wire) to the active level
    assert factory.pin(ESTOP).state is active_high
    async with running(estop.run()):
        await until(lambda: estop.active)
        await looked_after(estop, time.monotonic() + DEBOUNCE_S * 2)
    assert drain(events) == [PRESSED]


async def test_estop_glitches_shorter_than_the_debounce_are_ignored() -> None:
    factory = MockFactory()
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    estop = GpioEmergencyStop(events, pin=ESTOP, debounce_s=0.05, pin_factory=factory)
    pin = factory.pin(ESTOP)
    pin.drive_high()  # the closed contact holds the active-low line released
    pin.clear_states()
    async with running(estop.run()):
        for _ in range(8):
            pin.drive_low()
            await asyncio.sleep(0.005)
            pin.drive_high()
            await asyncio.sleep(0.015)
        await looked_after(estop, time.monotonic())  # seen released after the last glitch
        assert estop.active is False
        assert drain(events) == []
        pin.drive_low()
        await until(lambda: estop.active)
        for _ in range(5):  # bouncing back while pressed does not release it
            pin.drive_high()
            await asyncio.sleep(0.005)
            pin.drive_low()
            await asyncio.sleep(0.015)
    assert len([s for s in pin.states if not s.state]) == 14
    assert drain(events) == [PRESSED]


@pytest.mark.parametrize(
    "kwargs", [{"pin": -3}, {"pin": ESTOP, "debounce_s": -1}, {"pin": ESTOP, "active_high": None}]
)
def test_estop_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(HalConfigError):
        GpioEmergencyStop(asyncio.Queue(), pin_factory=MockFactory(), **kwargs)


def test_make_factory() -> None:
    assert isinstance(make_factory("mock"), MockFactory)
    assert isinstance(make_factory("MOCK"), MockFactory)
    with pytest.raises(HalConfigError, match="unknown GPIO pin factory"):
        make_factory("wiringpi")
    with pytest.raises(HalConfigError):
        make_factory("")


@pytest.mark.parametrize("active_high", [False, True])
async def test_tamper_switch_reports_each_change_through_the_plant(active_high: bool) -> None:
    factory = MockFactory()
    world = World(1, BoardSettings())
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    tamper = GpioTamper(
        events, pin=6, active_high=active_high, debounce_s=DEBOUNCE_S, pin_factory=factory
    )
    plant = GpioPlant(
        world,
        factory,
        {1: GpioWiring(17, 27)},
        estop_pin=ESTOP,
        tamper_pin=6,
        tamper_active_high=active_high,
    )
    async with running(plant.run(), tamper.run()):
        await looked_after(tamper, time.monotonic() + DEBOUNCE_S * 2)  # closed all along
        assert drain(events) == []
        world.set_fault(0, Fault.TAMPER, True)
        await until(lambda: not events.empty())
        assert drain(events) == [FaultChanged(0, Fault.TAMPER, True)]
        world.set_fault(0, Fault.EMERGENCY_STOP, True)  # another input: not the tamper one
        world.set_fault(0, Fault.TAMPER, False)
        await until(lambda: not tamper.active)
        await looked_after(tamper, time.monotonic() + DEBOUNCE_S * 2)
    assert drain(events) == [FaultChanged(0, Fault.TAMPER, False)]


def test_tamper_and_estop_cannot_share_a_pin() -> None:
    with pytest.raises(HalConfigError, match="tamper_pin GPIO 4 is already wired as estop_pin"):
        GpioPlant(World(1, BoardSettings()), MockFactory(), {}, estop_pin=ESTOP, tamper_pin=ESTOP)


def test_tamper_bad_configuration() -> None:
    with pytest.raises(HalConfigError, match="tamper: pin"):
        GpioTamper(asyncio.Queue(), pin=-1, pin_factory=MockFactory())
