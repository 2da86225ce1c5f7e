"""``PlantControl`` for the simulated world: validate, apply, report events."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from hal.interfaces import (
    Fault,
    FaultChanged,
    HalEvent,
    PilotChanged,
    PilotState,
    TokenPresented,
)
from hal.sim.world import MAX_CURRENT_A, STATION_ID, History, World
from hal.tokens import Tag, check_id_tag

log = logging.getLogger("hal.sim")

STATION_FAULTS = frozenset({Fault.READER_OFFLINE, Fault.EMERGENCY_STOP, Fault.TAMPER})


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return number


def _pilot_state(value: object) -> PilotState:
    if isinstance(value, PilotState):
        return value
    if isinstance(value, str) and value.upper() in PilotState.__members__:
        return PilotState(value.upper())
    raise ValueError(f"cp_state must be one of A..F, got {value!r}")


def _fault(value: object) -> Fault:
    if isinstance(value, Fault):
        return value
    try:
        return Fault(str(value))
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault {value!r} (known: {known})") from None


class SimPlant:
    """Drives the simulated vehicles, token reader and faults.

    Every accepted call is noted in ``history``; events go to the backend's
    queue: ``PilotChanged`` on a pilot change, ``TokenPresented`` for a token
    read, ``FaultChanged`` only when a fault's state changes.
    """

    def __init__(self, world: World, events: asyncio.Queue[HalEvent]) -> None:
        self.world = world
        self._events = events
        self.history: History = []

    def set_ev(
        self,
        connector_id: int,
        *,
        cp_state: PilotState | None = None,
        ev_max_current_a: float | None = None,
        soc: float | None = None,
    ) -> None:
        """Change the vehicle on ``connector_id``; nothing changes unless all values are valid.

        The SoC is forgotten when the pilot goes to A. A SoC set while no
        vehicle is plugged belongs to the next vehicle that plugs in. Without
        a battery model (``battery_kwh: null``) there is no SoC to set.
        """
        self.world.connector(connector_id)
        state = None if cp_state is None else _pilot_state(cp_state)
        max_a = (
            None
            if ev_max_current_a is None
            else _number("ev_max_current_a", ev_max_current_a, 0.0, MAX_CURRENT_A)
        )
        soc_value = None if soc is None else _number("soc", soc, 0.0, 100.0)
        if soc_value is not None and self.world.battery_wh is None:
            raise ValueError("the simulated vehicle has no battery (hal.battery_kwh is null)")
        if state is not None and self.world.set_cp_state(connector_id, state):
            self._note(f"connector {connector_id} cp_state {state.value}")
            self._emit(PilotChanged(connector_id, state))
        if max_a is not None:
            self.world.set_ev_max_current(connector_id, max_a)
            self._note(f"connector {connector_id} ev_max_current_a {max_a}")
        if soc_value is not None:
            self.world.set_soc(connector_id, soc_value)
            self._note(f"connector {connector_id} soc {soc_value}")

    def present_token(self, uid: str, connector_id: int | None = None) -> None:
        """Read a token, kept exactly as given (any idTag, see ``hal.tokens``);
        ignored (and logged) while the reader is offline."""
        text = check_id_tag(uid)
        if connector_id is not None:
            self.world.connector(connector_id)
        offline = Fault.READER_OFFLINE in self.world.station_faults or (
            connector_id is not None
            and Fault.READER_OFFLINE in self.world.connector(connector_id).faults
        )
        read_at = time.monotonic()
        where = "station reader" if connector_id is None else f"reader of connector {connector_id}"
        if offline:
            log.warning("token %s ignored: %s is offline", Tag(text), where)
            self._note(f"token {text} ignored ({where} offline)")
            return
        log.info("token %s presented to the %s", Tag(text), where)
        self._note(f"token {text}" + ("" if connector_id is None else f" connector {connector_id}"))
        self._emit(TokenPresented(text, connector_id, read_at))

    def set_fault(self, connector_id: int, fault: Fault, active: bool) -> None:
        """Raise or clear ``fault``; connector 0 takes the station-wide faults only."""
        if connector_id != STATION_ID or isinstance(connector_id, bool):
            self.world.connector(connector_id)
        kind = _fault(fault)
        if not isinstance(active, bool):
            raise ValueError(f"active must be true or false, got {active!r}")
        if connector_id == STATION_ID and kind not in STATION_FAULTS:
            allowed = ", ".join(sorted(f.value for f in STATION_FAULTS))
            raise ValueError(f"fault {kind.value} needs a connector 1..N (station: {allowed})")
        if not self.world.set_fault(connector_id, kind, active):
            return
        word = "raised" if active else "cleared"
        level = logging.WARNING if active else logging.INFO
        log.log(level, "connector %d fault %s %s", connector_id, kind.value, word)
        self._note(f"connector {connector_id} fault {kind.value} {word}")
        self._emit(FaultChanged(connector_id, kind, active))

    def _emit(self, event: HalEvent) -> None:
        """Report what happened; the emulated plant overrides this (its drivers report)."""
        self._events.put_nowait(event)

    def _note(self, text: str) -> None:
        self.world.record(self.history, text)
