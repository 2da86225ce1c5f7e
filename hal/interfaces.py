"""Typed interfaces for every hardware role.

The firmware talks to hardware only through these protocols. A backend
(simulated, emulated, hardware) builds one ``Hal`` bundle; the firmware never
imports a backend module directly (see ``hal.registry``).

Units are in the names: ``current_a`` is amperes, ``energy_wh`` watt-hours,
``power_w`` watts, ``voltage_v`` volts. Every method that touches hardware may
raise a subclass of ``hal.errors.HalError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class PilotState(StrEnum):
    """IEC 61851-1 control pilot state as seen by the EVSE."""

    A = "A"  # no vehicle
    B = "B"  # vehicle connected, not ready
    C = "C"  # vehicle requests energy
    D = "D"  # vehicle requests energy, ventilation required
    E = "E"  # CP shorted to PE / supply problem
    F = "F"  # EVSE not available / error

    @property
    def plugged(self) -> bool:
        return self in (PilotState.B, PilotState.C, PilotState.D)

    @property
    def requests_energy(self) -> bool:
        return self in (PilotState.C, PilotState.D)

    @property
    def is_error(self) -> bool:
        return self in (PilotState.E, PilotState.F)


class Fault(StrEnum):
    """Hardware conditions a backend can report (and the simulator can inject)."""

    CONTACTOR_WELDED = "contactor_welded"
    CONTACTOR_FAILED_TO_CLOSE = "contactor_failed_to_close"
    LOCK_FAILURE = "lock_failure"
    RCD_TRIP = "rcd_trip"
    METER_OFFLINE = "meter_offline"
    READER_OFFLINE = "reader_offline"
    OVERCURRENT = "overcurrent"
    DIODE_FAULT = "diode_fault"
    EV_COMMUNICATION_LOST = "ev_communication_lost"
    EMERGENCY_STOP = "emergency_stop"
    OVER_TEMPERATURE = "over_temperature"
    TAMPER = "tamper"  # station wide: the enclosure was opened (a security event)


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One coherent reading of a connector's energy meter.

    ``current_a`` and ``voltage_v`` are per phase (L1, L2, L3); a single-phase
    meter reports zeros for the phases it does not have.
    """

    energy_wh: float
    power_w: float
    current_a: tuple[float, float, float]
    voltage_v: tuple[float, float, float]
    frequency_hz: float | None = None
    temperature_c: float | None = None


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class PilotChanged:
    """The control pilot of ``connector_id`` moved to ``state``."""

    connector_id: int
    state: PilotState


@dataclass(frozen=True, slots=True)
class FaultChanged:
    """A hardware fault became active or cleared. Connector 0 = station wide."""

    connector_id: int
    fault: Fault
    active: bool


@dataclass(frozen=True, slots=True)
class TokenPresented:
    """An identification token was read; ``uid`` is the idTag it presents.

    ``uid`` is 1 to 20 printable ASCII characters (``hal.tokens``), exactly as
    the reader delivered it: card readers that see a chip UID (PN532,
    RDM6300) give it as upper-case hex, readers that deliver text (a line
    reader, a keypad, a QR reader) give their text unchanged, so case and
    punctuation are kept. The firmware compares idTags case-insensitively.
    It is personal data: log it wrapped in ``hal.tokens.Tag``.

    ``connector_id`` is set when the reader belongs to one connector, None for
    a station-wide reader. ``read_at`` is the ``time.monotonic()`` instant the
    reader driver read the UID, where the tap-to-energize latency starts; two
    events compare equal without it.
    """

    uid: str
    connector_id: int | None = None
    read_at: float = field(default_factory=time.monotonic, compare=False)


HalEvent = PilotChanged | FaultChanged | TokenPresented


# ---------------------------------------------------------------- roles


@runtime_checkable
class Relay(Protocol):
    """Main contactor of one connector, with auxiliary-contact feedback."""

    async def close(self) -> None:
        """Energize the coil and verify by feedback.

        Raises ``RelayError`` when the contactor does not close (the coil is
        released again before raising) or when it is known to be welded and
        must not be used.
        """

    async def open(self) -> None:
        """De-energize the coil and verify by feedback.

        The coil is always released, even when verification then fails with
        ``RelayError`` (welded contact).
        """

    @property
    def commanded_closed(self) -> bool:
        """Whether the coil is driven now (True = closed).

        Drops to False when the hardware releases the coil on its own (RCD
        trip, safe state), so the firmware never believes a tripped relay is
        still closed.
        """

    @property
    def feedback_closed(self) -> bool | None:
        """Auxiliary contact reading; None when the relay has no feedback."""


@runtime_checkable
class ConnectorLock(Protocol):
    """Motorised cable lock of a socket outlet."""

    async def lock(self) -> None:
        """Drive the lock and verify; raises ``LockError`` on failure."""

    async def unlock(self) -> None:
        """Drive the unlock and verify; raises ``LockError`` on failure."""

    @property
    def locked(self) -> bool:
        """Feedback: True when the cable is locked."""


@runtime_checkable
class EvseController(Protocol):
    """Control pilot / proximity pilot side of one connector."""

    @property
    def pilot(self) -> PilotState:
        """Current pilot state."""

    @property
    def cable_rating_a(self) -> float | None:
        """Current rating of the plugged cable from the PP resistor, None if unknown/fixed."""

    @property
    def offered_current_a(self) -> float:
        """Current offered to the EV via PWM; 0 means no PWM (not offering)."""

    async def offer_current(self, current_a: float) -> None:
        """Offer ``current_a`` to the EV (PWM duty per IEC 61851); 0 stops offering.

        Values between 0 and 6 A, above 80 A, negative or NaN are invalid
        (raise ``ValueError``).
        """


@runtime_checkable
class EnergyMeter(Protocol):
    """Energy meter of one connector."""

    async def read(self) -> MeterReading:
        """Read the meter; raises ``MeterError`` when it does not answer."""


@runtime_checkable
class Bms(Protocol):
    """Vehicle battery management data (DC, or AC via ISO 15118 / simulation)."""

    @property
    def soc_percent(self) -> float | None:
        """State of charge, None while unknown (no vehicle or not reported)."""


@runtime_checkable
class PlantControl(Protocol):
    """Drives the simulated or emulated plant (the far side of the hardware).

    Used by the local API's ``/api/v1/sim/...`` routes and by tests. Raises
    ``KeyError`` for an unknown connector and ``ValueError`` for a bad value.
    """

    def set_ev(
        self,
        connector_id: int,
        *,
        cp_state: PilotState | None = None,
        ev_max_current_a: float | None = None,
        soc: float | None = None,
    ) -> None: ...

    def present_token(self, uid: str, connector_id: int | None = None) -> None: ...

    def set_fault(self, connector_id: int, fault: Fault, active: bool) -> None: ...


@dataclass(slots=True)
class ConnectorHardware:
    """Everything one connector is made of."""

    connector_id: int
    relay: Relay
    evse: EvseController
    meter: EnergyMeter
    lock: ConnectorLock | None = None  # None: fixed cable, no lock
    bms: Bms | None = None


class HalBackend(Protocol):
    """What a backend's ``build()`` returns: the bundle plus its life cycle."""

    @property
    def connectors(self) -> Mapping[int, ConnectorHardware]: ...

    @property
    def events(self) -> asyncio.Queue[HalEvent]: ...

    @property
    def plant(self) -> PlantControl | None:
        """The plant driver for simulated/emulated backends, None on real hardware."""

    async def run(self) -> None:
        """Run the backend's background work until cancelled (polling, physics).

        Ports and buses the backend opened are released when it is cancelled.
        """

    async def safe_state(self) -> None:
        """Open every relay and stop offering current. Must not raise."""


@dataclass(frozen=True, slots=True)
class BoardSettings:
    """Electrical facts of the station that every backend needs."""

    max_current_a: float = 32.0
    phases: int = 3
    nominal_voltage_v: float = 230.0
    has_lock: bool = True
    has_bms: bool = True
    options: Mapping[str, object] = field(default_factory=dict)
