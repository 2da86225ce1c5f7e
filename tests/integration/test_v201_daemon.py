"""The daemon with ``ocpp.version: "2.0.1"`` against the bench CSMS speaking 2.0.1.

Every frame is checked against the OCA 2.0.1 schemas by the bench (the fixture
asserts no violations). Marked ``emulated``: these run on the simulated plant and
again on the emulated devices through the real drivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hil.csms import BenchCsms, CallErrorReceived
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
    await d.log.wait_for("Heartbeat", since=mark, timeout=15)  # applies at once
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


async def _offline(d: Daemon) -> None:
    d.csms.refuse = True
    await d.csms.drop(d.cp_id)
    await d.wait_link(False)


@pytest.mark.emulated
async def test_an_offline_session_from_the_local_list_reaches_the_csms_in_order(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await daemon_201(
        csms, make_daemon, device_model={"SampledDataCtrlr": {"TxUpdatedInterval": 1}}
    )
    local = {
        "versionNumber": 5,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idToken": {"idToken": TAG, "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}}
        ],
    }
    assert await d.log.call("SendLocalList", local) == {"status": "Accepted"}
    assert await d.log.call("GetLocalListVersion", {}) == {"versionNumber": 5}
    await _offline(d)
    await d.sim(cp_state="C")
    await d.tap(TAG)  # known from the local list: starts offline (C13/C14)
    await d.wait_connector(lambda c: c["relay_closed"])
    await asyncio.sleep(2.5)  # a few Updated events wait in the queue
    await d.tap("UNKNOWN1")  # offline and unknown: not a stop, not a start (C15)
    await d.tap(TAG)
    await d.wait_connector(lambda c: c["local_transaction_id"] is None)
    assert (await d.get("/status"))["ocpp"]["queued"] >= 3
    d.csms.refuse = False
    await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Ended", timeout=20)
    await d.wait_queue_empty()
    sent = d.log.calls("TransactionEvent")
    assert [e["seqNo"] for e in sent] == list(range(len(sent)))
    assert sent[0]["eventType"] == "Started" and sent[-1]["eventType"] == "Ended"
    assert {e["eventType"] for e in sent[1:-1]} == {"Updated"}
    assert all(e.get("offline") is True for e in sent)
    assert sent[-1]["transactionInfo"]["stoppedReason"] == "Local"
    assert all(a["idToken"]["idToken"] != "UNKNOWN1" for a in d.log.calls("Authorize"))


@pytest.mark.emulated
async def test_a_power_cut_ends_the_session_with_power_loss(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await daemon_201(csms, make_daemon)
    await d.sim(cp_state="C")
    await d.tap(TAG)
    started = await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Started")
    await d.wait_connector(lambda c: c["relay_closed"])
    await d.kill()
    mark = d.log.mark()
    await d.start()
    ended = await d.log.wait_for(
        "TransactionEvent", lambda p: p["eventType"] == "Ended", since=mark
    )
    assert ended["transactionInfo"]["transactionId"] == started["transactionInfo"]["transactionId"]
    assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert ended["seqNo"] > started["seqNo"]
    boot = d.log.calls("BootNotification")[-1]
    assert boot["reason"] == "PowerUp"  # the previous run never shut down
    # The critical security events went out as 2.0.1 SecurityEventNotifications (A04).
    await d.wait_queue_empty()
    types = {e["type"] for e in d.log.calls("SecurityEventNotification")}
    assert {"StartupOfTheDevice", "ResetOrReboot"} <= types
    c = await d.connector()
    assert c["relay_closed"] is False


async def test_trigger_message_and_unlock(csms: BenchCsms, make_daemon: MakeDaemon) -> None:
    d = await daemon_201(csms, make_daemon)
    mark = d.mark()
    status = {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}}
    assert await d.log.call("TriggerMessage", status) == {"status": "Accepted"}
    await d.log.wait_for("StatusNotification", since=mark)
    assert await d.log.call(
        "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 1}}
    ) == {"status": "Rejected"}
    assert await d.log.call("TriggerMessage", {"requestedMessage": "MeterValues"}) == {
        "status": "Accepted"
    }
    values = await d.log.wait_for("MeterValues", since=mark)
    assert values["evseId"] == 1
    assert values["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    assert await d.log.call("TriggerMessage", {"requestedMessage": "TransactionEvent"}) == {
        "status": "Rejected"  # no transaction
    }
    for idle in ("LogStatusNotification", "FirmwareStatusNotification"):
        assert await d.log.call("TriggerMessage", {"requestedMessage": idle}) == {
            "status": "Accepted"
        }
        assert (await d.log.wait_for(idle, since=mark)) == {"status": "Idle"}
    assert await d.log.call("TriggerMessage", {"requestedMessage": "SignV2GCertificate"}) == {
        "status": "NotImplemented"  # no ISO 15118 here
    }
    assert await d.log.call("TriggerMessage", {"requestedMessage": "BootNotification"}) == {
        "status": "Accepted"
    }
    boot = await d.log.wait_for("BootNotification", since=mark)
    assert boot["reason"] == "Triggered"
    await d.sim(cp_state="C")
    await d.tap(TAG)
    await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Started")
    assert await d.log.call(
        "TriggerMessage", {"requestedMessage": "TransactionEvent", "evse": {"id": 1}}
    ) == {"status": "Accepted"}
    triggered = await d.log.wait_for("TransactionEvent", lambda p: p["triggerReason"] == "Trigger")
    assert triggered["eventType"] == "Updated"
    # An EVSE reset ends its session (B12).
    assert await d.log.call("Reset", {"type": "Immediate", "evseId": 1}) == {"status": "Accepted"}
    ended = await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    assert await d.log.call("Reset", {"type": "Immediate", "evseId": 4}) == {"status": "Rejected"}
    assert len(d.log.calls("BootNotification")) == 2  # the EVSE reset restarted nothing


async def test_requests_2_0_1_does_not_offer_here_are_not_supported(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await daemon_201(csms, make_daemon)
    for action, payload in (
        ("GetLog", {"logType": "DiagnosticsLog", "requestId": 1, "log": {"remoteLocation": "x"}}),
        (
            "ReserveNow",
            {
                "id": 1,
                "expiryDateTime": "2030-01-01T00:00:00Z",
                "idToken": {"idToken": TAG, "type": "ISO14443"},
            },
        ),
    ):
        with pytest.raises(CallErrorReceived) as caught:
            await d.log.call(action, payload)
        assert caught.value.code == "NotSupported", action


async def test_a_new_basic_auth_password_is_used_on_the_next_connection(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    old, new = "0123456789abcdef", "fedcba9876543210"
    csms.passwords["CP-1"] = old
    d = await daemon_201(csms, make_daemon, ocpp={"password": old})
    assert d.log.basic_auth[-1] == ("CP-1", old)
    csms.passwords["CP-1"] = new
    answer = await d.log.call(
        "SetVariables",
        {
            "setVariableData": [
                {
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                    "attributeValue": new,
                }
            ]
        },
    )
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    await wait_until(lambda: d.log.connections >= 2 and d.log.connected, 15, "the reconnect")
    assert d.log.basic_auth[-1] == ("CP-1", new)
    assert new not in d.log_path.read_text()  # a secret, never logged


async def test_clock_aligned_meter_values_outside_a_transaction(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await daemon_201(csms, make_daemon, device_model={"AlignedDataCtrlr": {"Interval": 1}})
    await d.sim(cp_state="B")
    values = await d.log.wait_for("MeterValues", timeout=15)
    assert values["evseId"] == 1
    sampled = values["meterValue"][0]["sampledValue"][0]
    assert sampled["context"] == "Sample.Clock"
    assert sampled["measurand"] == "Energy.Active.Import.Register"


@pytest.mark.emulated
async def test_a_lock_failure_is_a_faulted_connector_and_a_problem_event(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await daemon_201(csms, make_daemon)
    await d.sim(cp_state="C")
    await d.tap(TAG)
    await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Started")
    await d.wait_connector(lambda c: c["relay_closed"])
    await d.fault("lock_failure")
    await d.tap(TAG)  # the stop cannot unlock the cable
    await d.log.wait_for(
        "StatusNotification", lambda p: p["evseId"] == 1 and p["connectorStatus"] == "Faulted"
    )

    def problem(name: str, value: str) -> Callable[[dict[str, Any]], bool]:
        def matches(p: dict[str, Any]) -> bool:
            event = p["eventData"][0]
            return bool(event["component"]["name"] == name and event["actualValue"] == value)

        return matches

    lock = await d.log.wait_for("NotifyEvent", problem("ConnectorPlugRetentionLock", "true"))
    event = lock["eventData"][0]
    assert event["component"]["evse"] == {"id": 1, "connectorId": 1}
    assert (event["variable"], event["trigger"]) == ({"name": "Problem"}, "Delta")
    await d.log.wait_for("NotifyEvent", problem("Connector", "true"))
    # A SummaryInventory report shows the problem and the states as they are now.
    assert await d.log.call(
        "GetBaseReport", {"requestId": 8, "reportBase": "SummaryInventory"}
    ) == {"status": "Accepted"}
    report = await d.log.wait_for("NotifyReport", lambda p: p["requestId"] == 8)
    values = {
        (e["component"]["name"], e["variable"]["name"]): e["variableAttribute"][0]["value"]
        for e in report["reportData"]
    }
    assert values[("Connector", "AvailabilityState")] == "Faulted"
    assert values[("Connector", "Problem")] == "true"
    await d.fault("lock_failure", active=False)
    # A lock driver learns that the lock works again from an unlock that succeeds.
    unlock = await d.log.call("UnlockConnector", {"evseId": 1, "connectorId": 1})
    assert unlock == {"status": "Unlocked"}
    await d.log.wait_for("NotifyEvent", problem("ConnectorPlugRetentionLock", "false"))


async def test_the_master_pass_stops_a_session_and_starts_none(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await daemon_201(
        csms, make_daemon, device_model={"AuthCtrlr": {"MasterPassGroupId": "MASTERS"}}
    )
    csms.parent_id_tags["MASTER01"] = "MASTERS"
    await d.sim(cp_state="C")
    await d.tap(TAG)
    await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Started")
    await d.wait_connector(lambda c: c["relay_closed"])
    await d.tap("MASTER01")  # C16: every transaction ends
    ended = await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "MasterPass"
    assert ended["idToken"]["idToken"] == "MASTER01"
    await d.wait_connector(lambda c: not c["relay_closed"])
    started = len([e for e in d.log.calls("TransactionEvent") if e["eventType"] == "Started"])
    await d.tap("MASTER01")  # and it starts none (the EV is still plugged in)
    await d.wait_log(r"master pass \S+: stopping 0 transaction")
    events = d.log.calls("TransactionEvent")
    assert len([e for e in events if e["eventType"] == "Started"]) == started
    assert (await d.connector())["local_transaction_id"] is None
