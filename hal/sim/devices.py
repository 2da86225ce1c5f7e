"""Simulated devices: thin views of one connector of the ``World``.

Each device implements its ``hal.interfaces`` protocol and keeps a
``history`` of ``(time_s, command)`` tuples (simulated monotonic time) for
tests to assert on, e.g. ``(12.0, "close")`` or ``(12.0, "offer 16.0")``.
Actions of the plant on a device (an RCD trip opening the contactor, the
safe state) are noted there too, with the reason in brackets.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from hal.errors import LockError, MeterError, RelayError
from hal.interfaces import Fault, MeterReading, PilotState
from hal.sim.world import MAX_CURRENT_A, MIN_OFFER_A, History, World


async def _operate(delay_s: float) -> None:
    if delay_s > 0.0:
        await asyncio.sleep(delay_s)


class SimRelay:
    """Main contactor with auxiliary-contact feedback.

    ``commanded_closed`` is the coil drive. It also drops when the coil is
    released without a command from the firmware (RCD trip, safe state), and
    a ``close()`` whose contacts do not pull in releases the coil again
    before raising ``RelayError``. ``relay_delay_s`` is how long the contacts
    take to follow the coil.
    """

    def __init__(self, world: World, connector_id: int, *, delay_s: float = 0.0) -> None:
        self._world = world
        self._id = connector_id
        self._state = world.connector(connector_id)
        self._delay_s = delay_s

    @property
    def history(self) -> History:
        return self._state.relay_history

    @property
    def commanded_closed(self) -> bool:
        return self._state.coil

    @property
    def feedback_closed(self) -> bool | None:
        return self._state.contact

    async def close(self) -> None:
        self._world.record(self._state.relay_history, "close")
        if Fault.CONTACTOR_WELDED in self._state.faults:
            raise RelayError(f"connector {self._id}: contactor is welded, not energizing it")
        self._world.set_coil(self._id, True)
        try:
            await _operate(self._delay_s)
        finally:
            self._world.settle_contact(self._id)
        if not self._state.contact:
            self._world.set_coil(self._id, False)
            self._world.settle_contact(self._id)
            raise RelayError(f"connector {self._id}: contactor did not close (feedback open)")

    async def open(self) -> None:
        self._world.record(self._state.relay_history, "open")
        self._world.set_coil(self._id, False)
        try:
            await _operate(self._delay_s)
        finally:
            self._world.settle_contact(self._id)
        if self._state.contact:
            raise RelayError(
                f"connector {self._id}: contactor welded (feedback closed with the coil released)"
            )


class SimLock:
    """Motorised cable lock; ``lock_delay_s`` is the motor's travel time."""

    def __init__(self, world: World, connector_id: int, *, delay_s: float = 0.0) -> None:
        self._world = world
        self._id = connector_id
        self._state = world.connector(connector_id)
        self._delay_s = delay_s

    @property
    def history(self) -> History:
        return self._state.lock_history

    @property
    def locked(self) -> bool:
        return self._state.locked

    async def lock(self) -> None:
        await self._drive(True)

    async def unlock(self) -> None:
        await self._drive(False)

    async def _drive(self, locked: bool) -> None:
        verb = "lock" if locked else "unlock"
        self._world.record(self._state.lock_history, verb)
        if Fault.LOCK_FAILURE not in self._state.faults:
            await _operate(self._delay_s)
        if Fault.LOCK_FAILURE in self._state.faults:
            raise LockError(f"connector {self._id}: lock did not {verb} (feedback unchanged)")
        self._world.set_locked(self._id, locked)


class SimEvse:
    """Control pilot side: the pilot state comes from the simulated vehicle."""

    def __init__(self, world: World, connector_id: int, *, cable_rating_a: float | None) -> None:
        self._world = world
        self._id = connector_id
        self._state = world.connector(connector_id)
        self._cable_rating_a = cable_rating_a

    @property
    def history(self) -> History:
        return self._state.evse_history

    @property
    def pilot(self) -> PilotState:
        return self._state.cp_state

    @property
    def cable_rating_a(self) -> float | None:
        return self._cable_rating_a

    @property
    def offered_current_a(self) -> float:
        return self._state.offered_a

    async def offer_current(self, current_a: float) -> None:
        value = float(current_a)
        if not math.isfinite(value) or value < 0.0 or 0.0 < value < MIN_OFFER_A:
            raise ValueError(
                f"offered current must be 0 or {MIN_OFFER_A:g}..{MAX_CURRENT_A:g} A, "
                f"got {current_a!r}"
            )
        if value > MAX_CURRENT_A:
            raise ValueError(f"offered current must be at most {MAX_CURRENT_A:g} A, got {value}")
        self._world.record(self._state.evse_history, f"offer {value}")
        self._world.set_offer(self._id, value)


class SimMeter:
    """Energy meter measuring the simulated vehicle's draw."""

    def __init__(self, world: World, connector_id: int) -> None:
        self._world = world
        self._id = connector_id
        self._state = world.connector(connector_id)

    @property
    def history(self) -> History:
        return self._state.meter_history

    async def read(self) -> MeterReading:
        if Fault.METER_OFFLINE in self._state.faults:
            self._world.record(self._state.meter_history, "read failed")
            raise MeterError(f"connector {self._id}: meter does not answer")
        self._world.record(self._state.meter_history, "read")
        return self._world.reading(self._id)


class SimBms:
    """State of charge of the simulated vehicle; None while none is plugged or known."""

    def __init__(self, world: World, connector_id: int) -> None:
        self._world = world
        self._state = world.connector(connector_id)

    @property
    def history(self) -> History:
        """SoC set by the plant ("soc 40.0") and forgotten on unplug ("soc None")."""
        return self._state.bms_history

    @property
    def soc_percent(self) -> float | None:
        self._world.step()
        if self._state.cp_state is PilotState.A:
            return None
        return self._state.soc


@dataclass(frozen=True, slots=True)
class SimDevices:
    """The concrete simulated devices of one connector (for their histories)."""

    connector_id: int
    relay: SimRelay
    evse: SimEvse
    meter: SimMeter
    lock: SimLock | None = None
    bms: SimBms | None = None
