"""Remote Trigger end to end: TriggerMessage for every requestedMessage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hil.csms import BenchCsms, CallErrorReceived
from tests.integration.harness import Daemon, charge_session_start

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]

MESSAGES = [
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
]


async def settled(d: Daemon, connectors: int = 1) -> None:
    """Boot-time StatusNotifications are all in: later CALLs are the triggered ones."""
    for connector in range(connectors + 1):
        await d.log.wait_for("StatusNotification", lambda p, c=connector: p["connectorId"] == c)


async def trigger(d: Daemon, requested: str, connector: int | None = None) -> tuple[str, int]:
    """Send TriggerMessage; returns its answer and the mark of the CALLs after it."""
    payload: dict[str, Any] = {"requestedMessage": requested}
    if connector is not None:
        payload["connectorId"] = connector
    mark = d.log.mark()
    answer = await d.log.call("TriggerMessage", payload)
    return str(answer["status"]), mark


def frame_index(d: Daemon, kind: int, where: Callable[[list[Any]], bool]) -> int:
    for index in range(len(d.log.frames) - 1, -1, -1):
        message = d.log.frames[index].message
        if message and message[0] == kind and where(message):
            return index
    raise AssertionError("frame not found")


def assert_after_the_conf(d: Daemon, action: str, payload: dict[str, Any]) -> None:
    """The triggered CALL went out after the station's TriggerMessage CALLRESULT."""
    request = frame_index(d, 2, lambda m: m[2] == "TriggerMessage")
    unique_id = d.log.frames[request].message[1]  # type: ignore[index]
    conf = frame_index(d, 3, lambda m: m[1] == unique_id)
    assert d.log.frames[conf].direction == "in"
    sent = frame_index(d, 2, lambda m: m[2] == action and m[3] == payload)
    assert d.log.frames[sent].direction == "in"
    assert sent > conf > request


@pytest.mark.parametrize("connector", [None, 1], ids=["all", "connector-1"])
@pytest.mark.parametrize("requested", MESSAGES)
async def test_every_message_after_the_conf(
    daemon: Daemon, requested: str, connector: int | None
) -> None:
    await settled(daemon)
    status, mark = await trigger(daemon, requested, connector)
    assert status == "Accepted"
    payload = await daemon.log.wait_for(requested, since=mark)
    assert_after_the_conf(daemon, requested, payload)
    if requested == "BootNotification":
        assert payload["chargePointVendor"] == "TestVendor"
        assert payload["chargePointModel"] == "TestModel"
    elif requested in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        assert payload == {"status": "Idle"}
    elif requested == "Heartbeat":
        assert payload == {}
    elif requested == "MeterValues":
        assert payload["connectorId"] == 1 and "transactionId" not in payload
        values = payload["meterValue"][0]["sampledValue"]
        assert {v["context"] for v in values} == {"Trigger"}
        assert [v["measurand"] for v in values] == ["Energy.Active.Import.Register"]
    else:
        first = payload["connectorId"]
        assert first == (0 if connector is None else 1)
        assert payload["status"] == "Available" and payload["errorCode"] == "NoError"


@pytest.mark.parametrize("requested", MESSAGES)
async def test_unknown_connector_rejected(daemon: Daemon, requested: str) -> None:
    await settled(daemon)
    status, _ = await trigger(daemon, requested, 9)
    assert status == "Rejected"


async def test_nothing_is_sent_after_rejected(daemon: Daemon) -> None:
    await settled(daemon)
    status, mark = await trigger(daemon, "StatusNotification", -1)
    assert status == "Rejected"
    status, _ = await trigger(daemon, "MeterValues", 0)  # no main meter
    assert status == "Rejected"
    # Triggered messages go out in order: one sent for a Rejected trigger would
    # come before this Heartbeat.
    status, _ = await trigger(daemon, "Heartbeat")
    assert status == "Accepted"
    await daemon.log.wait_for("Heartbeat", since=mark)
    calls = daemon.log.calls()[mark:]
    assert [a for a in calls if "connectorId" in a] == []  # no StatusNotification, MeterValues


async def test_status_notification_for_every_connector_and_zero(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(connectors=2)
    await settled(d, connectors=2)
    await d.sim(connector=2, cp_state="B")
    await d.wait_status("Preparing", connector=2)
    status, mark = await trigger(d, "StatusNotification")
    assert status == "Accepted"
    seen: dict[int, str] = {}
    for connector in (0, 1, 2):
        payload = await d.log.wait_for(
            "StatusNotification", lambda p, c=connector: p["connectorId"] == c, since=mark
        )
        seen[connector] = payload["status"]
    assert seen == {0: "Available", 1: "Available", 2: "Preparing"}
    status, mark = await trigger(d, "StatusNotification", 0)
    assert status == "Accepted"
    payload = await d.log.wait_for("StatusNotification", since=mark)
    assert payload["connectorId"] == 0


async def test_meter_values_for_every_connector(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        connectors=2,
        ocpp={"config": {"MeterValuesSampledData": "Energy.Active.Import.Register,Voltage"}},
    )
    await settled(d, connectors=2)
    status, mark = await trigger(d, "MeterValues")
    assert status == "Accepted"
    for connector in (1, 2):
        payload = await d.log.wait_for(
            "MeterValues", lambda p, c=connector: p["connectorId"] == c, since=mark
        )
        values = payload["meterValue"][0]["sampledValue"]
        assert {v["context"] for v in values} == {"Trigger"}
        assert {v["measurand"] for v in values} == {"Energy.Active.Import.Register", "Voltage"}


async def test_meter_values_of_a_transaction(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await daemon.wait_connector(lambda c: c["transaction_id"] is not None)
    transaction_id = (await daemon.connector())["transaction_id"]
    status, mark = await trigger(daemon, "MeterValues", 1)
    assert status == "Accepted"
    payload = await daemon.log.wait_for("MeterValues", since=mark)
    assert payload["transactionId"] == transaction_id
    assert payload["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"


async def test_unknown_requested_message_is_a_callerror(daemon: Daemon) -> None:
    with pytest.raises(CallErrorReceived) as err:
        await daemon.log.call("TriggerMessage", {"requestedMessage": "StartTransaction"})
    assert err.value.code == "PropertyConstraintViolation"
    with pytest.raises(CallErrorReceived) as err:
        await daemon.log.call("TriggerMessage", {"connectorId": 1})
    assert err.value.code == "OccurenceConstraintViolation"


async def test_remote_trigger_is_a_supported_profile(daemon: Daemon) -> None:
    answer = await daemon.log.call("GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    profiles = answer["configurationKey"][0]["value"].split(",")
    assert "RemoteTrigger" in profiles and "Core" in profiles


async def test_boot_notification_while_pending(make_daemon: MakeDaemon, csms: BenchCsms) -> None:
    csms.boot_status = "Pending"
    csms.heartbeat_interval = 300  # no retry of its own within the test
    d = await make_daemon()
    await wait_until_registration(d, "Pending")
    csms.boot_status = "Accepted"
    status, mark = await trigger(d, "BootNotification")
    assert status == "Accepted"
    await d.log.wait_for("BootNotification", since=mark, timeout=5)
    await d.log.wait_for("StatusNotification", since=mark, timeout=5)
    await wait_until_registration(d, "Accepted")


async def wait_until_registration(d: Daemon, status: str) -> None:
    for _ in range(200):
        if (await d.get("/status"))["ocpp"]["registration"] == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"registration never became {status}")
