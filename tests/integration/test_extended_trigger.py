"""ExtendedTriggerMessage (Security Whitepaper) end to end: every requestedMessage value."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hil.csms import CallErrorReceived
from tests.integration.harness import Daemon, charge_session_start

MakeDaemon = Callable[..., Awaitable[Daemon]]
TRIGGER = "ExtendedTriggerMessage"
SIGNED = "SignedFirmwareStatusNotification"

SENT = [
    "BootNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "StatusNotification",
]


async def settled(d: Daemon, connectors: int = 1) -> None:
    """Boot-time messages are all in: later CALLs are the triggered ones."""
    for connector in range(connectors + 1):
        await d.log.wait_for("StatusNotification", lambda p, c=connector: p["connectorId"] == c)
    await d.log.wait_for("SecurityEventNotification")
    await d.wait_queue_empty()


async def trigger(d: Daemon, requested: str, connector: int | None = None) -> tuple[str, int]:
    payload: dict[str, Any] = {"requestedMessage": requested}
    if connector is not None:
        payload["connectorId"] = connector
    mark = d.log.mark()
    answer = await d.log.call("ExtendedTriggerMessage", payload)
    return str(answer["status"]), mark


def sent_after_the_conf(d: Daemon, action: str) -> None:
    """The triggered CALL went out after the station's ExtendedTriggerMessage CALLRESULT."""
    frames = d.log.frames
    request = max(i for i, f in enumerate(frames) if f.message and f.message[2:3] == [TRIGGER])
    unique_id = frames[request].message[1]  # type: ignore[index]
    conf = next(
        i
        for i, f in enumerate(frames)
        if i > request and f.message and f.message[:2] == [3, unique_id]
    )
    sent = next(
        i for i, f in enumerate(frames) if i > request and f.message and f.message[2:3] == [action]
    )
    assert frames[conf].direction == frames[sent].direction == "in"
    assert sent > conf


@pytest.mark.parametrize(
    ("requested", "connector"),
    [
        *[(requested, None) for requested in SENT],
        ("MeterValues", 1),
        ("StatusNotification", 1),
    ],
)
async def test_every_message_after_the_conf(
    daemon: Daemon, requested: str, connector: int | None
) -> None:
    await settled(daemon)
    status, mark = await trigger(daemon, requested, connector)
    assert status == "Accepted"
    # The security extension's firmware status is the signed one.
    action = SIGNED if requested == "FirmwareStatusNotification" else requested
    payload = await daemon.log.wait_for(action, since=mark)
    sent_after_the_conf(daemon, action)
    if requested == "BootNotification":
        assert payload["chargePointVendor"] == "TestVendor"
    elif requested == "FirmwareStatusNotification":
        assert payload == {"status": "Idle"}
    elif requested == "LogStatusNotification":
        assert payload == {"status": "Idle"}  # no upload runs: no requestId
    elif requested == "Heartbeat":
        assert payload == {}
    elif requested == "MeterValues":
        assert payload["connectorId"] == 1 and "transactionId" not in payload
        values = payload["meterValue"][0]["sampledValue"]
        assert {v["context"] for v in values} == {"Trigger"}
    else:
        assert payload["connectorId"] == (0 if connector is None else 1)
        assert payload["status"] == "Available"


async def test_sign_charge_point_certificate_sends_a_certificate_request(
    daemon: Daemon,
) -> None:
    await settled(daemon)
    status, mark = await trigger(daemon, "SignChargePointCertificate")
    assert status == "Accepted"
    request = await daemon.log.wait_for("SignCertificate", since=mark)
    assert request["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    sent_after_the_conf(daemon, "SignCertificate")


@pytest.mark.parametrize("requested", ["BootNotification", "MeterValues", "StatusNotification"])
async def test_unknown_connector_rejected(daemon: Daemon, requested: str) -> None:
    await settled(daemon)
    status, _ = await trigger(daemon, requested, 9)
    assert status == "Rejected"


async def test_meter_values_connector_zero_rejected_then_one_of_a_transaction(
    daemon: Daemon,
) -> None:
    await charge_session_start(daemon)
    status, _ = await trigger(daemon, "MeterValues", 0)  # no main meter
    assert status == "Rejected"
    transaction_id = (await daemon.connector())["transaction_id"]
    status, mark = await trigger(daemon, "MeterValues", 1)
    assert status == "Accepted"
    payload = await daemon.log.wait_for("MeterValues", since=mark)
    assert payload["transactionId"] == transaction_id


async def test_status_notification_for_every_connector_and_zero(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(connectors=2)
    await settled(d, connectors=2)
    status, mark = await trigger(d, "StatusNotification")
    assert status == "Accepted"
    for connector in (0, 1, 2):
        await d.log.wait_for(
            "StatusNotification", lambda p, c=connector: p["connectorId"] == c, since=mark
        )


async def test_unknown_requested_message_is_a_callerror(daemon: Daemon) -> None:
    with pytest.raises(CallErrorReceived) as err:
        await daemon.log.call("ExtendedTriggerMessage", {"requestedMessage": "StartTransaction"})
    assert err.value.code == "PropertyConstraintViolation"
