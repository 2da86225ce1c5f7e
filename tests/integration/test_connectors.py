"""Item 3: connector status from pilot, authorization, relay, availability and faults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.integration.harness import Daemon, charge_session_start

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]


@pytest.mark.emulated
async def test_status_sequence_of_a_session(daemon: Daemon) -> None:
    await daemon.wait_status("Available")
    await daemon.sim(cp_state="B")
    await daemon.wait_status("Preparing")
    await daemon.tap("AABBCCDD")
    # Started with the EV still in B: SuspendedEV until it asks for energy.
    await daemon.wait_status("SuspendedEV")
    await daemon.sim(cp_state="C")
    await daemon.wait_status("Charging")
    await daemon.sim(cp_state="B")  # EV pauses
    await daemon.wait_status("SuspendedEV")
    c = await daemon.connector()
    assert c["relay_closed"] is False and c["transaction_id"] is not None
    await daemon.sim(cp_state="C")
    await daemon.wait_status("Charging")
    await daemon.sim(ev_max_current_a=0)  # EV draws nothing
    await daemon.wait_status("SuspendedEV", timeout=5)
    assert (await daemon.connector())["relay_closed"] is True
    assert all(p["errorCode"] == "NoError" for p in daemon.log.calls("StatusNotification"))


async def test_multi_connector_station(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(connectors=2)
    for connector in (0, 1, 2):  # in no particular order
        await d.log.wait_for(
            "StatusNotification",
            lambda p, c=connector: p["connectorId"] == c and p["status"] == "Available",
        )
    d.mark()
    await d.sim(2, cp_state="B")
    await d.wait_status("Preparing", connector=2)
    await d.tap("AA01")  # goes to the plugged connector
    start = await d.log.wait_for("StartTransaction")
    assert start["connectorId"] == 2
    await d.tap("AA02", connector=1)  # a reader of connector 1: tap-first there
    await d.wait_status("Preparing", connector=1)
    await d.sim(1, cp_state="C")
    second = await d.log.wait_for("StartTransaction", lambda p: p["connectorId"] == 1)
    assert second["idTag"] == "AA02"


async def _leaves_faulted(d: Daemon) -> dict[str, Any]:
    return await d.log.wait_for(
        "StatusNotification",
        lambda p: p["connectorId"] == 1 and p["status"] != "Faulted",
        since=d._since,
    )


@pytest.mark.emulated
async def test_welded_contactor_is_found_when_it_must_open(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await daemon.fault("contactor_welded")
    await daemon.tap("AABBCCDD")  # stopping opens the contactor: its contacts stay closed
    assert (await daemon.log.wait_for("StopTransaction"))["reason"] == "Local"
    status = await daemon.wait_status("Faulted")
    assert status["errorCode"] == "PowerSwitchFailure"
    assert (await daemon.connector())["relay_closed"] is False
    await daemon.fault("contactor_welded", active=False)
    assert (await _leaves_faulted(daemon))["errorCode"] == "NoError"


@pytest.mark.emulated
async def test_rcd_trip_opens_the_relay(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await daemon.fault("rcd_trip")
    assert (await daemon.wait_status("Faulted"))["errorCode"] == "GroundFailure"
    c = await daemon.connector()
    assert c["relay_closed"] is False and c["offered_current_a"] == 0
    await daemon.fault("rcd_trip", active=False)
    await _leaves_faulted(daemon)
    await daemon.wait_connector(lambda c: c["relay_closed"])  # the session goes on


@pytest.mark.emulated
async def test_overcurrent_cuts_off_until_unplugged(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await daemon.fault("overcurrent")  # the vehicle draws more than offered
    assert (await daemon.wait_status("Faulted"))["errorCode"] == "OverCurrentFailure"
    c = await daemon.connector()
    assert c["relay_closed"] is False and c["offered_current_a"] == 0
    await daemon.fault("overcurrent", active=False)
    await daemon.sim(cp_state="A")
    stop = await daemon.log.wait_for("StopTransaction")
    assert stop["reason"] == "EVDisconnected"
    await daemon.wait_status("Available")


@pytest.mark.emulated
async def test_lock_failure_in_a_session(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await daemon.fault("lock_failure")
    # The simulator reports it at once; a lock driver finds it when the unlock fails.
    await daemon.tap("AABBCCDD")
    assert (await daemon.wait_status("Faulted"))["errorCode"] == "ConnectorLockFailure"
    assert (await daemon.log.wait_for("StopTransaction"))["reason"] == "Local"
    c = await daemon.connector()
    assert c["relay_closed"] is False and c["locked"] is True
    await daemon.fault("lock_failure", active=False)


@pytest.mark.emulated
async def test_pilot_error_states(daemon: Daemon) -> None:
    await daemon.sim(cp_state="E")
    assert (await daemon.wait_status("Faulted"))["errorCode"] == "EVCommunicationError"
    await daemon.sim(cp_state="A")
    await daemon.wait_status("Available")


@pytest.mark.emulated
async def test_meter_and_reader_failures(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await daemon.fault("meter_offline")
    status = await daemon.wait_status("SuspendedEVSE")
    assert status["errorCode"] == "PowerMeterFailure"
    assert (await daemon.connector())["relay_closed"] is False
    await daemon.fault("meter_offline", active=False)
    await daemon.wait_connector(lambda c: c["relay_closed"])
    await daemon.fault("reader_offline", connector=0)
    status = await daemon.log.wait_for(
        "StatusNotification", lambda p: p["connectorId"] == 0 and p["errorCode"] == "ReaderFailure"
    )
    assert status["status"] == "Available"


async def test_lock_failure_prevents_energizing(daemon: Daemon) -> None:
    # Found at once by the simulator, by the lock driver when it fails to lock (emulated).
    await daemon.fault("lock_failure")
    await daemon.sim(cp_state="C")
    await daemon.tap("BB01")
    await daemon.log.wait_for("Authorize")
    status = await daemon.wait_status("Faulted")
    assert status["errorCode"] == "ConnectorLockFailure"
    assert daemon.log.calls("StartTransaction") == []
    assert (await daemon.connector())["relay_closed"] is False


async def test_minimum_status_duration(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"MinimumStatusDuration": 1}})
    await d.wait_status("Available")
    await d.sim(cp_state="B")
    await asyncio.sleep(0.3)
    await d.sim(cp_state="A")  # Preparing lasted 0.3 s: never reported
    await asyncio.sleep(1.5)
    await d.sim(cp_state="B")
    await d.wait_status("Preparing", timeout=5)
    statuses = [p["status"] for p in d.log.calls("StatusNotification") if p["connectorId"] == 1]
    assert statuses == ["Available", "Preparing"]


@pytest.mark.parametrize(
    ("fault", "error_code"),
    [
        ("diode_fault", "EVCommunicationError"),
        ("ev_communication_lost", "EVCommunicationError"),
        ("over_temperature", "HighTemperature"),
    ],
)
@pytest.mark.emulated
async def test_controller_faults_in_a_session(daemon: Daemon, fault: str, error_code: str) -> None:
    await charge_session_start(daemon)
    await daemon.fault(fault)
    assert (await daemon.wait_status("Faulted"))["errorCode"] == error_code
    c = await daemon.connector()
    assert c["relay_closed"] is False and c["offered_current_a"] == 0
    await daemon.fault(fault, active=False)
    assert (await _leaves_faulted(daemon))["errorCode"] == "NoError"


async def test_contactor_that_does_not_close(daemon: Daemon) -> None:
    await daemon.fault("contactor_failed_to_close")
    await daemon.sim(cp_state="C")
    await daemon.tap("AABBCCDD")  # known at once (simulator) or when the close fails (driver)
    status = await daemon.wait_status("Faulted")
    assert status["errorCode"] == "PowerSwitchFailure"
    c = await daemon.connector()
    assert c["relay_closed"] is False and c["offered_current_a"] == 0
    # Repaired: the next vehicle gets a new attempt, with no reboot.
    await daemon.fault("contactor_failed_to_close", active=False)
    await daemon.sim(cp_state="A")
    await daemon.wait_status("Available")
    await charge_session_start(daemon, "AABBCC02")
