"""What the bench reads from a 2.0.1 station's messages, and what it holds against them.

The end-to-end runs (tests/integration/test_hil_runner.py) show a station that does it
right passing; these show the bench failing one that does not.
"""

from __future__ import annotations

from typing import Any

import pytest

from hil.results import ScenarioFailed
from hil.wire import Session, Status, Stop, wire_for

V201 = wire_for("2.0.1")
TX = "3f9a0c2e-17"


def reading(wh: float, context: str, unit: dict[str, Any] | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"value": wh, "context": context}
    if unit is not None:
        value["unitOfMeasure"] = unit
    return {"timestamp": "2026-01-01T10:00:00Z", "sampledValue": [value]}


def event(kind: str, seq_no: int, trigger: str, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"transactionId": TX, **extra.pop("info", {})}
    return {
        "eventType": kind,
        "timestamp": "2026-01-01T10:00:00Z",
        "triggerReason": trigger,
        "seqNo": seq_no,
        "transactionInfo": info,
        **extra,
    }


STARTED = event(
    "Started",
    0,
    "Authorized",
    evse={"id": 1, "connectorId": 1},
    idToken={"idToken": "04A1B2C3", "type": "ISO14443"},
    meterValue=[reading(1200.0, "Transaction.Begin")],
)
UPDATED = event(
    "Updated",
    1,
    "MeterValuePeriodic",
    meterValue=[reading(1.5, "Sample.Periodic", {"unit": "kWh"})],
)
ENDED = event(
    "Ended",
    2,
    "StopAuthorized",
    info={"stoppedReason": "Local"},
    idToken={"idToken": "04A1B2C3", "type": "ISO14443"},
    meterValue=[reading(16.0, "Transaction.End", {"unit": "Wh", "multiplier": 2})],
)


def session() -> Session:
    return V201.session(STARTED, TX)


def test_a_session_and_its_stop_in_the_benchs_words() -> None:
    s = session()
    assert (s.transaction_id, s.id_tag, s.connector, s.meter_start) == (TX, "04A1B2C3", 1, 1200.0)
    assert V201.sample_energy(UPDATED, s) == 1500.0  # kWh
    stop = V201.stop(ENDED)
    assert (stop.reason, stop.meter_stop, stop.id_tag) == ("Local", 1600.0, "04A1B2C3")
    assert V201.stop_problems([STARTED, UPDATED, ENDED], s, stop) == []
    # A resend after a lost answer repeats a seqNo: that is not a gap.
    assert V201.stop_problems([STARTED, UPDATED, UPDATED, ENDED], s, stop) == []


@pytest.mark.parametrize(
    ("sent", "ended", "problem"),
    [
        ([STARTED, ENDED, UPDATED], ENDED, "Ended has seqNo 2, not the last of [0, 2, 1]"),
        ([STARTED, ENDED], ENDED, "seqNo of the transaction's events, in arrival order: [0, 2]"),
        (
            [STARTED, UPDATED, {**ENDED, "triggerReason": "EVCommunicationLost"}],
            {**ENDED, "triggerReason": "EVCommunicationLost"},
            "Ended (Local) with triggerReason EVCommunicationLost, not StopAuthorized",
        ),
        (
            [UPDATED, STARTED, ENDED],
            ENDED,
            "the transaction's events: ['Updated', 'Started', 'Ended']",
        ),
    ],
)
def test_a_transaction_reported_out_of_order_or_with_the_wrong_trigger_fails(
    sent: list[dict[str, Any]], ended: dict[str, Any], problem: str
) -> None:
    assert problem in V201.stop_problems(sent, session(), V201.stop(ended))


def test_starts_remote_or_offline_must_say_so() -> None:
    assert V201.start_problems(session(), remote_start_id=None) == []
    assert V201.start_problems(session(), remote_start_id=7) == [
        "Started with triggerReason Authorized, not RemoteStart",
        "Started with remoteStartId None, not 7",
    ]
    remote = V201.session(
        {
            **STARTED,
            "triggerReason": "RemoteStart",
            "transactionInfo": {"transactionId": TX, "remoteStartId": 7},
        },
        TX,
    )
    assert V201.start_problems(remote, remote_start_id=7) == []
    stop = V201.stop({**ENDED, "offline": True})
    assert V201.offline_problems(session(), stop) == [
        "Started event of a session run offline without offline=true"
    ]


def test_readings_the_bench_needs_are_required() -> None:
    with pytest.raises(
        ScenarioFailed, match=r"Started without an Energy\.Active\.Import\.Register"
    ):
        V201.session({**STARTED, "meterValue": []}, TX)
    with pytest.raises(ScenarioFailed, match=r"Ended without an Energy\.Active\.Import\.Register"):
        power = {"value": 7400.0, "measurand": "Power.Active.Import"}
        V201.stop({**ENDED, "meterValue": [{"timestamp": "x", "sampledValue": [power]}]})


def test_statuses_2_0_1_cannot_tell_apart() -> None:
    status = V201.status(
        {"timestamp": "x", "connectorStatus": "Occupied", "evseId": 2, "connectorId": 1}
    )
    assert status == Status(2, "Occupied", None, status.payload) and str(status) == "Occupied"
    assert V201.status({**status.payload, "connectorId": 2}).connector is None
    assert [V201.status_word(s) for s in ("Preparing", "Charging", "Finishing")] == ["Occupied"] * 3
    assert V201.silent("SuspendedEVSE") and not V201.silent("Faulted")
    assert (V201.contactor_in("Charging"), V201.contactor_in("SuspendedEVSE")) == (True, False)
    assert V201.contactor_in("Finishing") is None
    assert not V201.authorizes({"idToken": {"idToken": "04A1B2C3", "type": "Central"}}, "04A1B2C3")


def test_a_1_6_stop_without_reason_is_local() -> None:
    stop = wire_for("1.6").stop(
        {"transactionId": 3, "meterStop": 42, "timestamp": "2026-01-01T10:00:00Z"}
    )
    assert stop == Stop(stop.payload, "Local", 42.0, None, "2026-01-01T10:00:00Z")
    with pytest.raises(ValueError, match=r"not '2\.1'"):
        wire_for("2.1")
