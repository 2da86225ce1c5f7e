"""TriggerMessage: which requests are Accepted and which Rejected."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from firmware.ocpp import frames
from firmware.ocpp.v16.remote_trigger import TriggerHandlers

MESSAGES = [
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
]


def handlers(connectors: int = 2) -> TriggerHandlers:
    station = SimpleNamespace(connectors={n: object() for n in range(1, connectors + 1)})
    return TriggerHandlers(station, None, None)  # type: ignore[arg-type]


CASES: list[tuple[str, int | None, str]] = [
    *((m, None, "Accepted") for m in MESSAGES),
    *((m, 1, "Accepted") for m in MESSAGES),
    *((m, 2, "Accepted") for m in MESSAGES),
    *((m, 3, "Rejected") for m in MESSAGES),
    *((m, -1, "Rejected") for m in MESSAGES),
    ("StatusNotification", 0, "Accepted"),
    ("Heartbeat", 0, "Accepted"),
    ("MeterValues", 0, "Rejected"),  # connector 0 is the main meter: there is none
]


@pytest.mark.parametrize(("requested", "connector", "status"), CASES)
async def test_answer(requested: str, connector: int | None, status: str) -> None:
    req: dict[str, Any] = {"requestedMessage": requested}
    if connector is not None:
        req["connectorId"] = connector
    frames.validate_call("TriggerMessage", req)
    reply = await handlers().trigger_message(req)
    assert reply.payload == {"status": status}
    frames.validate_result("TriggerMessage", reply.payload)
    # Only an Accepted trigger sends anything, and only after the answer.
    assert (reply.after is not None) == (status == "Accepted")
    if reply.after is not None:
        reply.after().close()  # not run here: the sending is tested end to end


def test_providers_are_replaceable() -> None:
    trigger = handlers()
    assert (trigger.diagnostics_status(), trigger.firmware_status()) == ("Idle", "Idle")
    trigger.firmware_status = lambda: "Downloading"
    assert trigger.firmware_status() == "Downloading"
    custom = TriggerHandlers(
        SimpleNamespace(connectors={}),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        diagnostics_status=lambda: "Uploading",
    )
    assert custom.diagnostics_status() == "Uploading"
