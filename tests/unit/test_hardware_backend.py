"""The hardware backend built from YAML: real drivers, with emulated devices on their wires.

The board here is gpiozero's mock pin factory, a python-can ``virtual`` bus
and pseudo-terminals, so the same settings a Raspberry Pi uses reach the same
drivers; only the names of the pin factory, CAN interface and ports differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import can
import pytest

from hal.emulators.evse_controller import EmulatedEvseController
from hal.emulators.gpio_plant import GpioPlant, GpioWiring
from hal.emulators.meter_server import EmulatedMeter
from hal.emulators.pn532_device import Pn532Device
from hal.emulators.pty_pair import PtyPair
from hal.emulators.serial_link import SerialLink
from hal.errors import HalConfigError
from hal.gpio.lock import GpioLock
from hal.gpio.relay import GpioRelay
from hal.hardware.backend import HardwareBackend
from hal.interfaces import (
    BoardSettings,
    Fault,
    FaultChanged,
    HalBackend,
    HalEvent,
    PilotChanged,
    PilotState,
    TokenPresented,
)
from hal.registry import build_backend, check_backend
from hal.sim.world import World

BOARD = BoardSettings(has_bms=False)


def settings(meter_port: str, reader_port: str, channel: str) -> dict[str, Any]:
    """A Raspberry Pi configuration with a mock pin factory, virtual CAN and ptys."""
    return {
        "gpio": {"factory": "mock"},
        "can": {"interface": "virtual", "channel": channel},
        "relay": {"driver": "gpio", "pin": 17, "feedback_pin": 27},
        "lock": {"driver": "gpio", "lock_pin": 22, "unlock_pin": 23, "feedback_pin": 24},
        "evse": {"driver": "can"},
        "bms": {"driver": "none"},
        "meter": {"driver": "modbus", "port": meter_port, "device_id": 1, "map": "sdm630"},
        "rfid": [{"driver": "pn532", "port": reader_port}],
        "emergency_stop": {"pin": 5, "active_high": True},
        "tamper": {"pin": 12, "active_high": True},
    }


@contextlib.asynccontextmanager
async def wires(tmp_path: Path) -> AsyncIterator[tuple[PtyPair, SerialLink, str]]:
    async with PtyPair(tmp_path, "meter") as pair:
        with SerialLink(tmp_path, "reader") as link:
            yield pair, link, f"hw-{uuid.uuid4().hex[:8]}"


async def next_event(events: asyncio.Queue[HalEvent], kind: type[Any]) -> Any:
    async with asyncio.timeout(5):
        while True:
            event = await events.get()
            if isinstance(event, kind):
                return event


async def test_yaml_settings_drive_the_real_drivers_end_to_end(tmp_path: Path) -> None:
    async with wires(tmp_path) as (pair, link, channel):
        backend = build_backend(
            "hardware", settings(pair.client_path, str(link.path), channel), 1, BOARD
        )
        assert isinstance(backend, HardwareBackend) and backend.plant is None
        hw = backend.connectors[1]
        assert isinstance(hw.relay, GpioRelay) and isinstance(hw.lock, GpioLock)
        assert hw.bms is None

        world = World(1, BOARD)
        plant_bus = can.Bus(interface="virtual", channel=channel)
        factory = backend.pin_factory
        wiring = GpioWiring(
            coil_pin=17, feedback_pin=27, lock_pin=22, unlock_pin=23, lock_feedback_pin=24
        )
        gpio = GpioPlant(
            world,
            factory,
            {1: wiring},
            estop_pin=5,
            estop_active_high=True,
            tamper_pin=12,
            tamper_active_high=True,
        )
        reader = Pn532Device(link)
        tasks = [
            asyncio.create_task(gpio.run()),
            asyncio.create_task(EmulatedEvseController(world, plant_bus, 1).run()),
            asyncio.create_task(EmulatedMeter(world, 1, pair.server_path).run()),
            asyncio.create_task(reader.run()),
            asyncio.create_task(backend.run()),
        ]
        try:
            world.set_cp_state(1, PilotState.C)
            assert await next_event(backend.events, PilotChanged) == PilotChanged(1, PilotState.C)
            await hw.lock.lock()
            await hw.evse.offer_current(16.0)
            await hw.relay.close()
            assert hw.relay.feedback_closed is True and world.connector(1).contact
            await asyncio.sleep(0.3)
            reading = await hw.meter.read()
            assert reading.current_a[0] == pytest.approx(16.0, rel=5e-3)
            reader.present("04A2B3C4")
            token = await next_event(backend.events, TokenPresented)
            assert token == TokenPresented("04A2B3C4", None)
            world.set_fault(0, Fault.TAMPER, True)  # the enclosure opened
            opened = await next_event(backend.events, FaultChanged)
            assert opened == FaultChanged(0, Fault.TAMPER, True)
        finally:
            tasks[-1].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[-1]
            # Leaving run() put the station in safe state: no offer, coil released.
            assert hw.evse.offered_current_a == 0.0
            assert hw.relay.commanded_closed is False
            for task in tasks[:-1]:
                task.cancel()
            await asyncio.gather(*tasks[:-1], return_exceptions=True)
            plant_bus.shutdown()


def broken(base: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """``base`` with the value at ``path`` (dotted) replaced; None removes it."""
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node.setdefault(int(part) if part.isdigit() else part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("relay.driver", "spi", "hal.relay.driver: unknown driver 'spi' (known: gpio)"),
        ("relay.pin", 99, "hal.relay: relay of connector 1: coil: GPIO 99: 99 is not a valid pin"),
        ("relay.pin", None, "hal.relay: required setting(s) missing: pin"),
        ("relay.colour", "red", "hal.relay.colour: unknown setting"),
        ("lock.lock_pin", 17, "GPIO17"),  # already the relay's coil
        ("lock.driver", "servo", "hal.lock.driver: unknown driver 'servo' (known: gpio, none)"),
        ("evse.driver", "pwm", "hal.evse.driver: unknown driver 'pwm' (known: can)"),
        ("meter.port", "/dev/ttyNOPE0", "hal.meter.port: /dev/ttyNOPE0 does not exist"),
        ("meter.port", None, "hal.meter.port: required"),
        ("meter.map", "sdm999", "hal.meter: "),
        ("bms.driver", "ccs", "hal.bms.driver: unknown driver 'ccs' (known: chademo, none)"),
        ("gpio.factory", "pigpio9", "hal.gpio.factory: unknown pin factory 'pigpio9'"),
        ("can.interface", "nosuchcan", "hal.can.interface: unknown CAN interface 'nosuchcan'"),
        ("can.interface", "socketcan", "hal.can.channel: no network interface"),
        ("relais", {}, "hal.relais: unknown key"),
        ("connectors.1.fan", {}, "hal.connectors.1.fan: unknown role"),
        ("connectors.1.relay", 5, "hal.connectors.1.relay: must be a mapping"),
        ("rfid", "pn532", "hal.rfid: must be a list of readers"),
        ("emergency_stop.pin", "five", "hal.emergency_stop: "),
        ("tamper.pin", "five", "hal.tamper: "),
        ("tamper.pin", 5, "GPIO5"),  # already the emergency stop
        ("tamper.colour", "red", "hal.tamper.colour: unknown setting"),
    ],
)
async def test_one_clear_error_at_start_up(
    tmp_path: Path, path: str, value: object, message: str
) -> None:
    async with wires(tmp_path) as (pair, link, channel):
        options = broken(settings(pair.client_path, str(link.path), channel), path, value)
        with pytest.raises(HalConfigError) as caught:
            build_backend("hardware", options, 1, BOARD)
        assert message in str(caught.value)
        # check-config: the same error, in the same words, without the board's devices.
        with pytest.raises(HalConfigError) as checked:
            check_backend("hardware", options, 1, BOARD)
        assert str(checked.value) == str(caught.value)
        # Everything opened before the error was given back: a good build works now.
        good = build_backend(
            "hardware", settings(pair.client_path, str(link.path), channel), 1, BOARD
        )
        assert good.connectors[1].relay.commanded_closed is False
        await run_briefly(good)


async def test_check_opens_nothing_and_keeps_nothing(tmp_path: Path) -> None:
    async with wires(tmp_path) as (pair, link, channel):
        options = settings(pair.client_path, str(link.path), channel)
        options["can"] = {"interface": "socketcan", "channel": "lo"}  # exists, never opened
        options["gpio"] = {"factory": "native"}  # imported, never built: no GPIO here
        check_backend("hardware", options, 1, BOARD)
        check_backend("hardware", options, 1, BOARD)  # the pins were given back
        good = build_backend(
            "hardware", settings(pair.client_path, str(link.path), channel), 1, BOARD
        )
        assert good.connectors[1].relay.commanded_closed is False
        await run_briefly(good)


async def run_briefly(backend: HalBackend) -> None:
    """Start and cancel ``run()``: it gives the buses and ports back on the way out."""
    task = asyncio.create_task(backend.run())
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        ({"driver": "mifare9", "port": "X"}, "hal.rfid[0].driver: unknown driver 'mifare9'"),
        ({"driver": "rdm6300", "port": "/dev/ttyNOPE1"}, "hal.rfid[0].port: /dev/ttyNOPE1"),
        ({"driver": "lines", "connector": 3}, "hal.rfid[0].connector: no connector 3"),
    ],
)
async def test_reader_errors(tmp_path: Path, reader: dict[str, Any], message: str) -> None:
    async with wires(tmp_path) as (pair, link, channel):
        options = settings(pair.client_path, str(link.path), channel)
        options["rfid"] = [{**reader, "port": reader.get("port", str(link.path))}]
        with pytest.raises(HalConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            build_backend("hardware", options, 1, BOARD)


async def test_per_connector_overrides(tmp_path: Path) -> None:
    async with wires(tmp_path) as (pair, link, channel):
        options = settings(pair.client_path, str(link.path), channel)
        options["connectors"] = {
            2: {
                "relay": {"pin": 16, "feedback_pin": 26},
                "lock": {"lock_pin": 6, "unlock_pin": 13, "feedback_pin": 19},
                "meter": {"device_id": 2},
            }
        }
        backend = build_backend("hardware", options, 2, BOARD)
        assert isinstance(backend, HardwareBackend)
        second = backend.connectors[2]
        assert isinstance(second.relay, GpioRelay)
        assert second.meter is not backend.connectors[1].meter
        pins = backend.pin_factory
        for output in (17, 22, 23, 16, 6, 13):
            assert pins.pin(output).function == "output"
        for sensed in (27, 24, 26, 19, 5):
            assert pins.pin(sensed).function == "input"
        await run_briefly(backend)
