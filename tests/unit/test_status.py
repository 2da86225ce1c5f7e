"""The connector status table (OCPP16.md) as scenario vectors."""

from __future__ import annotations

import pytest

from firmware.connector.status import (
    Status,
    StatusInputs,
    derive_station_status,
    derive_status,
)
from hal.interfaces import Fault, PilotState

A, B, C, D, E, F = (PilotState(x) for x in "ABCDEF")
TX = {"transaction": True, "energy_allowed": True}

VECTORS: list[tuple[str, StatusInputs, Status]] = [
    ("idle", StatusInputs(True, A), Status("Available")),
    ("plugged, no auth", StatusInputs(True, B), Status("Preparing")),
    ("tag presented first", StatusInputs(True, A, authorized=True), Status("Preparing")),
    (
        "charging",
        StatusInputs(True, C, relay_closed=True, ev_drawing=True, **TX),
        Status("Charging"),
    ),
    (
        "charging with ventilation",
        StatusInputs(True, D, relay_closed=True, ev_drawing=True, **TX),
        Status("Charging"),
    ),
    ("EV paused (B)", StatusInputs(True, B, **TX), Status("SuspendedEV")),
    ("EV draws nothing", StatusInputs(True, C, relay_closed=True, **TX), Status("SuspendedEV")),
    ("0 A limit", StatusInputs(True, C, limit_ok=False, **TX), Status("SuspendedEVSE")),
    ("invalid id withheld", StatusInputs(True, C, transaction=True), Status("SuspendedEVSE")),
    (
        "meter offline in tx",
        StatusInputs(True, C, faults=frozenset({Fault.METER_OFFLINE}), **TX),
        Status("SuspendedEVSE", "PowerMeterFailure"),
    ),
    ("finishing", StatusInputs(True, B, finishing=True), Status("Finishing")),
    ("unplugged after finishing", StatusInputs(True, A, finishing=True), Status("Available")),
    ("inoperative", StatusInputs(False, A), Status("Unavailable")),
    (
        "inoperative keeps tx",
        StatusInputs(False, C, relay_closed=True, ev_drawing=True, **TX),
        Status("Charging"),
    ),
    (
        "welded",
        StatusInputs(True, A, faults=frozenset({Fault.CONTACTOR_WELDED})),
        Status("Faulted", "PowerSwitchFailure"),
    ),
    (
        "rcd in tx",
        StatusInputs(True, C, faults=frozenset({Fault.RCD_TRIP}), **TX),
        Status("Faulted", "GroundFailure"),
    ),
    (
        "lock",
        StatusInputs(True, B, faults=frozenset({Fault.LOCK_FAILURE})),
        Status("Faulted", "ConnectorLockFailure"),
    ),
    ("pilot E", StatusInputs(True, E), Status("Faulted", "EVCommunicationError")),
    ("pilot F", StatusInputs(True, F), Status("Faulted", "EVCommunicationError")),
    (
        "overcurrent",
        StatusInputs(True, C, faults=frozenset({Fault.OVERCURRENT}), **TX),
        Status("Faulted", "OverCurrentFailure"),
    ),
    (
        "emergency stop",
        StatusInputs(True, A, faults=frozenset({Fault.EMERGENCY_STOP})),
        Status("Faulted", "OtherError", "EmergencyStop"),
    ),
    (
        "reader gone, idle",
        StatusInputs(True, A, faults=frozenset({Fault.READER_OFFLINE})),
        Status("Available", "ReaderFailure"),
    ),
    (
        "worst fault wins",
        StatusInputs(True, A, faults=frozenset({Fault.LOCK_FAILURE, Fault.RCD_TRIP})),
        Status("Faulted", "GroundFailure"),
    ),
    ("reserved", StatusInputs(True, A, reserved=True), Status("Reserved")),
    ("reserved, vehicle plugged", StatusInputs(True, B, reserved=True), Status("Preparing")),
    (
        "reserved, reserved tag presented first",
        StatusInputs(True, A, reserved=True, authorized=True),
        Status("Preparing"),
    ),
    (
        "reserved, faulted",
        StatusInputs(True, A, faults=frozenset({Fault.RCD_TRIP}), reserved=True),
        Status("Faulted", "GroundFailure"),
    ),
    ("reserved, inoperative", StatusInputs(False, A, reserved=True), Status("Unavailable")),
    (
        "reserved, transaction",
        StatusInputs(True, C, relay_closed=True, ev_drawing=True, reserved=True, **TX),
        Status("Charging"),
    ),
]


@pytest.mark.parametrize(("name", "inputs", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_status_table(name: str, inputs: StatusInputs, expected: Status) -> None:
    assert derive_status(inputs) == expected


def test_station_status() -> None:
    assert derive_station_status(True, frozenset()) == Status("Available")
    assert derive_station_status(False, frozenset()) == Status("Unavailable")
    assert derive_station_status(True, frozenset({Fault.READER_OFFLINE})) == Status(
        "Available", "ReaderFailure"
    )
    assert derive_station_status(True, frozenset({Fault.EMERGENCY_STOP})).status == "Faulted"
