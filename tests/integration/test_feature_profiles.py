"""SupportedFeatureProfiles is honoured: a profile left out is unsupported in every way.

Its operations answer as OCPP 1.6 edition 2 says for an unsupported feature,
its configuration keys are unknown to the CSMS, and its behaviour is off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from firmware.clock import iso
from hil.csms import CallErrorReceived
from tests.integration.harness import Daemon, charge_session_start

MakeDaemon = Callable[..., Awaitable[Daemon]]

ALL = "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger,Reservation,SmartCharging"
BOARD_MAX_A = 32.0

LEFT_OUT_KEYS = [
    "LocalAuthListEnabled",
    "LocalAuthListMaxLength",
    "SendLocalListMaxLength",
    "ReserveConnectorZeroSupported",
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "ConnectorSwitch3to1PhaseSupported",
    "MaxChargingProfilesInstalled",
]


def station_max_profile(amps: float) -> dict[str, Any]:
    return {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": amps}],
        },
    }


def tx_profile(amps: float) -> dict[str, Any]:
    return {**station_max_profile(amps), "chargingProfilePurpose": "TxProfile"}


def reserve_now(tag: str, reservation_id: int = 1) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "expiryDate": iso(datetime.now(UTC) + timedelta(hours=1)),
        "idTag": tag,
        "reservationId": reservation_id,
    }


async def answer(d: Daemon, action: str, payload: dict[str, Any]) -> Any:
    return await d.log.call(action, payload)


async def not_supported(d: Daemon, action: str, payload: dict[str, Any]) -> None:
    with pytest.raises(CallErrorReceived) as caught:
        await d.log.call(action, payload)
    assert caught.value.code == "NotSupported", caught.value


async def test_without_local_list_reservation_and_smart_charging(
    make_daemon: MakeDaemon,
) -> None:
    d = await make_daemon(
        ocpp={"config": {"SupportedFeatureProfiles": "Core,FirmwareManagement,RemoteTrigger"}}
    )
    # The keys of the left-out profiles are unknown to the CSMS.
    everything = await answer(d, "GetConfiguration", {})
    listed = {entry["key"] for entry in everything["configurationKey"]}
    assert not listed & set(LEFT_OUT_KEYS)
    assert "SupportedFileTransferProtocols" in listed
    named = await answer(d, "GetConfiguration", {"key": LEFT_OUT_KEYS})
    assert named.get("configurationKey", []) == [] and named["unknownKey"] == LEFT_OUT_KEYS
    for key in ("LocalAuthListEnabled", "ReserveConnectorZeroSupported"):
        change = await answer(d, "ChangeConfiguration", {"key": key, "value": "true"})
        assert change["status"] == "NotSupported"
    # Local Auth List Management.
    send = {"listVersion": 1, "updateType": "Full", "localAuthorizationList": []}
    assert (await answer(d, "SendLocalList", send))["status"] == "NotSupported"
    assert (await answer(d, "GetLocalListVersion", {}))["listVersion"] == -1
    # Reservation.
    assert (await answer(d, "ReserveNow", reserve_now("RES1")))["status"] == "Rejected"
    assert (await answer(d, "CancelReservation", {"reservationId": 1}))["status"] == "Rejected"
    # Smart Charging.
    set_profile = {"connectorId": 0, "csChargingProfiles": station_max_profile(10.0)}
    assert (await answer(d, "SetChargingProfile", set_profile))["status"] == "NotSupported"
    assert (await answer(d, "ClearChargingProfile", {}))["status"] == "Unknown"
    composite = {"connectorId": 1, "duration": 600}
    assert (await answer(d, "GetCompositeSchedule", composite))["status"] == "Rejected"
    remote = {"connectorId": 1, "idTag": "REMOTE1", "chargingProfile": tx_profile(10.0)}
    assert (await answer(d, "RemoteStartTransaction", remote))["status"] == "Rejected"
    # What is left works: Core, and the profiles still listed.
    trigger = {"requestedMessage": "Heartbeat"}
    assert (await answer(d, "TriggerMessage", trigger))["status"] == "Accepted"
    await d.log.wait_for("Heartbeat")
    remote = {"connectorId": 1, "idTag": "REMOTE1"}
    assert (await answer(d, "RemoteStartTransaction", remote))["status"] == "Accepted"
    await d.sim(cp_state="C")
    start = await d.log.wait_for("StartTransaction", lambda p: p["idTag"] == "REMOTE1")
    assert "reservationId" not in start


async def test_behaviour_of_left_out_profiles_is_off(make_daemon: MakeDaemon) -> None:
    # With every profile: a listed tag the list blocks, a reservation, a 10 A station limit.
    d = await make_daemon(ocpp={"config": {"LocalPreAuthorize": True}})
    send = {
        "listVersion": 3,
        "updateType": "Full",
        "localAuthorizationList": [{"idTag": "A1570001", "idTagInfo": {"status": "Blocked"}}],
    }
    assert (await answer(d, "SendLocalList", send))["status"] == "Accepted"
    assert (await answer(d, "ReserveNow", reserve_now("RES1", 5)))["status"] == "Accepted"
    await d.wait_status("Reserved")
    set_profile = {"connectorId": 0, "csChargingProfiles": station_max_profile(10.0)}
    assert (await answer(d, "SetChargingProfile", set_profile))["status"] == "Accepted"
    assert await d.stop() == 0

    # The same station without those profiles; the file still sets one of their keys.
    d.write_config(
        {"ocpp": {"config": {"SupportedFeatureProfiles": "Core", "LocalAuthListEnabled": True}}}
    )
    d.mark()
    await d.start()
    log = d.tail(400)
    assert "reservation 5 dropped: SupportedFeatureProfiles leaves out Reservation" in log
    assert "charging profile(s) [7] dropped" in log
    assert (
        "ocpp.config.LocalAuthListEnabled: accepted but unused: SupportedFeatureProfiles "
        "leaves out LocalAuthListManagement" in log
    )
    await d.wait_status("Available")  # not Reserved: the reservation is gone
    # The local list is not consulted: the CSMS decides on A1570001 (Accepted), on the
    # reserved connector, and no station limit applies.
    await d.sim(cp_state="B")
    await d.tap("A1570001")
    await d.log.wait_for("Authorize", lambda p: p["idTag"] == "A1570001")
    start = await d.log.wait_for("StartTransaction", lambda p: p["idTag"] == "A1570001")
    assert start["connectorId"] == 1 and "reservationId" not in start
    await d.sim(cp_state="C")
    charging = await d.wait_connector(lambda c: c["relay_closed"] and c["status"] == "Charging")
    assert charging["offered_current_a"] == pytest.approx(BOARD_MAX_A)
    assert charging["limit_a"] is None


async def test_without_remote_trigger_and_firmware_management(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"SupportedFeatureProfiles": "Core"}})
    await not_supported(d, "TriggerMessage", {"requestedMessage": "StatusNotification"})
    # ExtendedTriggerMessage is the security extension's, not Remote Trigger's.
    extended = await answer(d, "ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"})
    assert extended == {"status": "Accepted"}
    firmware = {"requestedMessage": "FirmwareStatusNotification"}
    assert await answer(d, "ExtendedTriggerMessage", firmware) == {"status": "NotImplemented"}
    update = {"location": "http://127.0.0.1:1/fw.whl", "retrieveDate": iso(datetime.now(UTC))}
    await not_supported(d, "UpdateFirmware", update)
    await not_supported(d, "GetDiagnostics", {"location": "http://127.0.0.1:1/upload"})
    named = await answer(d, "GetConfiguration", {"key": ["SupportedFileTransferProtocols"]})
    assert named["unknownKey"] == ["SupportedFileTransferProtocols"]
    profiles = await answer(d, "GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    assert profiles["configurationKey"][0]["value"] == "Core"
    # Core is untouched.
    await charge_session_start(d)


async def test_no_firmware_status_without_firmware_management(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"SupportedFeatureProfiles": "Core,RemoteTrigger"}})
    for message in ("FirmwareStatusNotification", "DiagnosticsStatusNotification"):
        trigger = await answer(d, "TriggerMessage", {"requestedMessage": message})
        assert trigger["status"] == "NotImplemented"
    update = {"location": "http://127.0.0.1:1/fw.whl", "retrieveDate": iso(datetime.now(UTC))}
    await not_supported(d, "UpdateFirmware", update)
    since = d.log.mark()
    trigger = await answer(d, "TriggerMessage", {"requestedMessage": "StatusNotification"})
    assert trigger["status"] == "Accepted"
    await d.log.wait_for("StatusNotification", since=since)


async def test_every_profile_by_default(daemon: Daemon) -> None:
    profiles = await answer(daemon, "GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    assert profiles["configurationKey"][0]["value"] == ALL
    named = await answer(daemon, "GetConfiguration", {"key": LEFT_OUT_KEYS})
    assert [entry["key"] for entry in named["configurationKey"]] == LEFT_OUT_KEYS
