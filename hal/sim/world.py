"""The simulated plant: one coherent physical model behind every simulated device.

Each connector has a vehicle (pilot state, maximum current, battery), a
contactor (coil and contacts), a pilot PWM offer, a cable lock and an energy
meter. Every change of state first integrates the physics up to "now", so the
energy of an interval is always computed with the state that held during it,
whatever the tick of ``SimBackend.run``.

Time is ``clock() + offset``: ``clock`` is injected (``time.monotonic`` by
default) and ``advance(dt_s)`` moves the offset, so tests can move time
deterministically without sleeping.

The world does not validate its inputs; ``SimPlant`` and the devices do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hal.interfaces import BoardSettings, Fault, MeterReading, PilotState

MIN_OFFER_A = 6.0
MAX_CURRENT_A = 80.0
OVERCURRENT_FACTOR = 1.25
FREQUENCY_HZ = 50.0
HISTORY_LIMIT = 1000
STATION_ID = 0

Clock = Callable[[], float]
History = list[tuple[float, str]]


class ManualClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, dt_s: float) -> None:
        if not (dt_s >= 0.0 and math.isfinite(dt_s)):
            raise ValueError(f"dt_s must be a finite number >= 0, got {dt_s!r}")
        self.now_s += dt_s


@dataclass(slots=True)
class ConnectorState:
    """Physical state of one connector and its vehicle, plus device histories."""

    connector_id: int
    ev_max_current_a: float
    cp_state: PilotState = PilotState.A
    soc: float | None = None
    coil: bool = False
    contact: bool = False
    offered_a: float = 0.0
    locked: bool = False
    energy_wh: float = 0.0
    faults: set[Fault] = field(default_factory=set)
    relay_history: History = field(default_factory=list)
    lock_history: History = field(default_factory=list)
    evse_history: History = field(default_factory=list)
    meter_history: History = field(default_factory=list)
    bms_history: History = field(default_factory=list)


class World:
    """Physics of all connectors of one station, advanced by an injected clock."""

    def __init__(
        self,
        connectors: int,
        board: BoardSettings,
        *,
        ev_max_current_a: float = 32.0,
        battery_kwh: float | None = 60.0,
        meter_start_wh: float = 0.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.board = board
        self.battery_wh = None if battery_kwh is None else battery_kwh * 1000.0
        self._clock = clock
        self._offset_s = 0.0
        self._last_s = self.now()
        self._connectors = {
            cid: ConnectorState(cid, ev_max_current_a, energy_wh=meter_start_wh)
            for cid in range(1, connectors + 1)
        }
        self.station_faults: set[Fault] = set()

    # ------------------------------------------------------------ time

    def now(self) -> float:
        """Current simulated monotonic time in seconds."""
        return self._clock() + self._offset_s

    def step(self) -> None:
        """Integrate the physics from the last step up to now."""
        now = self.now()
        dt_s = now - self._last_s
        if dt_s > 0.0:
            for state in self._connectors.values():
                self._integrate(state, dt_s)
        self._last_s = max(self._last_s, now)

    def advance(self, dt_s: float) -> None:
        """Move simulated time forward by ``dt_s`` seconds, integrating on the way."""
        if not (dt_s >= 0.0 and math.isfinite(dt_s)):
            raise ValueError(f"dt_s must be a finite number >= 0, got {dt_s!r}")
        self.step()
        self._offset_s += dt_s
        self.step()

    # ------------------------------------------------------------ lookup

    @property
    def connector_ids(self) -> tuple[int, ...]:
        return tuple(self._connectors)

    def connector(self, connector_id: int) -> ConnectorState:
        """The state of ``connector_id``; ``KeyError`` when there is no such connector."""
        if isinstance(connector_id, bool) or connector_id not in self._connectors:
            raise KeyError(f"no connector {connector_id!r}")
        return self._connectors[connector_id]

    def faults(self, connector_id: int) -> set[Fault]:
        """Active faults of a connector, or of the station for ``STATION_ID``."""
        if connector_id == STATION_ID and not isinstance(connector_id, bool):
            return self.station_faults
        return self.connector(connector_id).faults

    def record(self, history: History, text: str) -> None:
        history.append((self.now(), text))
        if len(history) > HISTORY_LIMIT:
            del history[: len(history) - HISTORY_LIMIT]

    # ------------------------------------------------------------ physics

    def draw_a(self, connector_id: int) -> float:
        """Current the vehicle draws per phase right now."""
        return self._draw_a(self.connector(connector_id))

    def _draw_a(self, state: ConnectorState) -> float:
        if not state.contact or not state.cp_state.requests_energy:
            return 0.0
        if state.offered_a < MIN_OFFER_A or Fault.RCD_TRIP in state.faults:
            return 0.0
        if state.soc is not None and state.soc >= 100.0:
            return 0.0
        if Fault.OVERCURRENT in state.faults:
            return OVERCURRENT_FACTOR * state.offered_a
        return min(state.ev_max_current_a, state.offered_a)

    def _power_w(self, draw_a: float) -> float:
        return draw_a * self.board.nominal_voltage_v * self.board.phases

    def _integrate(self, state: ConnectorState, dt_s: float) -> None:
        energy_wh = self._power_w(self._draw_a(state)) * dt_s / 3600.0
        if energy_wh <= 0.0:
            return
        if state.soc is not None and self.battery_wh is not None:
            room_wh = max(0.0, (100.0 - state.soc) / 100.0 * self.battery_wh)
            if energy_wh >= room_wh:
                energy_wh = room_wh
                state.soc = 100.0
            else:
                state.soc = min(100.0, state.soc + energy_wh / self.battery_wh * 100.0)
        state.energy_wh += energy_wh

    def reading(self, connector_id: int) -> MeterReading:
        """What the connector's meter measures right now (after integrating to now)."""
        self.step()
        state = self.connector(connector_id)
        draw_a = self._draw_a(state)
        present = [phase < self.board.phases for phase in range(3)]
        volts = self.board.nominal_voltage_v
        return MeterReading(
            energy_wh=state.energy_wh,
            power_w=self._power_w(draw_a),
            current_a=(
                draw_a if present[0] else 0.0,
                draw_a if present[1] else 0.0,
                draw_a if present[2] else 0.0,
            ),
            voltage_v=(
                volts if present[0] else 0.0,
                volts if present[1] else 0.0,
                volts if present[2] else 0.0,
            ),
            frequency_hz=FREQUENCY_HZ,
        )

    # ------------------------------------------------------------ vehicle and faults

    def set_cp_state(self, connector_id: int, cp_state: PilotState) -> bool:
        """Move the pilot; unplugging forgets the vehicle's SoC. True when it changed."""
        self.step()
        state = self.connector(connector_id)
        if state.cp_state is cp_state:
            return False
        state.cp_state = cp_state
        if cp_state is PilotState.A and state.soc is not None:
            state.soc = None
            self.record(state.bms_history, "soc None")
        return True

    def set_ev_max_current(self, connector_id: int, current_a: float) -> None:
        self.step()
        self.connector(connector_id).ev_max_current_a = current_a

    def set_soc(self, connector_id: int, soc: float) -> None:
        self.step()
        state = self.connector(connector_id)
        state.soc = soc
        self.record(state.bms_history, f"soc {soc}")

    def set_fault(self, connector_id: int, fault: Fault, active: bool) -> bool:
        """Raise or clear a fault and apply its physical effect. True when it changed."""
        self.step()
        faults = self.faults(connector_id)
        if (fault in faults) == active:
            return False
        if active:
            faults.add(fault)
        else:
            faults.discard(fault)
        if connector_id == STATION_ID:
            return True
        state = self.connector(connector_id)
        if fault is Fault.RCD_TRIP and active and state.coil:
            self.release_coil(connector_id, "open (rcd_trip)")
        elif fault is Fault.CONTACTOR_WELDED:
            state.contact = active or (state.contact and state.coil)
        return True

    # ------------------------------------------------------------ device outputs

    def set_coil(self, connector_id: int, energized: bool) -> None:
        self.step()
        self.connector(connector_id).coil = energized

    def settle_contact(self, connector_id: int) -> None:
        """Let the contacts follow the coil, as far as the faults allow."""
        self.step()
        state = self.connector(connector_id)
        if Fault.CONTACTOR_WELDED in state.faults:
            state.contact = True
        elif not state.coil:
            state.contact = False
        elif Fault.CONTACTOR_FAILED_TO_CLOSE not in state.faults:
            state.contact = True

    def release_coil(self, connector_id: int, note: str) -> None:
        """Release the coil at once (hardware reaction, safe state) and note it."""
        state = self.connector(connector_id)
        self.set_coil(connector_id, False)
        self.settle_contact(connector_id)
        self.record(state.relay_history, note)

    def set_offer(self, connector_id: int, current_a: float) -> None:
        self.step()
        self.connector(connector_id).offered_a = current_a

    def set_locked(self, connector_id: int, locked: bool) -> None:
        self.step()
        self.connector(connector_id).locked = locked
