"""Smart Charging profile, end to end: profiles from the CSMS to the offered current."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.harness import Daemon, charge_session_start

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]

# The board's maximum (BoardSettings default); the simulated EV takes what is offered.
BOARD_MAX_A = 32.0


def profile(
    profile_id: int,
    periods: list[tuple[int, float]] | list[dict[str, Any]],
    *,
    purpose: str = "TxDefaultProfile",
    kind: str = "Relative",
    stack_level: int = 0,
    unit: str = "A",
    **extra: Any,
) -> dict[str, Any]:
    schedule_periods = [
        p if isinstance(p, dict) else {"startPeriod": p[0], "limit": p[1]} for p in periods
    ]
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": schedule_periods,
    }
    schedule.update(extra.pop("schedule", {}))
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **extra,
    }


def absolute_from_now(
    profile_id: int, periods: list[tuple[int, float]], **kw: Any
) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return profile(profile_id, periods, kind="Absolute", schedule={"startSchedule": start}, **kw)


async def set_profile(d: Daemon, body: dict[str, Any], connector: int = 1) -> str:
    answer = await d.log.call(
        "SetChargingProfile", {"connectorId": connector, "csChargingProfiles": body}
    )
    return str(answer["status"])


async def offered(d: Daemon, amps: float, connector: int = 1, timeout: float = 10) -> None:
    await d.wait_connector(
        lambda c: abs(c["offered_current_a"] - amps) < 0.25, connector, timeout=timeout
    )


async def test_tx_default_profile_follows_each_period(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    await offered(daemon, BOARD_MAX_A)
    status = await set_profile(daemon, absolute_from_now(1, [(0, 16.0), (3, 10.0), (6, 20.0)]))
    assert status == "Accepted"
    await offered(daemon, 16.0)
    await offered(daemon, 10.0)
    await offered(daemon, 20.0)
    assert (await daemon.connector())["status"] == "Charging"


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_recurring_and_validity_window_switch_at_their_boundaries(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    now = datetime.now(UTC)
    # Daily, 3 s long, its next run starting in 3 s (stack level 1 prevails while it runs).
    daily = profile(
        1,
        [(0, 12.0)],
        kind="Recurring",
        recurrencyKind="Daily",
        stack_level=1,
        schedule={
            "startSchedule": stamp(now + timedelta(seconds=3) - timedelta(days=1)),
            "duration": 3,
        },
    )
    # Valid for the next 6 s only.
    window = profile(2, [(0, 20.0)], validTo=stamp(now + timedelta(seconds=6)))
    assert await set_profile(daemon, window) == "Accepted"
    assert await set_profile(daemon, daily) == "Accepted"
    await offered(daemon, 20.0)
    await offered(daemon, 12.0)  # today's run of the daily profile
    await offered(daemon, BOARD_MAX_A)  # both over: no limit
    assert (await daemon.connector())["limit_a"] is None


async def test_watt_profile_is_converted_with_phases(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    # 3 phases at 230 V: 11040 W is 16 A; on one phase 3680 W is 16 A as well.
    assert await set_profile(daemon, profile(1, [(0, 11040.0)], unit="W")) == "Accepted"
    await offered(daemon, 16.0)
    one_phase = profile(2, [{"startPeriod": 0, "limit": 2300.0, "numberPhases": 1}], unit="W")
    assert await set_profile(daemon, one_phase) == "Accepted"  # same level: replaces
    await offered(daemon, 10.0)


async def test_tx_profile_needs_a_transaction_and_overrides_the_default(daemon: Daemon) -> None:
    tx_profile = profile(5, [(0, 12.0)], purpose="TxProfile", stack_level=1)
    assert await set_profile(daemon, tx_profile) == "Rejected"
    assert await set_profile(daemon, profile(1, [(0, 20.0)], stack_level=3)) == "Accepted"
    await charge_session_start(daemon)
    await offered(daemon, 20.0)
    tx_id = (await daemon.wait_connector(lambda c: c["transaction_id"] is not None))[
        "transaction_id"
    ]
    wrong = dict(tx_profile, transactionId=tx_id + 100)
    assert await set_profile(daemon, wrong) == "Rejected"
    assert await set_profile(daemon, dict(tx_profile, transactionId=tx_id)) == "Accepted"
    await offered(daemon, 12.0)
    # The transaction ends: its TxProfile goes, the default applies to the next one.
    await daemon.tap("AABBCCDD")
    await daemon.log.wait_for("StopTransaction")
    await daemon.sim(cp_state="A")
    daemon.mark()
    await charge_session_start(daemon, "AABBCCEE")
    await offered(daemon, 20.0)
    answer = await daemon.log.call("ClearChargingProfile", {"id": 5})
    assert answer["status"] == "Unknown"


@pytest.mark.emulated
async def test_below_six_amps_pauses_and_resumes(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    status = await set_profile(daemon, absolute_from_now(1, [(0, 4.0), (3, 8.0)]))
    assert status == "Accepted"
    await daemon.wait_status("SuspendedEVSE")
    connector = await daemon.connector()
    assert connector["offered_current_a"] == 0.0
    assert connector["relay_closed"] is False
    await daemon.wait_status("Charging")
    await offered(daemon, 8.0)


@pytest.mark.emulated
async def test_station_maximum_is_shared_and_rebalanced(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(connectors=2)
    station_max = profile(1, [(0, 20.0)], purpose="ChargePointMaxProfile", kind="Absolute")
    station_max["chargingSchedule"]["startSchedule"] = "2020-01-01T00:00:00Z"
    assert await set_profile(d, dict(station_max, chargingProfilePurpose="TxProfile")) == "Rejected"
    assert await set_profile(d, station_max, connector=1) == "Rejected"  # connector 0 only
    assert await set_profile(d, station_max, connector=0) == "Accepted"
    await d.sim(1, cp_state="B")
    await d.tap("AA01", connector=1)
    await d.log.wait_for("StartTransaction", lambda p: p["connectorId"] == 1)
    await d.sim(1, cp_state="C")
    await offered(d, 20.0, connector=1)
    await d.sim(2, cp_state="B")
    await d.tap("AA02", connector=2)
    await d.log.wait_for("StartTransaction", lambda p: p["connectorId"] == 2)
    await d.sim(2, cp_state="C")
    await offered(d, 10.0, connector=1)
    await offered(d, 10.0, connector=2)
    # Less than 6 A each: the most recent session gives way.
    tighter = dict(station_max, chargingSchedule=dict(station_max["chargingSchedule"]))
    tighter["chargingSchedule"]["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 10.0}]
    assert await set_profile(d, tighter, connector=0) == "Accepted"
    await offered(d, 10.0, connector=1)
    await offered(d, 0.0, connector=2)
    await d.wait_status("SuspendedEVSE", connector=2)
    # The first session ends: the second gets the whole station maximum.
    await d.tap("AA01", connector=1)
    await d.log.wait_for("StopTransaction")
    await offered(d, 10.0, connector=2)
    await d.wait_status("Charging", connector=2)


async def test_clear_charging_profile_by_each_criterion(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(connectors=2)
    assert await set_profile(d, profile(1, [(0, 10.0)], stack_level=1), connector=1) == "Accepted"
    assert await set_profile(d, profile(2, [(0, 12.0)], stack_level=2), connector=1) == "Accepted"
    assert await set_profile(d, profile(3, [(0, 14.0)], stack_level=1), connector=2) == "Accepted"
    station = profile(4, [(0, 30.0)], purpose="ChargePointMaxProfile")
    assert await set_profile(d, station, connector=0) == "Accepted"
    assert await set_profile(d, profile(5, [(0, 16.0)], stack_level=4), connector=2) == "Accepted"

    async def clear(**criteria: Any) -> str:
        return str((await d.log.call("ClearChargingProfile", criteria))["status"])

    assert await clear(id=99) == "Unknown"
    assert await clear(id=2) == "Accepted"
    assert await clear(id=2) == "Unknown"
    assert await clear(chargingProfilePurpose="ChargePointMaxProfile") == "Accepted"
    assert await clear(stackLevel=4) == "Accepted"
    assert await clear(connectorId=2, stackLevel=3) == "Unknown"
    assert await clear(connectorId=2) == "Accepted"
    composite = await d.log.call("GetCompositeSchedule", {"connectorId": 1, "duration": 60})
    assert composite["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 10.0
    assert await clear() == "Accepted"
    assert await clear() == "Unknown"


async def test_composite_schedule_in_amps_and_watts(daemon: Daemon) -> None:
    assert await set_profile(daemon, profile(1, [(0, 16.0), (60, 10.0)])) == "Accepted"
    station = profile(2, [(0, 13.0), (120, 30.0)], purpose="ChargePointMaxProfile")
    assert await set_profile(daemon, station, connector=0) == "Accepted"
    amps = await daemon.log.call("GetCompositeSchedule", {"connectorId": 1, "duration": 300})
    assert amps["status"] == "Accepted"
    schedule = amps["chargingSchedule"]
    assert schedule["chargingRateUnit"] == "A"
    assert [(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]] == [
        (0, 13.0),
        (60, 10.0),
    ]
    watts = await daemon.log.call(
        "GetCompositeSchedule", {"connectorId": 1, "duration": 300, "chargingRateUnit": "W"}
    )
    periods = watts["chargingSchedule"]["chargingSchedulePeriod"]
    assert watts["chargingSchedule"]["chargingRateUnit"] == "W"
    assert [(p["startPeriod"], p["limit"]) for p in periods] == [(0, 8970.0), (60, 6900.0)]
    station_only = await daemon.log.call(
        "GetCompositeSchedule", {"connectorId": 0, "duration": 300}
    )
    limits = [p["limit"] for p in station_only["chargingSchedule"]["chargingSchedulePeriod"]]
    assert limits == [13.0, 30.0]
    unknown = await daemon.log.call("GetCompositeSchedule", {"connectorId": 7, "duration": 60})
    assert unknown == {"status": "Rejected"}
    forever = await daemon.log.call(
        "GetCompositeSchedule", {"connectorId": 1, "duration": 2**31 - 1}
    )
    assert forever["chargingSchedule"]["duration"] == 31 * 86400  # cut, and says so


async def test_remote_start_profile_becomes_the_tx_profile(daemon: Daemon) -> None:
    assert await set_profile(daemon, profile(1, [(0, 20.0)])) == "Accepted"
    tx_profile = profile(7, [(0, 14.0)], purpose="TxProfile")
    await daemon.sim(cp_state="B")
    answer = await daemon.log.call(
        "RemoteStartTransaction",
        {"idTag": "0A0B0C0D", "connectorId": 1, "chargingProfile": tx_profile},
    )
    assert answer["status"] == "Accepted"
    await daemon.log.wait_for("StartTransaction")
    await daemon.sim(cp_state="C")
    await daemon.wait_status("Charging")
    await offered(daemon, 14.0)
    # The profile got the transaction's id: the CSMS replaces it at the same stack level.
    tx_id = (await daemon.wait_connector(lambda c: c["transaction_id"] is not None))[
        "transaction_id"
    ]
    update = profile(8, [(0, 18.0)], purpose="TxProfile", transactionId=tx_id)
    assert await set_profile(daemon, update) == "Accepted"
    await offered(daemon, 18.0)
    assert (await daemon.log.call("ClearChargingProfile", {"id": 7}))["status"] == "Unknown"


async def test_profiles_survive_a_restart(daemon: Daemon) -> None:
    assert await set_profile(daemon, profile(1, [(0, 11.0)], stack_level=2)) == "Accepted"
    station = profile(2, [(0, 25.0)], purpose="ChargePointMaxProfile")
    assert await set_profile(daemon, station, connector=0) == "Accepted"
    await daemon.stop()
    daemon.mark()
    await daemon.start()
    await daemon.wait_status("Available")
    await charge_session_start(daemon)
    await offered(daemon, 11.0)
    composite = await daemon.log.call("GetCompositeSchedule", {"connectorId": 0, "duration": 10})
    assert composite["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 25.0


BAD_PROFILES: dict[str, dict[str, Any]] = {
    "stack level above ChargeProfileMaxStackLevel": profile(1, [(0, 10.0)], stack_level=9),
    "more periods than ChargingScheduleMaxPeriods": profile(1, [(i * 10, 10.0) for i in range(5)]),
    "first period not at 0": profile(1, [(5, 10.0)]),
    "periods out of order": profile(1, [(0, 10.0), (30, 8.0), (20, 6.0)]),
    "negative limit": profile(1, [(0, -1.0)]),
    "numberPhases 4": profile(1, [{"startPeriod": 0, "limit": 10.0, "numberPhases": 4}]),
    "Recurring without recurrencyKind": profile(
        1, [(0, 10.0)], kind="Recurring", schedule={"startSchedule": "2024-01-01T00:00:00Z"}
    ),
    "Relative with a startSchedule": profile(
        1, [(0, 10.0)], schedule={"startSchedule": "2024-01-01T00:00:00Z"}
    ),
    "validTo before validFrom": profile(
        1, [(0, 10.0)], validFrom="2030-01-02T00:00:00Z", validTo="2030-01-01T00:00:00Z"
    ),
    "zero duration": profile(1, [(0, 10.0)], schedule={"duration": 0}),
    "transactionId on a TxDefaultProfile": profile(1, [(0, 10.0)], transactionId=1),
    "bad validFrom": profile(1, [(0, 10.0)], validFrom="yesterday at noon"),
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
async def test_semantically_wrong_profiles_are_rejected(make_daemon: MakeDaemon, case: str) -> None:
    d = await make_daemon(
        ocpp={"config": {"ChargeProfileMaxStackLevel": 8, "ChargingScheduleMaxPeriods": 4}}
    )
    assert await set_profile(d, BAD_PROFILES[case]) == "Rejected"
    assert await set_profile(d, profile(1, [(0, 10.0)]), connector=5) == "Rejected"


async def test_installed_profiles_are_bounded_and_keys_reported(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={
            "config": {
                "MaxChargingProfilesInstalled": 2,
                "ChargingScheduleAllowedChargingRateUnit": "Current",
            }
        }
    )
    assert await set_profile(d, profile(9, [(0, 4000.0)], unit="W")) == "Rejected"
    assert await set_profile(d, profile(1, [(0, 10.0)], stack_level=0)) == "Accepted"
    assert await set_profile(d, profile(2, [(0, 10.0)], stack_level=1)) == "Accepted"
    assert await set_profile(d, profile(3, [(0, 10.0)], stack_level=2)) == "Rejected"
    assert await set_profile(d, profile(2, [(0, 12.0)], stack_level=2)) == "Accepted"  # same id
    answer = await d.log.call("GetConfiguration", {})
    keys = {k["key"]: k for k in answer["configurationKey"]}
    assert "SmartCharging" in keys["SupportedFeatureProfiles"]["value"].split(",")
    for key in (
        "ChargeProfileMaxStackLevel",
        "ChargingScheduleAllowedChargingRateUnit",
        "ChargingScheduleMaxPeriods",
        "MaxChargingProfilesInstalled",
    ):
        assert keys[key]["readonly"] is True
    assert keys["MaxChargingProfilesInstalled"]["value"] == "2"


async def test_not_supported_without_the_profile(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"SupportedFeatureProfiles": "Core"}})
    assert await set_profile(d, profile(1, [(0, 10.0)])) == "NotSupported"
