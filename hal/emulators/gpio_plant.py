"""The far side of the GPIO wires: gpiozero mock pins connected to the simulated ``World``.

``GpioPlant`` reads what the GPIO drivers drive (contactor coils, lock motor
pulses) from a gpiozero ``MockFactory`` and drives their inputs (auxiliary
contacts, lock position switches, emergency stop) from the world's state. The
physics stay in ``World``: the plant only calls ``set_coil``,
``settle_contact`` and ``set_locked`` and reads back ``contact``, ``locked``
and the station faults.

Wiring per connector:

- the coil is energised while its pin is an output at its active level and
  no ``RCD_TRIP`` is active (the RCD cuts the coil supply, so the contacts
  open while the driver still drives the pin); ``relay_delay_s`` after the
  coil last changed, the contacts follow it as far as the world's faults
  allow (welded stays closed, failed-to-close stays open);
- a pulse on one of the two lock outputs (active high) starts the motor,
  which reaches the new position ``lock_delay_s`` after the pulse began,
  however short the pulse; with ``LOCK_FAILURE`` active the motor is stuck
  (it still gets there if the fault clears while the pulse lasts); both
  outputs driven together stop it;
- inputs are driven at their active level while the contact is closed, the
  lock is locked, or ``EMERGENCY_STOP`` (``TAMPER``) is among the station
  faults, for the emergency-stop (tamper) input.

Coil pin changes and lock pulses are noted in the world's device histories
("close", "open", "lock", "unlock"), as the simulated devices do.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from hal.errors import HalConfigError
from hal.interfaces import Fault
from hal.sim.world import World

POLL_S = 0.005


class MockPinLike(Protocol):
    """What the plant uses of a gpiozero ``MockPin``."""

    @property
    def function(self) -> str: ...

    @property
    def state(self) -> bool | int: ...

    def drive_high(self) -> None: ...

    def drive_low(self) -> None: ...


class MockPinFactory(Protocol):
    """What the plant uses of a gpiozero ``MockFactory``."""

    def pin(self, name: int) -> MockPinLike: ...


@dataclass(frozen=True, slots=True)
class GpioWiring:
    """How one connector's contactor and lock are wired to the GPIO header.

    ``feedback_pin`` None: the contactor has no auxiliary contact. The lock
    pins are all set or all None (fixed cable).
    """

    coil_pin: int
    feedback_pin: int | None
    coil_active_high: bool = True
    feedback_active_high: bool = True
    lock_pin: int | None = None
    unlock_pin: int | None = None
    lock_feedback_pin: int | None = None
    lock_feedback_active_high: bool = True

    @property
    def has_lock(self) -> bool:
        return self.lock_pin is not None

    def pins(self) -> dict[str, int | None]:
        return {
            "coil_pin": self.coil_pin,
            "feedback_pin": self.feedback_pin,
            "lock_pin": self.lock_pin,
            "unlock_pin": self.unlock_pin,
            "lock_feedback_pin": self.lock_feedback_pin,
        }


@dataclass(slots=True)
class _ConnectorWires:
    """What the plant remembers of one connector between polls."""

    coil_driven: bool = False
    coil_changed_at: float = -math.inf
    lock_drive: bool | None = None  # True: lock output alone, False: unlock alone
    travel: bool | None = None  # where the motor is heading, None: at rest
    travel_done_at: float = math.inf


class GpioPlant:
    """Connects a ``MockFactory``'s pins to a ``World`` (see the module docstring)."""

    def __init__(
        self,
        world: World,
        factory: MockPinFactory,
        wiring: Mapping[int, GpioWiring],
        *,
        relay_delay_s: float = 0.03,
        lock_delay_s: float = 0.1,
        estop_pin: int | None = None,
        estop_active_high: bool = False,
        tamper_pin: int | None = None,
        tamper_active_high: bool = False,
    ) -> None:
        for name, value in (("relay_delay_s", relay_delay_s), ("lock_delay_s", lock_delay_s)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise HalConfigError(f"{name}: must be a number of seconds >= 0, got {value!r}")
        used: dict[int, str] = {}
        if estop_pin is not None:
            used[estop_pin] = "estop_pin"
        if tamper_pin is not None:
            if tamper_pin in used:
                raise HalConfigError(f"tamper_pin GPIO {tamper_pin} is already wired as estop_pin")
            used[tamper_pin] = "tamper_pin"
        for cid, wires in wiring.items():
            world.connector(cid)  # KeyError for a connector the world does not have
            lock_pins = (wires.lock_pin, wires.unlock_pin, wires.lock_feedback_pin)
            if any(p is None for p in lock_pins) and any(p is not None for p in lock_pins):
                raise HalConfigError(
                    f"connector {cid}: lock_pin, unlock_pin and lock_feedback_pin "
                    "go together (all set or all None)"
                )
            for role, pin in wires.pins().items():
                if pin is None:
                    continue
                if pin in used:
                    raise HalConfigError(
                        f"connector {cid}: {role} GPIO {pin} is already wired as {used[pin]}"
                    )
                used[pin] = f"{role} of connector {cid}"
        self._world = world
        self._factory = factory
        self._wiring = dict(wiring)
        self._relay_delay_s = float(relay_delay_s)
        self._lock_delay_s = float(lock_delay_s)
        self._estop_pin = estop_pin
        self._estop_active_high = estop_active_high
        self._tamper_pin = tamper_pin
        self._tamper_active_high = tamper_active_high
        self._wires = {cid: _ConnectorWires() for cid in self._wiring}

    @property
    def world(self) -> World:
        return self._world

    async def run(self) -> None:
        """Follow the pins every ``POLL_S`` until cancelled."""
        while True:
            self.update()
            await asyncio.sleep(POLL_S)

    def update(self) -> None:
        """One poll: read the outputs, move the world, drive the inputs."""
        now = time.monotonic()
        for cid, wiring in self._wiring.items():
            wires = self._wires[cid]
            self._contactor(cid, wiring, wires, now)
            self._lock(cid, wiring, wires, now)
        if self._estop_pin is not None:
            pressed = Fault.EMERGENCY_STOP in self._world.station_faults
            self._drive(self._estop_pin, pressed == self._estop_active_high)
        if self._tamper_pin is not None:
            opened = Fault.TAMPER in self._world.station_faults
            self._drive(self._tamper_pin, opened == self._tamper_active_high)

    # ------------------------------------------------------------ internals

    def _driven(self, pin: int, active_high: bool) -> bool:
        """Whether a driver holds ``pin`` as an output at its active level."""
        mock = self._factory.pin(pin)
        return mock.function == "output" and bool(mock.state) == active_high

    def _drive(self, pin: int, level: bool) -> None:
        mock = self._factory.pin(pin)
        if mock.function != "input":
            raise HalConfigError(f"GPIO {pin} is an output; the plant cannot drive it")
        if level:
            mock.drive_high()
        else:
            mock.drive_low()

    def _contactor(self, cid: int, wiring: GpioWiring, wires: _ConnectorWires, now: float) -> None:
        world = self._world
        state = world.connector(cid)
        driven = self._driven(wiring.coil_pin, wiring.coil_active_high)
        if driven != wires.coil_driven:
            wires.coil_driven = driven
            world.record(state.relay_history, "close" if driven else "open")
        energised = driven and Fault.RCD_TRIP not in state.faults
        if energised != state.coil:
            world.set_coil(cid, energised)
            wires.coil_changed_at = now
        if now - wires.coil_changed_at >= self._relay_delay_s:
            world.settle_contact(cid)
        if wiring.feedback_pin is not None:
            self._drive(wiring.feedback_pin, state.contact == wiring.feedback_active_high)

    def _lock(self, cid: int, wiring: GpioWiring, wires: _ConnectorWires, now: float) -> None:
        if wiring.lock_pin is None or wiring.unlock_pin is None:
            return
        world = self._world
        state = world.connector(cid)
        locking = self._driven(wiring.lock_pin, True)
        unlocking = self._driven(wiring.unlock_pin, True)
        drive = locking if locking != unlocking else None
        if drive != wires.lock_drive:
            wires.lock_drive = drive
            if drive is not None:  # a pulse starts: the motor travels for lock_delay_s
                wires.travel = drive
                wires.travel_done_at = now + self._lock_delay_s
                world.record(state.lock_history, "lock" if drive else "unlock")
        if locking and unlocking:
            wires.travel = None  # both driven: the motor does not move
        if wires.travel is not None and now >= wires.travel_done_at:
            if Fault.LOCK_FAILURE not in state.faults:
                world.set_locked(cid, wires.travel)
                wires.travel = None
            elif drive is not wires.travel:
                wires.travel = None  # stuck, and the pulse is over
        if wiring.lock_feedback_pin is not None:
            self._drive(wiring.lock_feedback_pin, state.locked == wiring.lock_feedback_active_high)
