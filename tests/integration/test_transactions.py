"""Item 4: transactions end to end (plug-first, tap-first, authorization, stop reasons)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from hil.csms import NO_REPLY
from tests.integration.harness import Daemon, call_frames, charge_session_start, wait_until

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]


def _ts(payload: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))


@pytest.mark.emulated
async def test_plug_first_session_local_stop(daemon: Daemon) -> None:
    await daemon.wait_status("Available")
    await daemon.sim(cp_state="B")
    await daemon.wait_status("Preparing")
    await daemon.tap("04A1B2C3")
    authorize = await daemon.log.wait_for("Authorize")
    assert authorize == {"idTag": "04A1B2C3"}
    start = await daemon.log.wait_for("StartTransaction")
    assert start["connectorId"] == 1 and start["idTag"] == "04A1B2C3"
    assert isinstance(start["meterStart"], int)
    c = await daemon.wait_connector(lambda c: c["transaction_id"] is not None)
    assert c["locked"] is True
    await daemon.sim(cp_state="C")
    await daemon.wait_status("Charging")
    c = await daemon.wait_connector(lambda c: c["energy_wh"] > start["meterStart"] + 1)
    assert c["relay_closed"] and c["power_w"] > 0 and c["offered_current_a"] == 32
    await daemon.tap("04A1B2C3")
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "Local" and stop["idTag"] == "04A1B2C3"
    assert stop["transactionId"] == c["transaction_id"]
    assert stop["meterStop"] > start["meterStart"]
    await daemon.wait_status("Finishing")
    c = await daemon.connector()
    assert not c["relay_closed"] and c["locked"] is False
    await daemon.sim(cp_state="A")
    await daemon.wait_status("Available", timeout=5)
    # The same tag did not need a second Authorize to stop.
    assert len(daemon.log.calls("Authorize")) == 1


@pytest.mark.emulated
async def test_tap_first_then_plug(daemon: Daemon) -> None:
    await daemon.tap("CAFE01")
    await daemon.wait_status("Preparing")
    assert daemon.log.calls("StartTransaction") == []
    await daemon.sim(cp_state="C")
    start = await daemon.log.wait_for("StartTransaction")
    assert start["idTag"] == "CAFE01"
    await daemon.wait_status("Charging")


async def test_connection_timeout_drops_authorization(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"ConnectionTimeOut": 1}})
    await d.tap("CAFE02")
    await d.wait_status("Preparing")
    await d.wait_status("Available", timeout=5)
    await d.sim(cp_state="B")
    # Preparing again: the plug was handled, with no authorization left to start.
    await d.wait_status("Preparing")
    assert (await d.connector())["local_transaction_id"] is None
    assert d.log.calls("StartTransaction") == []


async def test_rejected_tag_does_not_start(daemon: Daemon) -> None:
    daemon.csms.id_tags["BAD1"] = "Blocked"
    await daemon.sim(cp_state="B")
    await daemon.tap("BAD1")
    await daemon.log.wait_for("Authorize")
    await daemon.wait_log(r"not authorized: Blocked")
    assert daemon.log.calls("StartTransaction") == []
    assert (await daemon.connector())["relay_closed"] is False


@pytest.mark.emulated
async def test_relay_closes_only_after_start_accepted(daemon: Daemon) -> None:
    gate = asyncio.Event()

    async def slow_start(_cp: str, payload: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return {"transactionId": 4242, "idTagInfo": {"status": "Accepted"}}

    daemon.csms.handlers["StartTransaction"] = slow_start
    await daemon.sim(cp_state="C")
    await daemon.tap("AB12")
    await daemon.log.wait_for("StartTransaction")
    c = await daemon.wait_connector(lambda c: c["local_transaction_id"] is not None)
    assert c["relay_closed"] is False and c["offered_current_a"] == 0
    gate.set()
    c = await daemon.wait_connector(lambda c: c["relay_closed"])
    assert c["transaction_id"] == 4242
    # The daemon's own record: the relay closed after the answer, not before.
    confirmed = await daemon.wait_log(r"transaction \d+ is CSMS id 4242")
    closed = await daemon.wait_log(r"connector 1 relay closed")
    assert confirmed < closed


async def test_invalid_start_stops_with_deauthorized(daemon: Daemon) -> None:
    daemon.csms.handlers["StartTransaction"] = lambda _cp, _p: {
        "transactionId": 7,
        "idTagInfo": {"status": "Invalid"},
    }
    daemon.csms.handlers["Authorize"] = lambda _cp, _p: {"idTagInfo": {"status": "Accepted"}}
    await daemon.sim(cp_state="C")
    await daemon.tap("AB13")
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "DeAuthorized" and stop["transactionId"] == 7
    assert (await daemon.connector())["relay_closed"] is False


async def test_invalid_start_suspends_when_configured(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"StopTransactionOnInvalidId": False}})
    d.csms.handlers["StartTransaction"] = lambda _cp, _p: {
        "transactionId": 8,
        "idTagInfo": {"status": "Blocked"},
    }
    await d.sim(cp_state="C")
    await d.tap("AB14")
    await d.wait_status("SuspendedEVSE")
    c = await d.connector()
    assert c["relay_closed"] is False and c["transaction_id"] == 8
    assert d.log.calls("StopTransaction") == []
    await d.sim(cp_state="A")
    stop = await d.log.wait_for("StopTransaction")
    assert stop["reason"] == "EVDisconnected"


async def test_local_pre_authorize_uses_cache(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"LocalPreAuthorize": True}})
    await d.sim(cp_state="B")
    await d.tap("CA01")
    await d.log.wait_for("StartTransaction")
    await d.tap("CA01")
    await d.log.wait_for("StopTransaction")
    await d.sim(cp_state="A")
    await d.wait_status("Available")
    d.mark()
    await d.sim(cp_state="B")
    await d.tap("CA01")
    await d.log.wait_for("StartTransaction", since=d._since)
    assert len(d.log.calls("Authorize")) == 1  # the second session used the cache


async def test_cache_survives_restart_and_offline_start(make_daemon: MakeDaemon) -> None:
    d = await make_daemon()
    await d.sim(cp_state="B")
    await d.tap("CA02")
    await d.log.wait_for("StartTransaction")
    await d.tap("CA02")
    await d.log.wait_for("StopTransaction")
    assert await d.stop() == 0
    d.csms.refuse = True
    await d.csms.drop(d.cp_id)
    await d.start(wait_boot=False)
    await d.sim(cp_state="B")
    await d.tap("CA02")  # offline: LocalAuthorizeOffline (default true) + cached Accepted
    await d.wait_connector(lambda c: c["local_transaction_id"] is not None)
    await d.sim(cp_state="C")
    await d.wait_connector(lambda c: c["relay_closed"] and c["status"] == "Charging")
    d.csms.refuse = False
    start = await d.log.wait_for(
        "StartTransaction", lambda p: p["idTag"] == "CA02", since=1, timeout=15
    )
    await d.wait_connector(lambda c: c["transaction_id"] is not None)
    assert start["idTag"] == "CA02"


async def test_unknown_tag_offline_needs_allow_offline(make_daemon: MakeDaemon) -> None:
    d = await make_daemon()
    d.csms.refuse = True
    await d.csms.drop(d.cp_id)
    await d.wait_link(connected=False)
    await d.sim(cp_state="B")
    await d.tap("0FF1")
    await d.wait_log(r"not authorized: Invalid")
    assert (await d.connector())["local_transaction_id"] is None
    await d.stop()
    d.write_config({"ocpp": {"config": {"AllowOfflineTxForUnknownId": True}}})
    await d.start(wait_boot=False)
    await d.sim(cp_state="B")
    await d.tap("0FF1")
    await d.wait_connector(lambda c: c["local_transaction_id"] is not None)


async def test_remote_stop_and_unknown_id(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    c = await daemon.connector()
    assert (await daemon.log.call("RemoteStopTransaction", {"transactionId": 999999}))[
        "status"
    ] == "Rejected"
    answer = await daemon.log.call("RemoteStopTransaction", {"transactionId": c["transaction_id"]})
    assert answer["status"] == "Accepted"
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "Remote" and "idTag" not in stop


@pytest.mark.emulated
async def test_ev_disconnect_stops_and_unlocks(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await daemon.sim(cp_state="A")
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "EVDisconnected"
    c = await daemon.wait_connector(lambda c: c["status"] == "Available")
    assert c["locked"] is False and c["relay_closed"] is False


async def test_ev_disconnect_keeps_transaction_when_configured(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={
            "config": {
                "StopTransactionOnEVSideDisconnect": False,
                "UnlockConnectorOnEVSideDisconnect": False,
            }
        }
    )
    await charge_session_start(d)
    await d.sim(cp_state="A")
    await d.wait_status("SuspendedEV")
    c = await d.wait_connector(lambda c: not c["relay_closed"])
    assert c["transaction_id"] is not None and c["locked"] is True
    await d.sim(cp_state="C")
    await d.wait_connector(lambda c: c["relay_closed"])
    assert d.log.calls("StopTransaction") == []


async def test_same_parent_tag_stops(daemon: Daemon) -> None:
    daemon.csms.parent_id_tags.update({"CA4D01": "FLEET", "CA4D02": "FLEET"})
    await charge_session_start(daemon, "CA4D01")
    await daemon.tap("CA4D03")  # no parent: must not stop
    await daemon.log.wait_for("Authorize", lambda p: p["idTag"] == "CA4D03")
    await daemon.wait_log(r"authorized but no connector can take it")
    assert daemon.log.calls("StopTransaction") == []
    await daemon.tap("CA4D02")
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "Local" and stop["idTag"] == "CA4D02"


def record_group(d: Daemon, local_id: int) -> str | None:
    """The group (parentIdTag) the station's own record of a transaction holds."""
    uri = f"file:{d.state_dir / 'state.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        row = db.execute(
            "SELECT parent_id_tag FROM transactions WHERE local_id = ?", (local_id,)
        ).fetchone()
    return row[0] if row else None


async def test_group_given_in_start_transaction_conf_stops(make_daemon: MakeDaemon) -> None:
    """Authorize names no group, StartTransaction.conf names GROUP1: a tag of
    GROUP1 stops the session; a later Authorize answer for the starting tag
    naming another group does not change the session's group."""
    d = await make_daemon(connectors=2)
    d.csms.handlers["StartTransaction"] = lambda _cp, _p: {
        "transactionId": 61,
        "idTagInfo": {"status": "Accepted", "parentIdTag": "GROUP1"},
    }
    d.csms.parent_id_tags.update({"61B201": "GROUP1", "E15E01": "ELSEWHERE"})
    await charge_session_start(d, "5A11A1")
    c = await d.wait_connector(lambda c: c["transaction_id"] == 61)
    local_id = c["local_transaction_id"]
    await wait_until(lambda: record_group(d, local_id) == "GROUP1", 5, "GROUP1 in the record")

    d.csms.parent_id_tags["5A11A1"] = "ELSEWHERE"
    d.mark()
    remote = {"idTag": "5A11A1", "connectorId": 2}
    assert (await d.log.call("RemoteStartTransaction", remote))["status"] == "Accepted"
    await d.log.wait_for("Authorize", lambda p: p["idTag"] == "5A11A1", since=d._since)
    await d.wait_connector(lambda c: c["id_tag"] == "5A11A1", connector=2)
    line = "authorized but no connector can take it"
    await d.tap("E15E01", connector=1)  # of ELSEWHERE: the session is not its group's
    await wait_until(lambda: line in d.log_path.read_text(errors="replace"), 10, line)
    assert d.log.calls("StopTransaction") == []
    assert record_group(d, local_id) == "GROUP1"

    await d.tap("61B201", connector=1)
    stop = await d.log.wait_for("StopTransaction")
    assert (stop["transactionId"], stop["reason"], stop["idTag"]) == (61, "Local", "61B201")


async def test_stop_transaction_data(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={
            "config": {
                "MeterValueSampleInterval": 1,
                "StopTxnSampledData": "Energy.Active.Import.Register,Power.Active.Import",
            }
        }
    )
    await charge_session_start(d)
    await d.log.wait_for("MeterValues")
    await d.tap("AABBCCDD")
    stop = await d.log.wait_for("StopTransaction")
    contexts = [mv["sampledValue"][0]["context"] for mv in stop["transactionData"]]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    assert "Sample.Periodic" in contexts
    measurands = {sv["measurand"] for mv in stop["transactionData"] for sv in mv["sampledValue"]}
    assert measurands == {"Energy.Active.Import.Register", "Power.Active.Import"}


async def test_sigterm_stops_with_reboot_and_exits_zero(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    assert await daemon.stop(timeout=10) == 0
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "Reboot"


@pytest.mark.emulated
async def test_power_loss_uses_last_saved_reading(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"MeterValueSampleInterval": 1}})
    start = await charge_session_start(d)
    sample = await d.log.wait_for("MeterValues", lambda p: "transactionId" in p)
    c = await d.connector()
    last_sent = float(sample["meterValue"][0]["sampledValue"][0]["value"])
    await d.kill()
    started_again = datetime.now(UTC)
    await d.start()  # the simulated meter starts again from 0: not usable
    stop = await d.log.wait_for("StopTransaction")
    assert stop["reason"] == "PowerLoss"
    assert stop["transactionId"] == c["transaction_id"]
    assert last_sent <= stop["meterStop"] and stop["meterStop"] >= start["meterStart"]
    assert _ts(stop) < started_again  # when it was last known to run
    c = await d.connector()
    assert c["relay_closed"] is False and c["transaction_id"] is None


@pytest.mark.emulated
async def test_power_loss_uses_the_meter_at_boot(make_daemon: MakeDaemon) -> None:
    d = await make_daemon()
    start = await charge_session_start(d)
    await d.kill()
    d.write_config({"hal": {"meter_start_wh": 50_000}})  # the meter kept its register
    await d.start()
    stop = await d.log.wait_for("StopTransaction")
    assert stop["reason"] == "PowerLoss" and stop["meterStop"] == 50_000
    assert stop["meterStop"] > start["meterStart"]


@pytest.mark.emulated
async def test_emergency_stop(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await daemon.fault("emergency_stop", connector=0)
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "EmergencyStop"
    await daemon.wait_status("Faulted")
    assert (await daemon.connector())["relay_closed"] is False


@pytest.mark.emulated
async def test_unlock_connector_stops_with_unlock_command(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    answer = await daemon.log.call("UnlockConnector", {"connectorId": 1})
    assert answer["status"] == "Unlocked"
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "UnlockCommand"
    c = await daemon.connector()
    assert c["locked"] is False and c["relay_closed"] is False
    assert (await daemon.log.call("UnlockConnector", {"connectorId": 5}))[
        "status"
    ] == "NotSupported"


@pytest.mark.parametrize(("kind", "reason"), [("Soft", "SoftReset"), ("Hard", "HardReset")])
async def test_reset_stops_and_comes_back(daemon: Daemon, kind: str, reason: str) -> None:
    await charge_session_start(daemon)
    assert daemon.proc is not None
    pid = daemon.proc.pid
    assert (await daemon.log.call("Reset", {"type": kind}))["status"] == "Accepted"
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == reason
    await wait_until(lambda: len(daemon.log.calls("BootNotification")) == 2, 20, "second boot")
    assert daemon.proc.returncode is None and daemon.proc.pid == pid  # re-exec in place
    await daemon.wait_api()


async def test_one_call_in_flight_and_response_timeout(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(start=False)
    d.csms.handlers["StatusNotification"] = lambda _cp, _p: NO_REPLY
    await d.start()
    await d.log.wait_for("StatusNotification")
    await d.sim(cp_state="B")
    await d.log.wait_for("StatusNotification", lambda p: p["status"] == "Preparing", timeout=10)
    statuses = call_frames(d.log, "StatusNotification")
    # Unanswered: each next CALL waited for the response timeout (3 s).
    for a, b in itertools.pairwise(statuses):
        assert b.at - a.at >= 2.9


async def test_sigterm_ends_within_ten_seconds_even_offline(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    daemon.csms.refuse = True
    await daemon.csms.drop(daemon.cp_id)
    assert await daemon.stop(timeout=10) == 0
    assert daemon.log.calls("StopTransaction") == []
    daemon.csms.refuse = False
    await daemon.start()
    stop = await daemon.log.wait_for("StopTransaction")  # queued durably, sent after restart
    assert stop["reason"] == "Reboot"
