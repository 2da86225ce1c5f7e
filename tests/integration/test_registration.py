"""Item 2: BootNotification (Accepted, Pending, Rejected) and Heartbeat."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hil.csms import BenchCsms, StationLog
from tests.integration.harness import Daemon, call_frames, wait_until

MakeDaemon = Callable[..., Awaitable[Daemon]]


async def test_boot_payload_from_identity(daemon: Daemon) -> None:
    boot = daemon.log.calls("BootNotification")[0]
    assert boot["chargePointVendor"] == "TestVendor"
    assert boot["chargePointModel"] == "TestModel"
    assert boot["chargePointSerialNumber"] == "SN-0001"
    assert boot["firmwareVersion"] == "9.9.9"
    first = next(f for f in daemon.log.frames if f.direction == "in")
    assert first.message is not None and first.message[2] == "BootNotification"
    # After Accepted: the status of connector 0 and every connector.
    await daemon.log.wait_for("StatusNotification", lambda p: p["connectorId"] == 0)
    await daemon.log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1)


async def test_csms_calls_before_boot_answer_are_answered(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    answered: dict[str, Any] = {}

    async def boot(cp_id: str, _payload: dict[str, Any]) -> dict[str, Any]:
        log = csms.station(cp_id)
        answered.update(await log.call("GetConfiguration", {"key": ["NumberOfConnectors"]}))
        await log.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "5"})
        return {"status": "Accepted", "currentTime": datetime.now(UTC).isoformat(), "interval": 300}

    csms.handlers["BootNotification"] = boot
    d = await make_daemon()
    await d.log.wait_for("StatusNotification")
    assert answered["configurationKey"][0] == {
        "key": "NumberOfConnectors",
        "readonly": True,
        "value": "1",
    }


async def test_pending_then_accepted(make_daemon: MakeDaemon, csms: BenchCsms) -> None:
    csms.boot_status = "Pending"
    csms.heartbeat_interval = 1
    d = await make_daemon()
    status = await d.get("/status")
    assert status["ocpp"]["registration"] == "Pending"
    answer = await d.log.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"]
    await wait_until(lambda: len(d.log.calls("BootNotification")) >= 2, 5, "boot retry")
    # Pending: nothing but BootNotification from the station.
    assert {f.message[2] for f in call_frames(d.log) if f.message} == {"BootNotification"}
    csms.boot_status = "Accepted"
    await d.log.wait_for("StatusNotification", timeout=5)
    assert (await d.get("/status"))["ocpp"]["registration"] == "Accepted"


async def test_rejected_sends_nothing_until_interval(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    csms.boot_status = "Rejected"
    csms.heartbeat_interval = 3
    d = await make_daemon()
    boot_at = d.log.frames[-1].at
    # Once the station has taken the answer (a CALL before that may well be answered).
    for _ in range(100):
        if (await d.get("/status"))["ocpp"]["registration"] == "Rejected":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the station never took the Rejected answer")
    await d.log.send_raw('[2,"r1","GetConfiguration",{}]')
    await asyncio.sleep(1.0)
    replies = [
        f for f in d.log.frames if f.direction == "in" and f.message and f.message[1] == "r1"
    ]
    assert replies == []  # while Rejected the station does not answer either
    csms.boot_status = "Accepted"
    await wait_until(lambda: len(d.log.calls("BootNotification")) >= 2, 6, "boot after interval")
    second = call_frames(d.log, "BootNotification")[1]
    assert second.at - boot_at >= 2.9
    await d.log.wait_for("StatusNotification", timeout=5)


async def test_boot_interval_sets_heartbeat_and_clock(
    make_daemon: MakeDaemon, csms: BenchCsms
) -> None:
    shifted = datetime.now(UTC) + timedelta(hours=2)

    def boot(_cp: str, _p: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Accepted", "currentTime": shifted.isoformat(), "interval": 1}

    csms.handlers["BootNotification"] = boot
    csms.handlers["Heartbeat"] = lambda _cp, _p: {"currentTime": shifted.isoformat()}
    d = await make_daemon()
    await d.log.wait_for("Heartbeat", timeout=4)
    answer = await d.log.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["value"] == "1"
    await d.sim(cp_state="B")
    status = await d.wait_status("Preparing")
    stamp = datetime.fromisoformat(status["timestamp"].replace("Z", "+00:00"))
    assert abs((stamp - shifted).total_seconds()) < 60  # the CSMS's time was adopted


async def test_heartbeat_interval_change_takes_effect_at_once(daemon: Daemon) -> None:
    await daemon.log.wait_for("StatusNotification")
    assert daemon.log.calls("Heartbeat") == []  # HeartbeatInterval 300 s so far
    answer = await daemon.log.call(
        "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "1"}
    )
    assert answer["status"] == "Accepted"
    await daemon.log.wait_for("Heartbeat", timeout=3)
    log: StationLog = daemon.log
    await wait_until(lambda: len(log.calls("Heartbeat")) >= 3, 5, "regular heartbeats")
