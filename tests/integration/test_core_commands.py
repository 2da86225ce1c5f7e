"""Item 6: CSMS-initiated Core requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.integration.harness import Daemon, charge_session_start

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]


@pytest.mark.emulated
async def test_remote_start_authorizes_first(daemon: Daemon) -> None:
    await daemon.sim(cp_state="B")
    answer = await daemon.log.call(
        "RemoteStartTransaction", {"idTag": "REMOTE-TAG-012345678", "connectorId": 1}
    )
    assert answer["status"] == "Accepted"
    assert (await daemon.log.wait_for("Authorize"))["idTag"] == "REMOTE-TAG-012345678"
    start = await daemon.log.wait_for("StartTransaction")
    assert start["idTag"] == "REMOTE-TAG-012345678"
    await daemon.sim(cp_state="C")
    await daemon.wait_status("Charging")


async def test_remote_start_without_authorize_and_before_plug(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"AuthorizeRemoteTxRequests": False}})
    await d.wait_status("Available")  # sent once the BootNotification.conf is processed
    answer = await d.log.call("RemoteStartTransaction", {"idTag": "R2"})
    assert answer["status"] == "Accepted"
    await d.wait_status("Preparing")
    await d.sim(cp_state="C")
    await d.log.wait_for("StartTransaction")
    assert d.log.calls("Authorize") == []


@pytest.mark.parametrize("connector", [0, 2, -1])
async def test_remote_start_rejected_for_bad_connector(daemon: Daemon, connector: int) -> None:
    answer = await daemon.log.call(
        "RemoteStartTransaction", {"idTag": "R3", "connectorId": connector}
    )
    assert answer["status"] == "Rejected"


async def test_remote_start_rejected_when_occupied(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    answer = await daemon.log.call("RemoteStartTransaction", {"idTag": "R4", "connectorId": 1})
    assert answer["status"] == "Rejected"


async def test_remote_start_profile_limits_the_session(daemon: Daemon) -> None:
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        },
    }
    bad_profiles = [
        dict(profile, chargingProfilePurpose="TxDefaultProfile"),  # §5.16.2: TxProfile only
        dict(profile, transactionId=1),  # no transaction to name yet
        dict(
            profile,
            chargingSchedule={
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 10, "limit": 16.0}],
            },
        ),
    ]
    for bad in bad_profiles:
        answer = await daemon.log.call(
            "RemoteStartTransaction", {"idTag": "R6", "chargingProfile": bad}
        )
        assert answer["status"] == "Rejected"
    answer = await daemon.log.call(
        "RemoteStartTransaction", {"idTag": "R5", "chargingProfile": profile}
    )
    assert answer["status"] == "Accepted"
    await daemon.sim(cp_state="C")
    await daemon.log.wait_for("StartTransaction")
    await daemon.wait_connector(
        lambda c: c["status"] == "Charging" and abs(c["offered_current_a"] - 16.0) < 0.25
    )


async def test_change_availability_accepted_scheduled_rejected_and_persisted(
    daemon: Daemon,
) -> None:
    answer = await daemon.log.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert answer["status"] == "Accepted"
    await daemon.wait_status("Unavailable")
    await daemon.sim(cp_state="B")
    await daemon.tap("A701")
    await daemon.log.wait_for("Authorize")
    await daemon.wait_log(r"authorized but no connector can take it")
    assert daemon.log.calls("StartTransaction") == []
    assert (await daemon.log.call("ChangeAvailability", {"connectorId": 3, "type": "Operative"}))[
        "status"
    ] == "Rejected"
    # Persisted across a restart.
    await daemon.stop()
    daemon.mark()
    await daemon.start()
    first = await daemon.log.wait_for(
        "StatusNotification", lambda p: p["connectorId"] == 1, since=daemon._since
    )
    assert first["status"] == "Unavailable"  # never shown Available after the restart
    daemon.mark()
    await daemon.log.call("ChangeAvailability", {"connectorId": 0, "type": "Operative"})
    await daemon.wait_status("Available")
    await charge_session_start(daemon, "A702")
    answer = await daemon.log.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert answer["status"] == "Scheduled"
    await daemon.tap("A702")
    await daemon.log.wait_for("StopTransaction")
    await daemon.wait_status("Unavailable")


async def test_station_inoperative_reports_connector_zero(daemon: Daemon) -> None:
    answer = await daemon.log.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
    assert answer["status"] == "Accepted"
    await daemon.wait_status("Unavailable", connector=0)
    await daemon.wait_status("Unavailable", connector=1)


async def test_get_configuration_all_listed_and_unknown(daemon: Daemon) -> None:
    everything = await daemon.log.call("GetConfiguration", {})
    keys = {k["key"]: k for k in everything["configurationKey"]}
    for key in (
        "HeartbeatInterval",
        "MeterValuesSampledData",
        "NumberOfConnectors",
        "SupportedFeatureProfiles",
        "TransactionMessageAttempts",
        "WebSocketPingInterval",
    ):
        assert key in keys
    assert "AuthorizationKey" not in keys
    assert keys["NumberOfConnectors"]["readonly"] is True
    assert keys["HeartbeatInterval"]["readonly"] is False
    some = await daemon.log.call(
        "GetConfiguration", {"key": ["HeartbeatInterval", "Nope", "AuthorizationKey"]}
    )
    assert [k["key"] for k in some["configurationKey"]] == ["HeartbeatInterval"]
    assert sorted(some["unknownKey"]) == ["AuthorizationKey", "Nope"]


@pytest.mark.parametrize(
    ("key", "value", "status"),
    [
        ("MeterValueSampleInterval", "10", "Accepted"),
        ("MeterValueSampleInterval", "-1", "Rejected"),
        ("MeterValueSampleInterval", "ten", "Rejected"),
        ("NumberOfConnectors", "4", "Rejected"),
        ("LocalPreAuthorize", "maybe", "Rejected"),
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage", "Accepted"),
        ("MeterValuesSampledData", "Energy.Active.Import.Register,RPM", "Rejected"),
        ("NoSuchKey", "1", "NotSupported"),
    ],
)
async def test_change_configuration_answers(
    daemon: Daemon, key: str, value: str, status: str
) -> None:
    answer = await daemon.log.call("ChangeConfiguration", {"key": key, "value": value})
    assert answer["status"] == status


async def test_change_configuration_persists(daemon: Daemon) -> None:
    await daemon.log.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "42"})
    await daemon.kill()
    await daemon.start()
    answer = await daemon.log.call("GetConfiguration", {"key": ["MeterValueSampleInterval"]})
    assert answer["configurationKey"][0]["value"] == "42"


async def test_clear_cache(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"LocalPreAuthorize": True}})
    await d.sim(cp_state="B")
    await d.tap("CC01")
    await d.log.wait_for("StartTransaction")
    await d.tap("CC01")
    await d.log.wait_for("StopTransaction")
    await d.wait_queue_empty()  # its answer (and cache update) is processed
    assert (await d.log.call("ClearCache", {}))["status"] == "Accepted"
    await d.sim(cp_state="A")
    await d.sim(cp_state="B")
    d.mark()
    await d.tap("CC01")
    await d.log.wait_for("StartTransaction", since=d._since)
    assert len(d.log.calls("Authorize")) == 2  # the cache was empty: asked again


async def test_data_transfer_unknown_vendor(daemon: Daemon) -> None:
    answer = await daemon.log.call("DataTransfer", {"vendorId": "com.example", "messageId": "x"})
    assert answer == {"status": "UnknownVendorId"}
