"""The daemon with ``ocpp.version: "2.0.1"`` against the bench CSMS speaking 2.0.1.

Every frame is checked against the OCA 2.0.1 schemas by the bench (the fixture
asserts no violations). Marked ``emulated``: these run on the simulated plant and
again on the emulated devices through the real drivers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hil.csms import BenchCsms
from tests.integration.harness import Daemon, wait_until

MakeDaemon = Callable[..., Awaitable[Daemon]]
TAG = "AABBCCDD"


async def daemon_201(csms: BenchCsms, make_daemon: MakeDaemon, **overrides: Any) -> Daemon:
    csms.versions = ["2.0.1"]
    ocpp = {"version": "2.0.1", **overrides.pop("ocpp", {})}
    return await make_daemon(ocpp=ocpp, **overrides)


def events(d: Daemon, since: int = 0) -> list[tuple[str, int, str]]:
    return [
        (e["eventType"], e["seqNo"], e["triggerReason"])
        for e in d.log.calls("TransactionEvent")[since:]
    ]


@pytest.mark.emulated
async def test_boot_status_and_a_tap_to_charge_session(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await daemon_201(csms, make_daemon)
    assert d.log.versions == ["2.0.1"]
    boot = d.log.calls("BootNotification")[0]
    assert boot["reason"] == "PowerUp"
    assert set(boot["chargingStation"]) >= {"model", "vendorName"}
    status = await d.get("/status")
    assert status["ocpp"]["version"] == "2.0.1"
    assert status["ocpp"]["registration"] == "Accepted"
    await d.log.wait_for(
        "StatusNotification", lambda p: p["evseId"] == 1 and p["connectorStatus"] == "Available"
    )
    await d.sim(cp_state="B")
    await d.tap(TAG)
    assert (await d.log.wait_for("Authorize"))["idToken"]["idToken"] == TAG
    started = await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Started")
    await d.sim(cp_state="C")
    await d.wait_connector(lambda c: c["relay_closed"] and c["status"] == "Charging")
    assert started["evse"] == {"id": 1, "connectorId": 1}
    assert started["idToken"]["idToken"] == TAG
    await d.log.wait_for(
        "StatusNotification", lambda p: p["evseId"] == 1 and p["connectorStatus"] == "Occupied"
    )
    await d.tap(TAG)  # the same card ends it
    ended = await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["triggerReason"] == "StopAuthorized"
    tx_ids = {e["transactionInfo"]["transactionId"] for e in d.log.calls("TransactionEvent")}
    assert tx_ids == {started["transactionInfo"]["transactionId"]}
    seq = [e["seqNo"] for e in d.log.calls("TransactionEvent")]
    assert seq == list(range(len(seq)))
    await d.wait_connector(lambda c: not c["relay_closed"])


async def test_variables_and_a_base_report_through_the_daemon(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await daemon_201(
        csms,
        make_daemon,
        device_model={"DeviceDataCtrlr": {"ItemsPerMessage[GetReport]": 10}},
    )
    answer = await d.log.call(
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "attributeValue": "1",
                },
                {"component": {"name": "Nope"}, "variable": {"name": "X"}, "attributeValue": "1"},
            ]
        },
    )
    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == [
        "Accepted",
        "UnknownComponent",
    ]
    mark = d.log.mark()
    await d.log.wait_for("Heartbeat", since=mark, timeout=5)  # applies at once
    answer = await d.log.call("GetBaseReport", {"requestId": 3, "reportBase": "SummaryInventory"})
    assert answer == {"status": "Accepted"}
    await d.log.wait_for("NotifyReport", lambda p: not p.get("tbc", False))
    # Kept across a restart (HeartbeatInterval is the boot answer's again, B01).
    threshold = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}
    answer = await d.log.call(
        "SetVariables", {"setVariableData": [{**threshold, "attributeValue": "77"}]}
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert await d.stop() == 0
    await d.start()
    answer = await d.log.call("GetVariables", {"getVariableData": [threshold]})
    assert answer["getVariableResult"][0]["attributeValue"] == "77"
    boots = d.log.calls("BootNotification")
    assert boots[-1]["reason"] == "LocalReset"  # the previous run stopped in good order


async def test_remote_start_stop_and_reset(csms: BenchCsms, make_daemon: MakeDaemon) -> None:
    d = await daemon_201(csms, make_daemon)
    answer = await d.log.call(
        "RequestStartTransaction",
        {"evseId": 1, "remoteStartId": 7, "idToken": {"idToken": TAG, "type": "Central"}},
    )
    assert answer == {"status": "Accepted"}
    await d.sim(cp_state="C")
    started = await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Started")
    assert started["transactionInfo"]["remoteStartId"] == 7
    assert started["triggerReason"] == "RemoteStart"
    await d.wait_connector(lambda c: c["relay_closed"])
    # Reset OnIdle while charging: Scheduled; the station restarts once the session ends.
    assert await d.log.call("Reset", {"type": "OnIdle"}) == {"status": "Scheduled"}
    tx_id = started["transactionInfo"]["transactionId"]
    assert await d.log.call("RequestStopTransaction", {"transactionId": tx_id}) == {
        "status": "Accepted"
    }
    ended = await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    await wait_until(lambda: len(d.log.calls("BootNotification")) >= 2, 30, "the reset's boot")
    assert d.log.calls("BootNotification")[-1]["reason"] == "RemoteReset"


async def test_auto_still_speaks_16_only(csms: BenchCsms, make_daemon: MakeDaemon) -> None:
    csms.versions = ["2.0.1", "1.6"]
    d = await make_daemon(wait_boot=False, ocpp={"version": "auto"})
    await d.wait_log(
        r"ERROR .*the CSMS selected OCPP 2\.0\.1, and ocpp\.version auto runs the OCPP 1\.6 "
        r"front-end: closing the connection; retrying in"
    )
    assert d.log.calls() == []
