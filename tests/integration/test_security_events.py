"""Security events end to end: detected, stored in the security log, critical ones delivered.

The security log is read from the station's own database (read-only, beside
the running daemon), as the crash test checks transactions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from firmware.clock import iso
from hil.csms import BenchCsms, CallErrorReply
from tests.integration.harness import Daemon, call_frames, charge_session_start

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]
EVENT = "SecurityEventNotification"


def sent(d: Daemon, kind: str | None = None) -> list[dict[str, Any]]:
    return [p for p in d.log.calls(EVENT) if kind is None or p["type"] == kind]


def security_log(d: Daemon) -> list[dict[str, Any]]:
    """The station's security log, oldest first."""
    uri = f"file:{d.state_dir / 'state.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT type, tech_info, critical, delivery, sent_at, occurred_at "
            "FROM security_log ORDER BY id"
        ).fetchall()
    return [dict(row) for row in rows]


async def wait_event(d: Daemon, kind: str, since: int = 0, timeout: float = 10) -> dict[str, Any]:
    return await d.log.wait_for(EVENT, lambda p: p["type"] == kind, since=since, timeout=timeout)


async def go_offline(d: Daemon, csms: BenchCsms) -> None:
    await d.wait_queue_empty()  # the StartupOfTheDevice acknowledged: not sent again
    csms.refuse = True
    await csms.drop(d.cp_id)
    await d.wait_link(False)


async def test_startup_at_every_start_and_how_the_last_run_ended(
    make_daemon: MakeDaemon,
) -> None:
    d = await make_daemon()
    first = await wait_event(d, "StartupOfTheDevice")
    assert first["techInfo"] == "firmware 9.9.9, first start"
    first_calls = [f.message[2] for f in call_frames(d.log)][:2]
    assert first_calls == ["BootNotification", EVENT]  # nothing before the BootNotification
    await d.stop()
    mark = d.log.mark()
    await d.start()
    again = await wait_event(d, "StartupOfTheDevice", since=mark)
    assert again["techInfo"] == "firmware 9.9.9, after a clean stop (Reboot)"
    await d.wait_queue_empty()
    assert sent(d, "ResetOrReboot") == []  # a clean stop is no unexpected reboot
    assert [(e["type"], e["delivery"]) for e in security_log(d)] == [
        ("StartupOfTheDevice", "sent"),
        ("StartupOfTheDevice", "sent"),
    ]


async def test_reset_is_reported_and_the_restart_knows_it(daemon: Daemon) -> None:
    await wait_event(daemon, "StartupOfTheDevice")
    mark = daemon.log.mark()
    assert await daemon.log.call("Reset", {"type": "Soft"}) == {"status": "Accepted"}
    reset = await wait_event(daemon, "ResetOrReboot", since=mark)
    assert reset["techInfo"] == "Reset Soft requested by the CSMS"
    startup = await wait_event(daemon, "StartupOfTheDevice", since=mark, timeout=20)
    assert startup["techInfo"] == "firmware 9.9.9, after a clean stop (SoftReset)"
    assert len(sent(daemon, "ResetOrReboot")) == 1


async def test_events_raised_offline_arrive_after_reconnect_in_order_once(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    d = await make_daemon(security_log={"event_repeat_s": 0})
    await wait_event(d, "StartupOfTheDevice")
    await go_offline(d, csms)
    for _ in range(3):  # the enclosure opened three times while the CSMS was away
        line = len(d.log_lines())
        await d.fault("tamper", True, connector=0)
        await d.wait_log(r"security event TamperDetectionActivated", since=line)
        await d.fault("tamper", False, connector=0)
        await d.wait_log(r"tamper (input|switch) back to normal", since=line)
    csms.refuse = False
    await d.wait_link(True)
    await d.wait_queue_empty()
    events = sent(d)[1:]  # after the StartupOfTheDevice
    assert [p["type"] for p in events] == ["TamperDetectionActivated"] * 3
    stamps = [p["timestamp"] for p in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    stored = [e for e in security_log(d) if e["type"] == "TamperDetectionActivated"]
    assert [e["occurred_at"] for e in stored] == stamps
    assert all(e["delivery"] == "sent" and e["sent_at"] for e in stored)


async def test_event_before_a_power_cut_arrives_after_the_restart(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    d = await make_daemon()
    await wait_event(d, "StartupOfTheDevice")
    await go_offline(d, csms)
    line = len(d.log_lines())
    await d.fault("tamper", True, connector=0)
    await d.wait_log(r"security event TamperDetectionActivated", since=line)
    await d.kill()  # stored: the log line comes after the commit
    csms.refuse = False
    mark = d.log.mark()
    await d.start()
    startup = await wait_event(d, "StartupOfTheDevice", since=mark)
    after = [p["type"] for p in d.log.calls(EVENT)[1:]]
    assert after == ["TamperDetectionActivated", "ResetOrReboot", "StartupOfTheDevice"]
    assert "after an unclean stop" in startup["techInfo"]
    reboot = sent(d, "ResetOrReboot")[0]
    assert reboot["techInfo"].startswith("unexpected restart: the previous run started ")


async def test_non_critical_events_only_in_the_log_and_rate_limited(
    make_daemon: MakeDaemon,
) -> None:
    d = await make_daemon(security_log={"event_repeat_s": 1})
    await wait_event(d, "StartupOfTheDevice")
    line = len(d.log_lines())
    payload = '{"connectorId":"x","type":"Operative"}'
    for number in range(5):  # a CSMS sending garbage: five invalid messages at once
        await d.log.send_raw(f'[2,"bad{number}","ChangeAvailability",{payload}]')
    await d.wait_log(r"security event InvalidMessages: ChangeAvailability: ", since=line)
    await d.wait_log(
        r"security event InvalidMessages: 4 more in 1 s; the last: ChangeAvailability: "
        r"TypeConstraintViolation",
        since=line,
    )
    invalid = [e for e in security_log(d) if e["type"] == "InvalidMessages"]
    assert len(invalid) == 2
    assert all(not e["critical"] and e["delivery"] is None for e in invalid)
    # A critical event raised after them is delivered; they never were.
    await d.fault("tamper", True, connector=0)
    await wait_event(d, "TamperDetectionActivated")
    assert sent(d, "InvalidMessages") == []


async def test_system_time_set_from_the_csms(daemon: Daemon, csms: BenchCsms) -> None:
    await wait_event(daemon, "StartupOfTheDevice")
    ahead = iso(datetime.now(UTC) + timedelta(hours=1))
    csms.handlers["Heartbeat"] = lambda _cp, _p: {"currentTime": ahead}
    mark = daemon.log.mark()
    assert await daemon.log.call("TriggerMessage", {"requestedMessage": "Heartbeat"}) == {
        "status": "Accepted"
    }
    event = await wait_event(daemon, "SettingSystemTime", since=mark)
    moved = float(event["techInfo"].removeprefix("clock set from the CSMS's time: moved ")[:-2])
    assert 3590 < moved < 3610
    assert event["timestamp"] >= ahead[:16]  # stamped on the new time
    # The boot's own adoption moved the clock by milliseconds: no event.
    assert len(sent(daemon, "SettingSystemTime")) == 1


@pytest.mark.emulated
async def test_tamper_is_reported_and_charging_goes_on(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    mark = daemon.mark()
    await daemon.fault("tamper", True, connector=0)
    event = await wait_event(daemon, "TamperDetectionActivated", since=mark)
    assert event["techInfo"] == "tamper input active"
    status = await daemon.log.wait_for(
        "StatusNotification", lambda p: p["connectorId"] == 0, since=mark
    )
    assert status["status"] == "Available" and status["errorCode"] == "OtherError"
    assert status["vendorErrorCode"] == "Tamper"
    connector = await daemon.connector()
    assert connector["status"] == "Charging" and connector["relay_closed"]
    await daemon.fault("tamper", False, connector=0)
    back = await daemon.log.wait_for(
        "StatusNotification",
        lambda p: p["connectorId"] == 0 and p["errorCode"] == "NoError",
        since=mark,
    )
    assert back["status"] == "Available"
    assert [p["type"] for p in sent(daemon)] == ["StartupOfTheDevice", "TamperDetectionActivated"]


async def test_a_csms_without_security_events_holds_nothing_up(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    csms.handlers[EVENT] = lambda _cp, _p: CallErrorReply("NotImplemented", "no such action")
    d = await make_daemon()
    start = await charge_session_start(d)  # queued behind the refused StartupOfTheDevice
    assert start["connectorId"] == 1
    await d.wait_queue_empty()
    assert [e["delivery"] for e in security_log(d)] == ["dropped"]
    assert (await d.get("/status"))["ocpp"]["dropped"] == 1
