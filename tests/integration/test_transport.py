"""Item 1: transport — URL, subprotocol, Basic auth, reconnect, answers to every CALL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hil.csms import NO_REPLY, BenchCsms, StationLog
from tests.integration.harness import Daemon, call_frames, charge_session_start, wait_until

MakeDaemon = Callable[..., Awaitable[Daemon]]


async def test_connects_with_subprotocol_and_path(daemon: Daemon) -> None:
    assert daemon.log.subprotocol == "ocpp1.6"
    assert daemon.log.connected
    assert daemon.log.basic_auth == [None]  # security profile 0: no Basic auth, ws://
    await daemon.log.wait_for(
        "SecurityEventNotification", lambda p: p["type"] == "StartupOfTheDevice"
    )
    await daemon.wait_queue_empty()  # the startup event was queued and is delivered
    status = await daemon.get("/status")
    assert status["charge_point_id"] == "CP-1"
    assert status["ocpp"]["connected"] is True
    assert status["ocpp"]["registration"] == "Accepted"
    assert status["ocpp"]["queued"] == 0


async def test_basic_auth(make_daemon: MakeDaemon, csms: BenchCsms) -> None:
    csms.passwords["CP-1"] = "0123456789abcdef0123"
    d = await make_daemon(start=False, ocpp={"password": "wrong-password-123"})
    await d.start(wait_boot=False)
    await d.wait_log(r"cannot connect to .*: HTTP 401")
    assert d.log.connections == 0
    assert (await d.get("/status"))["ocpp"]["connected"] is False
    await d.stop()
    d.write_config({"ocpp": {"password": "0123456789abcdef0123"}})
    await d.start()
    assert d.log.connections == 1
    assert "0123456789abcdef0123" not in d.log_path.read_text()  # never logged


async def test_reconnects_after_csms_drop(daemon: Daemon) -> None:
    await daemon.log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1)
    mark = daemon.log.mark()
    await daemon.csms.drop(daemon.cp_id)
    await wait_until(lambda: daemon.log.connections == 2 and daemon.log.connected, 5, "reconnect")
    # No second BootNotification after a mere reconnect; the current status is sent again.
    await daemon.log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1, since=mark)
    assert len(daemon.log.calls("BootNotification")) == 1


async def test_comes_back_soon_after_a_csms_outage(daemon: Daemon) -> None:
    daemon.csms.refuse = True
    await daemon.csms.drop(daemon.cp_id)
    await asyncio.sleep(3)  # several failed attempts, backoff grows to its cap (1 s here)
    daemon.csms.refuse = False
    started = time.monotonic()
    await wait_until(lambda: daemon.log.connected, 5, "reconnect after outage")
    assert time.monotonic() - started <= 1.5  # within the configured cap plus slack


async def test_unknown_and_unsupported_actions(daemon: Daemon) -> None:
    await daemon.log.send_raw('[2,"u1","MakeCoffee",{}]')
    assert (await daemon.log.wait_reply("u1"))[2] == "NotImplemented"
    # An action of OCPP 1.6 the station sends but never answers.
    await daemon.log.send_raw('[2,"u2","Heartbeat",{}]')
    assert (await daemon.log.wait_reply("u2"))[2] == "NotSupported"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ('{"connectorId":1}', "OccurenceConstraintViolation"),
        ('{"connectorId":"1","type":"Operative"}', "TypeConstraintViolation"),
        ('{"connectorId":1,"type":"Sometimes"}', "PropertyConstraintViolation"),
        ('{"connectorId":1,"type":"Operative","x":1}', "FormationViolation"),
        ("[]", "FormationViolation"),
    ],
)
async def test_schema_violations_get_the_fitting_callerror(
    daemon: Daemon, payload: str, code: str
) -> None:
    await daemon.log.send_raw(f'[2,"s1","ChangeAvailability",{payload}]')
    reply = await daemon.log.wait_reply("s1")
    assert reply[0] == 4 and reply[2] == code


async def test_garbage_and_oversized_frames_do_not_drop_the_connection(daemon: Daemon) -> None:
    for junk in ["not json", "{}", "[]", "[7]", '[2,"g1"]', "\x00\xff", '[3,"nobody",{}]']:
        await daemon.log.send_raw(junk)
    reply = await daemon.log.wait_reply("g1")
    assert reply[2] == "FormationViolation"
    big = json.dumps([2, "big1", "DataTransfer", {"vendorId": "x", "data": "A" * 300_000}])
    await daemon.log.send_raw(big)
    assert (await daemon.log.wait_reply("big1"))[2] == "FormationViolation"
    answer = await daemon.log.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"
    assert daemon.log.connections == 1


async def test_websocket_ping_interval(
    make_daemon: MakeDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets")
    d = await make_daemon(ocpp={"config": {"WebSocketPingInterval": 1}})

    def pings() -> int:
        return len([r for r in caplog.records if "< PING" in r.getMessage()])

    await wait_until(lambda: pings() >= 2, 5, "two pings a second apart")
    # Switching it off takes effect at once: the keepalive takes the new value...
    mark = len(d.log_lines())
    await d.log.call("ChangeConfiguration", {"key": "WebSocketPingInterval", "value": "0"})
    await d.wait_log(r"WebSocket pings off", since=mark)
    caplog.clear()
    # ...and no ping follows within longer than the old interval.
    await asyncio.sleep(1.5)
    assert pings() == 0


async def test_authorization_key_change_reconnects_with_the_new_key(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    csms.passwords["CP-1"] = "first-password-0001"
    d = await make_daemon(ocpp={"password": "first-password-0001"})
    answer = await d.log.call(
        "ChangeConfiguration", {"key": "AuthorizationKey", "value": "second-password-002"}
    )
    assert answer["status"] == "Accepted"
    csms.passwords["CP-1"] = "second-password-002"
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 5, "reconnect")
    assert len(d.log.calls("BootNotification")) == 1
    listed = await d.log.call("GetConfiguration", {"key": ["AuthorizationKey"]})
    assert listed["configurationKey"] == [] and listed["unknownKey"] == ["AuthorizationKey"]
    assert "second-password-002" not in d.log_path.read_text()  # not even in frame logs
    # The new key survives a restart.
    await d.stop()
    await d.start()
    assert d.log.connections == 3


def _replies(log: StationLog, unique_id: str) -> list[list[Any]]:
    """Every answer the station sent to the CSMS CALL ``unique_id``, in order."""
    return [
        f.message
        for f in log.frames
        if f.direction == "in"
        and f.message
        and f.message[0] in (3, 4)
        and f.message[1] == unique_id
    ]


async def test_a_repeated_call_id_is_answered_again_not_run_again(daemon: Daemon) -> None:
    await daemon.sim(cp_state="B")
    call = json.dumps(
        [2, "dup-rs-1", "RemoteStartTransaction", {"connectorId": 1, "idTag": "BEEF0001"}]
    )
    await daemon.log.send_raw(call)
    await daemon.log.wait_for("StartTransaction", lambda p: p["idTag"] == "BEEF0001")
    await daemon.wait_connector(lambda c: c["transaction_id"] is not None)
    # A CSMS retry after the effect (run again, it would be Rejected: the connector is busy) ...
    await daemon.log.send_raw(call)
    await wait_until(lambda: len(_replies(daemon.log, "dup-rs-1")) == 2, 5, "the second answer")
    # ... and one after a reconnect.
    await daemon.csms.drop(daemon.cp_id)
    await wait_until(lambda: daemon.log.connected and daemon.log.connections == 2, 5, "reconnect")
    await daemon.log.send_raw(call)
    await wait_until(lambda: len(_replies(daemon.log, "dup-rs-1")) == 3, 5, "the third answer")
    assert _replies(daemon.log, "dup-rs-1") == [[3, "dup-rs-1", {"status": "Accepted"}]] * 3
    assert len(daemon.log.calls("StartTransaction")) == 1
    assert len(daemon.log.calls("Authorize")) == 1
    # A new id is a new request.
    answer = await daemon.log.call(
        "RemoteStartTransaction", {"connectorId": 1, "idTag": "BEEF0001"}
    )
    assert answer == {"status": "Rejected"}


async def test_a_frame_over_the_websocket_limit_closes_the_link_and_the_station_comes_back(
    daemon: Daemon,
) -> None:
    start = await charge_session_start(daemon, "F00D0001")
    tx_id = daemon.log.calls("StartTransaction").index(start) + 1
    huge = json.dumps([2, "huge-1", "DataTransfer", {"vendorId": "x", "data": "A" * (9 << 20)}])
    with contextlib.suppress(ConnectionError):  # the station may close while it is sent
        await daemon.log.send_raw(huge)
    await wait_until(lambda: daemon.log.connections == 2 and daemon.log.connected, 10, "reconnect")
    assert daemon.log.closes[0][0] == 1009  # message too big, from the station's side
    assert _replies(daemon.log, "huge-1") == []  # its id was never read
    # The station answers, and the session it was running goes on and ends as usual.
    answer = await daemon.log.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"
    assert (await daemon.connector())["relay_closed"]
    await daemon.tap("F00D0001")
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["transactionId"] == tx_id and stop["reason"] == "Local"
    assert len(daemon.log.calls("BootNotification")) == 1


async def test_a_tap_never_waits_behind_a_hung_call(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={
            "response_timeout_s": 30,
            "authorize_timeout_s": 1,
            "config": {"AllowOfflineTxForUnknownId": True},
        }
    )
    release = asyncio.Event()

    async def hang(_cp: str, _payload: dict[str, Any]) -> None:
        await release.wait()  # then the usual answer

    await d.sim(cp_state="C")
    await d.wait_status("Preparing")
    d.csms.handlers["Heartbeat"] = hang
    trigger = await d.log.call("TriggerMessage", {"requestedMessage": "Heartbeat"})
    assert trigger["status"] == "Accepted"
    await d.log.wait_for("Heartbeat")  # the station's own call now holds the link
    await d.tap("CAFE0001")
    # Decided by the offline rules while the Heartbeat still holds the link
    # (its answer would take up to 30 s): no Authorize was sent at all.
    await d.wait_connector(lambda c: c["relay_closed"], timeout=15)
    assert not release.is_set() and d.log.calls("Authorize") == []
    assert d.log.calls("StartTransaction") == []
    release.set()
    start = await d.log.wait_for("StartTransaction", timeout=10)
    assert start["idTag"] == "CAFE0001"


async def test_an_unanswered_authorize_falls_back_to_the_cache(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"response_timeout_s": 30, "authorize_timeout_s": 1})
    await charge_session_start(d, "CA5E0001")  # answered: the tag is cached as Accepted
    await d.tap("CA5E0001")
    await d.log.wait_for("StopTransaction")
    await d.sim(cp_state="A")
    await d.wait_connector(lambda c: c["status"] == "Available")
    d.csms.handlers["Authorize"] = lambda _cp, _p: NO_REPLY
    await d.sim(cp_state="C")
    mark = d.mark()
    await d.tap("CA5E0001")
    await d.log.wait_for("Authorize", since=mark)
    # Long before the 30 s response timeout, the cache (LocalAuthorizeOffline) decided.
    start = await d.log.wait_for("StartTransaction", since=mark, timeout=10)
    assert start["idTag"] == "CA5E0001"
    authorize = call_frames(d.log, "Authorize")[-1]
    assert authorize.message is not None and _replies(d.log, authorize.message[1]) == []
    await d.wait_connector(lambda c: c["relay_closed"])
