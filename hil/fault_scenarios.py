"""Bench scenarios for each hardware fault: what the CSMS must see, and the way back.

Fault names are those of ``hal.interfaces.Fault`` (and of ``/api/v1/sim/faults``); the
errorCodes are OCPP 1.6 StatusNotification's, as the status table in the README maps them.
OCPP 2.0.1's StatusNotification has none and no status of the station as a whole: there
the scenarios check the connector status and the contactor (``hil.wire``), and the parts
about connector 0 do not apply.
"""

from __future__ import annotations

from hil.bench import Bench, Status
from hil.scenario import scenario


def _not_faulted(status: str) -> bool:
    return status != "Faulted"


async def _clears(bench: Bench, fault: str, connector: int | None = None) -> Status:
    """Clear ``fault``: the connector leaves Faulted and reports NoError."""
    await bench.clear_fault(fault, connector)
    return await bench.wait_status(_not_faulted, "NoError")


async def _faulted_in_session(bench: Bench, fault: str, error_code: str) -> str:
    """A session; the fault: Faulted with ``error_code``, energy cut; cleared: back, stop."""
    session = await bench.start_session()
    async with bench.fault(fault):
        faulted = await bench.wait_status("Faulted", error_code)
        await bench.wait_relay(False)
        back = await _clears(bench, fault)
    stop = await bench.stop_by_tap(session)
    await bench.wait_status("Finishing")
    await bench.unplug()
    return (
        f"{faulted}, contactor opened; cleared to {back.status}; "
        f"transaction {session.transaction_id} stopped {stop.reason}"
    )


@scenario("fault_rcd_trip")
async def rcd_trip(bench: Bench) -> str:
    """An RCD trip in a session: GroundFailure, contactor open; the session goes on once reset."""
    session = await bench.start_session()
    async with bench.fault("rcd_trip"):
        faulted = await bench.wait_status("Faulted", "GroundFailure")
        await bench.wait_relay(False)
        await _clears(bench, "rcd_trip")
    await bench.wait_relay(True)
    await bench.stop_by_tap(session)
    await bench.wait_status("Finishing")
    await bench.unplug()
    return f"{faulted}, contactor opened and closed again; transaction {session.transaction_id}"


@scenario("fault_contactor_welded")
async def contactor_welded(bench: Bench) -> str:
    """A welded contactor, found when the session stops: PowerSwitchFailure until cleared."""
    session = await bench.start_session()
    before = bench.mark()  # the Faulted status and the StopTransaction come in any order
    async with bench.fault("contactor_welded"):
        await bench.stop_by_tap(session)
        faulted = await bench.wait_status("Faulted", "PowerSwitchFailure", since=before)
        await _clears(bench, "contactor_welded")
    await bench.unplug()
    return f"transaction {session.transaction_id} stopped Local, then {faulted}"


@scenario("fault_contactor_failed_to_close")
async def contactor_failed_to_close(bench: Bench) -> str:
    """A contactor that does not close when a session starts: PowerSwitchFailure; a reset
    after the repair brings the connector back."""
    async with bench.fault("contactor_failed_to_close"):
        await bench.set_pilot("C")
        await bench.tap()
        faulted = await bench.wait_status("Faulted", "PowerSwitchFailure")
    await bench.set_pilot("A")
    # The contactor driver keeps this fault until a close succeeds, and a Faulted connector
    # never tries one: after the repair the CSMS resets the station.
    reset = await bench.reset("Hard")
    await bench.wait_status("Available", "NoError", since=reset)
    kind = bench.wire.reset("Hard")["type"]
    return f"{faulted} while starting; Available after the repair and a Reset {kind}"


@scenario("fault_overcurrent")
async def overcurrent(bench: Bench) -> str:
    """The vehicle draws more than offered: OverCurrentFailure, cut off until it leaves."""
    session = await bench.start_session()
    async with bench.fault("overcurrent"):
        faulted = await bench.wait_status("Faulted", "OverCurrentFailure")
        await bench.wait_relay(False)
    await bench.set_pilot("A")
    await bench.expect_stop(session, "EVDisconnected")
    await bench.wait_status("Available")
    return f"{faulted}; transaction {session.transaction_id} stopped EVDisconnected"


@scenario("fault_lock_failure")
async def lock_failure(bench: Bench) -> str:
    """A cable lock that fails in a session: ConnectorLockFailure, the session stops."""
    session = await bench.start_session()
    before = bench.mark()  # found at once (simulated) or when the unlock fails (driver)
    async with bench.fault("lock_failure"):
        await bench.tap()
        await bench.expect_stop(session, "Local")
        faulted = await bench.wait_status("Faulted", "ConnectorLockFailure", since=before)
        await bench.wait_relay(False)
        await bench.clear_fault("lock_failure")
    await bench.set_pilot("A")
    await bench.wait_status("Available", "NoError")
    report = "" if bench.wire.error_codes else " (ConnectorPlugRetentionLock Problem notified)"
    return f"{faulted}{report}; transaction {session.transaction_id} stopped Local"


@scenario("fault_meter_offline")
async def meter_offline(bench: Bench) -> str:
    """The meter stops answering in a session: SuspendedEVSE/PowerMeterFailure, then resumes."""
    session = await bench.start_session()
    async with bench.fault("meter_offline"):
        suspended = await bench.wait_status("SuspendedEVSE", "PowerMeterFailure")
        await bench.wait_relay(False)
        await bench.clear_fault("meter_offline")
        await bench.wait_status(bench.charging, "NoError")
    await bench.stop_by_tap(session)
    await bench.wait_status("Finishing")
    await bench.unplug()
    how = "" if bench.wire.error_codes else ", contactor open"
    return f"{suspended}{how}, resumed; transaction {session.transaction_id}"


@scenario("fault_reader_offline")
async def reader_offline(bench: Bench) -> str:
    """The RFID reader disappears: connector 0 reports ReaderFailure, then NoError."""
    bench.require_station_status("a reader failure")
    async with bench.fault("reader_offline", 0):
        failed = await bench.wait_status(lambda _s: True, "ReaderFailure", connector=0)
        await bench.clear_fault("reader_offline", 0)
        await bench.wait_status(lambda _s: True, "NoError", connector=0)
    return f"connector 0 {failed}, then NoError"


@scenario("fault_diode_fault")
async def diode_fault(bench: Bench) -> str:
    """A diode fault of the vehicle in a session: EVCommunicationError."""
    return await _faulted_in_session(bench, "diode_fault", "EVCommunicationError")


@scenario("fault_ev_communication_lost")
async def ev_communication_lost(bench: Bench) -> str:
    """The EVSE pilot controller goes silent in a session: EVCommunicationError."""
    return await _faulted_in_session(bench, "ev_communication_lost", "EVCommunicationError")


@scenario("fault_over_temperature")
async def over_temperature(bench: Bench) -> str:
    """Over-temperature in a session: HighTemperature."""
    return await _faulted_in_session(bench, "over_temperature", "HighTemperature")


@scenario("fault_pilot_error")
async def pilot_error(bench: Bench) -> str:
    """Control pilot state E (shorted to PE): EVCommunicationError until unplugged."""
    await bench.set_pilot("E")
    faulted = await bench.wait_status("Faulted", "EVCommunicationError")
    await bench.unplug()
    return f"{faulted}, Available once unplugged"


@scenario("fault_tamper")
async def tamper(bench: Bench) -> str:
    """The enclosure opened in a session: a security event, OtherError on connector 0, no stop."""
    session = await bench.start_session()
    before = bench.mark()
    station_status = bench.wire.station_status  # 2.0.1: no connector 0 to report it on
    async with bench.fault("tamper", 0):
        event = await bench.wait_for(
            "SecurityEventNotification",
            lambda p: p["type"] == "TamperDetectionActivated",
            since=before,
        )
        if station_status:
            await bench.wait_status(
                lambda status: status != "Faulted", "OtherError", connector=0, since=before
            )
        await bench.wait_current(bench.charging)  # the session goes on
        await bench.clear_fault("tamper", 0)
        if station_status:
            await bench.wait_status(_not_faulted, "NoError", connector=0)
    await bench.stop_by_tap(session)
    await bench.wait_status("Finishing")
    await bench.unplug()
    return (
        f"TamperDetectionActivated at {event['timestamp']}; "
        f"transaction {session.transaction_id} charged on"
    )


@scenario("fault_emergency_stop")
async def emergency_stop(bench: Bench) -> str:
    """The emergency stop pressed in a session: it stops EmergencyStop, Faulted."""
    session = await bench.start_session()
    before = bench.mark()
    async with bench.fault("emergency_stop", 0):
        await bench.expect_stop(session, "EmergencyStop")
        await bench.wait_relay(False)
        await bench.wait_status("Faulted", since=before)
        await bench.clear_fault("emergency_stop", 0)
        await bench.wait_status(_not_faulted)
    await bench.unplug()
    return f"transaction {session.transaction_id} stopped EmergencyStop; Faulted until released"
