"""Item 1: transport — URL, subprotocol, Basic auth, reconnect, answers to every CALL."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from hil.csms import BenchCsms
from tests.integration.harness import Daemon, wait_until

MakeDaemon = Callable[..., Awaitable[Daemon]]


async def test_connects_with_subprotocol_and_path(daemon: Daemon) -> None:
    assert daemon.log.subprotocol == "ocpp1.6"
    assert daemon.log.connected
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
    await daemon.log.send_raw(
        '[2,"u2","DeleteCertificate",{"certificateHashData":{"hashAlgorithm":"SHA256",'
        '"issuerNameHash":"aa","issuerKeyHash":"bb","serialNumber":"01"}}]'
    )
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
    await asyncio.sleep(2.5)
    pings = [r for r in caplog.records if "< PING" in r.getMessage()]
    assert len(pings) >= 2
    # Switching it off takes effect at once.
    await d.log.call("ChangeConfiguration", {"key": "WebSocketPingInterval", "value": "0"})
    caplog.clear()
    await asyncio.sleep(1.5)
    assert not [r for r in caplog.records if "< PING" in r.getMessage()]


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
