"""Bench scenarios of normal operation: boot, sessions, remote control, offline, power cut."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hil.bench import Bench, ocpp_time
from hil.scenario import scenario

# Clocks of a real board and of this machine may differ a little.
CLOCK_TOLERANCE = timedelta(seconds=2)
# A station on a real network may back off this long before reconnecting or rebooting.
RECONNECT_S = 60.0


def _of(connector: int) -> Callable[[dict[str, Any]], bool]:
    return lambda p: bool(p["connectorId"] == connector)


@scenario("boot")
async def boot(bench: Bench) -> str:
    """BootNotification Accepted, then a status for every connector; the interval is adopted."""
    log = bench.log
    boots = log.calls("BootNotification")
    how = "at start"
    if not boots:  # a running station that only reconnected: make it boot again
        bench.mark()
        reset = await bench.call("Reset", {"type": "Soft"})
        bench.check(reset["status"] == "Accepted", f"Reset Soft: {reset}")
        await bench.wait_for("BootNotification", timeout=max(bench.timeout, RECONNECT_S))
        how = "after Reset Soft"
    boot_payload = log.calls("BootNotification")[-1]
    answer = await log.wait_answer("BootNotification", boot_payload, timeout=bench.timeout)
    bench.check(
        answer[0] == 3 and answer[2]["status"] == "Accepted", f"BootNotification answer {answer}"
    )
    after = next(i for i, p in enumerate(log.calls()) if p is boot_payload) + 1
    config = await bench.call("GetConfiguration", {"key": ["NumberOfConnectors"]})
    values = {k["key"]: k.get("value") for k in config.get("configurationKey", [])}
    connectors = int(values.get("NumberOfConnectors") or 1)
    for connector in range(connectors + 1):
        await log.wait_for("StatusNotification", _of(connector), since=after, timeout=bench.timeout)
    got = await bench.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    interval = {k["key"]: k.get("value") for k in got.get("configurationKey", [])}
    bench.check(
        interval.get("HeartbeatInterval") == str(bench.csms.heartbeat_interval),
        f"HeartbeatInterval {interval} after a BootNotification interval of "
        f"{bench.csms.heartbeat_interval}",
    )
    identity = " ".join(
        str(boot_payload[k])
        for k in ("chargePointVendor", "chargePointModel", "firmwareVersion")
        if k in boot_payload
    )
    return f"{identity}: booted {how}, {connectors} connector(s), interval adopted"


@scenario("tap_plug_first")
async def tap_plug_first(bench: Bench) -> str:
    """Plug in, tap: Authorize, StartTransaction, Charging, energy; tap again: Local stop."""
    await bench.set_pilot("B")
    await bench.wait_status("Preparing")
    await bench.tap()
    auth = await bench.wait_for("Authorize")
    bench.check(auth == {"idTag": bench.tag}, f"Authorize {auth}")
    start = await bench.wait_for("StartTransaction")
    bench.check(
        start["idTag"] == bench.tag and start["connectorId"] == bench.connector,
        f"StartTransaction {start}",
    )
    await bench.set_pilot("C")
    await bench.wait_status("Charging" if bench.load else "SuspendedEV")
    session = await bench.session_of(start)
    wh = await bench.wait_energy(session)
    stop = await bench.stop_by_tap(session)
    bench.check(stop.get("idTag") == bench.tag, f"StopTransaction idTag {stop.get('idTag')}")
    await bench.wait_status("Finishing")
    await bench.unplug()
    delivered = stop["meterStop"] - start["meterStart"]
    bench.check(not bench.load or delivered > 0, f"no energy delivered ({wh:.0f} Wh sampled)")
    return f"transaction {session.transaction_id}, {delivered} Wh, stopped Local"


@scenario("tap_first")
async def tap_first(bench: Bench) -> str:
    """Tap first (Preparing, no transaction yet), then plug in; unplugging stops it."""
    started_before = len(bench.log.calls("StartTransaction"))
    await bench.tap()
    auth = await bench.wait_for("Authorize")
    bench.check(auth == {"idTag": bench.tag}, f"Authorize {auth}")
    await bench.wait_status("Preparing")
    bench.check(
        len(bench.log.calls("StartTransaction")) == started_before,
        "StartTransaction before the vehicle was plugged in",
    )
    await bench.set_pilot("C")
    start = await bench.wait_for("StartTransaction")
    bench.check(start["idTag"] == bench.tag, f"StartTransaction {start}")
    session = await bench.session_of(start)
    await bench.wait_status("Charging" if bench.load else "SuspendedEV")
    await bench.wait_energy(session)
    await bench.set_pilot("A")
    stop = await bench.expect_stop(session, "EVDisconnected")
    await bench.wait_status("Available")
    delivered = stop["meterStop"] - start["meterStart"]
    return f"transaction {session.transaction_id}, {delivered} Wh, stopped EVDisconnected"


@scenario("remote_start_stop")
async def remote_start_stop(bench: Bench) -> str:
    """RemoteStartTransaction, plug in, Charging; RemoteStop: unknown id Rejected, then Remote."""
    answer = await bench.call(
        "RemoteStartTransaction", {"connectorId": bench.connector, "idTag": bench.tag}
    )
    bench.check(answer["status"] == "Accepted", f"RemoteStartTransaction: {answer}")
    await bench.wait_status("Preparing")
    await bench.set_pilot("C")
    start = await bench.wait_for("StartTransaction")
    bench.check(start["idTag"] == bench.tag, f"StartTransaction {start}")
    session = await bench.session_of(start)
    await bench.wait_status("Charging" if bench.load else "SuspendedEV")
    unknown = session.transaction_id + 100_000
    answer = await bench.call("RemoteStopTransaction", {"transactionId": unknown})
    bench.check(answer["status"] == "Rejected", f"RemoteStop of unknown {unknown}: {answer}")
    answer = await bench.call("RemoteStopTransaction", {"transactionId": session.transaction_id})
    bench.check(answer["status"] == "Accepted", f"RemoteStopTransaction: {answer}")
    await bench.expect_stop(session, "Remote")
    await bench.wait_status("Finishing")
    await bench.unplug()
    return f"transaction {session.transaction_id} started and stopped remotely"


@scenario("offline_replay")
async def offline_replay(bench: Bench) -> str:
    """A whole session while the CSMS is unreachable; its messages arrive after reconnecting."""
    await bench.configure("AllowOfflineTxForUnknownId", "true")
    bench.csms.refuse = True
    try:
        await bench.csms.drop(bench.cp_id)
        bench.mark()
        await bench.set_pilot("C")
        await bench.tap()
        await bench.wait_relay(True)  # charging offline
        await bench.set_pilot("A")
        await bench.wait_relay(False)
        refused = len(bench.log.rejections)
    finally:
        bench.csms.refuse = False
    await bench.csms.wait_connected(bench.cp_id, timeout=max(bench.timeout, RECONNECT_S))
    online_at = datetime.now(UTC)
    start = await bench.wait_for("StartTransaction", lambda p: p["idTag"] == bench.tag)
    session = await bench.session_of(start)
    stop = await bench.expect_stop(session, "EVDisconnected")
    started, stopped = ocpp_time(start["timestamp"]), ocpp_time(stop["timestamp"])
    bench.check(
        started <= stopped <= online_at + CLOCK_TOLERANCE,
        f"offline session times: start {started}, stop {stopped}, back online {online_at}",
    )
    # The station reports the statuses it went through offline, or only the latest when the
    # CSMS already knows it: either way the CSMS must end up seeing Available.
    await bench.wait_current("Available")
    return (
        f"refused {refused} reconnection(s); transaction {session.transaction_id} "
        f"replayed with {stop['meterStop'] - start['meterStart']} Wh"
    )


@scenario("power_cut")
async def power_cut(bench: Bench) -> str:
    """SIGKILL during a session and restart: StopTransaction PowerLoss, relay open at boot."""
    owner = bench.require_owner()
    session = await bench.start_session()
    await bench.wait_energy(session)
    await owner.kill()
    killed_at = datetime.now(UTC)
    mark = bench.mark()
    await owner.start(boot_timeout=bench.timeout)
    await bench.set_pilot("A")  # the plant came back without a vehicle
    stop = await bench.expect_stop(session, "PowerLoss")
    bench.check(
        ocpp_time(stop["timestamp"]) <= killed_at + CLOCK_TOLERANCE,
        f"PowerLoss stop at {stop['timestamp']}, after the cut at {killed_at}",
    )
    await bench.wait_status("Available", since=mark)
    return (
        f"transaction {session.transaction_id} ended PowerLoss at {stop['meterStop']} Wh "
        f"(started {session.start['meterStart']} Wh)"
    )
