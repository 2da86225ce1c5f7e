"""Bench scenarios of normal operation: boot, sessions, remote control, offline, power cut."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hil.bench import Bench, ocpp_time
from hil.scenario import scenario
from hil.wire import Wire

# Clocks of a real board and of this machine may differ a little.
CLOCK_TOLERANCE = timedelta(seconds=2)
# A station on a real network may back off this long before reconnecting or rebooting.
RECONNECT_S = 60.0


def _of(wire: Wire, connector: int) -> Callable[[dict[str, Any]], bool]:
    return lambda p: wire.status(p).connector == connector


@scenario("boot")
async def boot(bench: Bench) -> str:
    """BootNotification Accepted, then a status for every connector; the interval is adopted."""
    log, wire = bench.log, bench.wire
    boots = log.calls("BootNotification")
    how = "at start"
    if not boots:  # a running station that only reconnected: make it boot again
        bench.mark()
        request = wire.reset("Soft")
        reset = await bench.call("Reset", request)
        bench.check(reset["status"] == "Accepted", f"Reset {request['type']}: {reset}")
        await bench.wait_for("BootNotification", timeout=max(bench.timeout, RECONNECT_S))
        how = f"after Reset {request['type']}"
    boot_payload = log.calls("BootNotification")[-1]
    answer = await log.wait_answer("BootNotification", boot_payload, timeout=bench.timeout)
    bench.check(
        answer[0] == 3 and answer[2]["status"] == "Accepted", f"BootNotification answer {answer}"
    )
    bench.check_all(wire.boot_problems(boot_payload, reset=bool(not boots)))
    after = next(i for i, p in enumerate(log.calls()) if p is boot_payload) + 1
    connectors = await wire.connector_count(bench.call)
    for connector in wire.boot_connectors(connectors):
        await log.wait_for(
            "StatusNotification", _of(wire, connector), since=after, timeout=bench.timeout
        )
    interval = await wire.read_setting(bench.call, "HeartbeatInterval")
    bench.check(
        interval == str(bench.csms.heartbeat_interval),
        f"HeartbeatInterval {interval} after a BootNotification interval of "
        f"{bench.csms.heartbeat_interval}",
    )
    identity = wire.boot_identity(boot_payload)
    return f"{identity}: booted {how}, {connectors} {wire.units}, interval adopted"


@scenario("tap_plug_first")
async def tap_plug_first(bench: Bench) -> str:
    """Plug in, tap: Authorize, a transaction, Charging, energy; tap again: Local stop."""
    await bench.set_pilot("B")
    await bench.wait_status("Preparing")
    await bench.tap()
    await bench.expect_authorize()
    session = await bench.wait_start(tag=bench.tag)
    await bench.set_pilot("C")
    await bench.wait_status(bench.charging)
    wh = await bench.wait_energy(session)
    stop = await bench.stop_by_tap(session)
    bench.check(stop.id_tag == bench.tag, f"the stop's idTag is {stop.id_tag}, not {bench.tag}")
    await bench.wait_status("Finishing")
    await bench.unplug()
    delivered = stop.meter_stop - session.meter_start
    bench.check(not bench.load or delivered > 0, f"no energy delivered ({wh:.0f} Wh sampled)")
    return f"transaction {session.transaction_id}, {delivered:.0f} Wh, stopped Local"


@scenario("tap_first")
async def tap_first(bench: Bench) -> str:
    """Tap first (Preparing, no transaction yet), then plug in; unplugging stops it."""
    started_before = bench.starts()
    await bench.tap()
    await bench.expect_authorize()
    await bench.wait_status("Preparing")
    bench.check(
        bench.starts() == started_before, "a transaction started before the vehicle was plugged in"
    )
    await bench.set_pilot("C")
    session = await bench.wait_start(tag=bench.tag)
    await bench.wait_status(bench.charging)
    await bench.wait_energy(session)
    await bench.set_pilot("A")
    stop = await bench.expect_stop(session, "EVDisconnected")
    await bench.wait_status("Available")
    delivered = stop.meter_stop - session.meter_start
    return f"transaction {session.transaction_id}, {delivered:.0f} Wh, stopped EVDisconnected"


@scenario("remote_start_stop")
async def remote_start_stop(bench: Bench) -> str:
    """Remote start, plug in, Charging; remote stop: unknown id Rejected, then Remote."""
    status, remote_start_id = await bench.remote_start()
    bench.check(status == "Accepted", f"remote start: {status}")
    await bench.wait_status("Preparing")
    await bench.set_pilot("C")
    session = await bench.wait_start(tag=bench.tag, remote_start_id=remote_start_id)
    await bench.wait_status(bench.charging)
    unknown = bench.wire.unknown_transaction(session.transaction_id)
    status = await bench.remote_stop(unknown)
    bench.check(status == "Rejected", f"remote stop of unknown {unknown}: {status}")
    status = await bench.remote_stop(session.transaction_id)
    bench.check(status == "Accepted", f"remote stop of {session.transaction_id}: {status}")
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
    session = await bench.wait_start(tag=bench.tag)
    stop = await bench.expect_stop(session, "EVDisconnected")
    bench.check_all(bench.wire.offline_problems(session, stop))
    started, stopped = ocpp_time(session.timestamp), ocpp_time(stop.timestamp)
    bench.check(
        started <= stopped <= online_at + CLOCK_TOLERANCE,
        f"offline session times: start {started}, stop {stopped}, back online {online_at}",
    )
    # The station reports the statuses it went through offline, or only the latest when the
    # CSMS already knows it: either way the CSMS must end up seeing Available.
    await bench.wait_current("Available")
    return (
        f"refused {refused} reconnection(s); transaction {session.transaction_id} "
        f"replayed with {stop.meter_stop - session.meter_start:.0f} Wh"
    )


@scenario("power_cut")
async def power_cut(bench: Bench) -> str:
    """SIGKILL during a session and restart: the session ends PowerLoss, relay open at boot."""
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
        ocpp_time(stop.timestamp) <= killed_at + CLOCK_TOLERANCE,
        f"PowerLoss stop at {stop.timestamp}, after the cut at {killed_at}",
    )
    await bench.wait_status("Available", since=mark)
    return (
        f"transaction {session.transaction_id} ended PowerLoss at {stop.meter_stop:.0f} Wh "
        f"(started {session.meter_start:.0f} Wh)"
    )
