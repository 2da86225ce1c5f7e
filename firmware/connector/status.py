"""Connector status as a pure function of what the connector knows.

Kept free of I/O so it can be tested with a scenario table; the controller
calls it after every event and reports a change by StatusNotification.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal.interfaces import Fault, PilotState

# errorCode for each hardware fault (OCPP16.md table).
FAULT_ERROR_CODE: dict[Fault, str] = {
    Fault.CONTACTOR_WELDED: "PowerSwitchFailure",
    Fault.CONTACTOR_FAILED_TO_CLOSE: "PowerSwitchFailure",
    Fault.RCD_TRIP: "GroundFailure",
    Fault.DIODE_FAULT: "EVCommunicationError",
    Fault.EV_COMMUNICATION_LOST: "EVCommunicationError",
    Fault.OVERCURRENT: "OverCurrentFailure",
    Fault.LOCK_FAILURE: "ConnectorLockFailure",
    Fault.OVER_TEMPERATURE: "HighTemperature",
    Fault.EMERGENCY_STOP: "OtherError",
    Fault.METER_OFFLINE: "PowerMeterFailure",
    Fault.READER_OFFLINE: "ReaderFailure",
    Fault.TAMPER: "OtherError",  # OCPP 1.6 has no code of its own for it
}

# Most severe first: the errorCode reported when several faults are active.
SEVERITY: tuple[Fault, ...] = (
    Fault.CONTACTOR_WELDED,
    Fault.CONTACTOR_FAILED_TO_CLOSE,
    Fault.RCD_TRIP,
    Fault.EMERGENCY_STOP,
    Fault.DIODE_FAULT,
    Fault.EV_COMMUNICATION_LOST,
    Fault.OVERCURRENT,
    Fault.LOCK_FAILURE,
    Fault.OVER_TEMPERATURE,
    Fault.METER_OFFLINE,
    Fault.READER_OFFLINE,
    Fault.TAMPER,
)

# Faults that prevent charging: the connector is Faulted while one is active.
# A missing meter or reader is reported but does not by itself fault the
# connector (the meter failure suspends energy instead). Tamper is reported
# (and raised as a security event) while charging goes on: see README, Tamper.
FATAL: frozenset[Fault] = frozenset(SEVERITY) - {
    Fault.METER_OFFLINE,
    Fault.READER_OFFLINE,
    Fault.TAMPER,
}

VENDOR_ERROR_CODE: dict[Fault, str] = {
    Fault.EMERGENCY_STOP: "EmergencyStop",
    Fault.TAMPER: "Tamper",
}


@dataclass(frozen=True, slots=True)
class StatusInputs:
    """Everything the status of a connector (1..N) depends on."""

    operative: bool
    pilot: PilotState
    faults: frozenset[Fault] = frozenset()
    transaction: bool = False
    authorized: bool = False  # a valid authorization waits for the vehicle
    energy_allowed: bool = False  # the transaction may draw energy now
    limit_ok: bool = True  # the current limit allows at least 6 A
    relay_closed: bool = False
    ev_drawing: bool = False
    finishing: bool = False
    reserved: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    status: str
    error_code: str = "NoError"
    vendor_error_code: str | None = None


def worst_fault(faults: frozenset[Fault]) -> Fault | None:
    for fault in SEVERITY:
        if fault in faults:
            return fault
    return None


def error_of(faults: frozenset[Fault], pilot: PilotState) -> tuple[str, str | None]:
    fault = worst_fault(faults)
    if fault is not None and (fault in FATAL or not pilot.is_error):
        return FAULT_ERROR_CODE[fault], VENDOR_ERROR_CODE.get(fault)
    if pilot.is_error:
        return "EVCommunicationError", None
    return "NoError", None


def is_faulted(faults: frozenset[Fault], pilot: PilotState) -> bool:
    return bool(faults & FATAL) or pilot.is_error


def derive_status(s: StatusInputs) -> Status:
    error, vendor = error_of(s.faults, s.pilot)
    if is_faulted(s.faults, s.pilot):
        return Status("Faulted", error, vendor)
    if s.transaction:
        if not s.energy_allowed or not s.limit_ok or Fault.METER_OFFLINE in s.faults:
            status = "SuspendedEVSE"
        elif s.relay_closed and s.pilot.requests_energy:
            status = "Charging" if s.ev_drawing else "SuspendedEV"
        elif s.pilot.requests_energy:
            status = "SuspendedEVSE"  # EV asks, contactor not (yet) closed
        else:
            status = "SuspendedEV"  # EV in B (paused) or unplugged with the session kept
        return Status(status, error, vendor)
    if not s.operative:
        return Status("Unavailable", error, vendor)
    if s.finishing and s.pilot.plugged:
        return Status("Finishing", error, vendor)
    if s.pilot.plugged or s.authorized:
        return Status("Preparing", error, vendor)
    if s.reserved:
        return Status("Reserved", error, vendor)
    return Status("Available", error, vendor)


def derive_station_status(operative: bool, faults: frozenset[Fault]) -> Status:
    """Connector 0: Available, Unavailable or Faulted only."""
    error, vendor = error_of(faults, PilotState.A)
    if faults & FATAL:
        return Status("Faulted", error, vendor)
    return Status("Available" if operative else "Unavailable", error, vendor)
