"""Charging profiles: semantic checks after the schema, and serialisation back to OCPP."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from ocpp.messages import Call, validate_payload

from firmware.ocpp.frames import validate_call
from firmware.smart_charging import (
    ChargingProfile,
    ChargingSchedulePeriod,
    ProfileError,
    ProfileLimits,
    parse_charging_profile,
    parse_remote_start_profile,
    profile_to_ocpp,
)
from tests.unit.charging_payloads import LIMITS, T0, payload, profile_payloads, schema_checked

DEFAULT = "TxDefaultProfile"

Edit = Callable[[dict[str, Any]], None]


def _schedule(edit: Callable[[dict[str, Any]], None]) -> Edit:
    return lambda profile: edit(profile["chargingSchedule"])


def _periods(*periods: dict[str, Any]) -> Edit:
    return _schedule(lambda s: s.__setitem__("chargingSchedulePeriod", list(periods)))


def _set(key: str, value: Any) -> Edit:
    return lambda profile: profile.__setitem__(key, value)


def _drop(key: str) -> Edit:
    return lambda profile: profile.pop(key)


def _p(start: int, limit: float = 16, **extra: Any) -> dict[str, Any]:
    return {"startPeriod": start, "limit": limit, **extra}


RECURRING = payload(1, DEFAULT, kind="Recurring", recurrency="Daily", start=T0)
PERIODS = "chargingSchedule.chargingSchedulePeriod"

# (base profile, connector, edit) -> ProfileError naming ``field``. Each edited
# profile still passes the OCA schema: these are the checks the schema cannot make.
SEMANTIC_ERRORS: dict[str, tuple[dict[str, Any], int, Edit, str]] = {
    "first period not at 0": (
        payload(1, DEFAULT),
        1,
        _periods(_p(10)),
        f"{PERIODS}[0].startPeriod",
    ),
    "periods repeat a start": (
        payload(1, DEFAULT),
        1,
        _periods(_p(0), _p(100), _p(100)),
        f"{PERIODS}[2].startPeriod",
    ),
    "periods go back": (
        payload(1, DEFAULT),
        1,
        _periods(_p(0), _p(100), _p(50)),
        f"{PERIODS}[2].startPeriod",
    ),
    "negative limit": (payload(1, DEFAULT), 1, _periods(_p(0), _p(60, -1)), f"{PERIODS}[1].limit"),
    "numberPhases 0": (
        payload(1, DEFAULT),
        1,
        _periods(_p(0, numberPhases=0)),
        f"{PERIODS}[0].numberPhases",
    ),
    "numberPhases 4": (
        payload(1, DEFAULT),
        1,
        _periods(_p(0, numberPhases=4)),
        f"{PERIODS}[0].numberPhases",
    ),
    "no periods": (payload(1, DEFAULT), 1, _periods(), PERIODS),
    "more periods than ChargingScheduleMaxPeriods": (
        payload(1, DEFAULT),
        1,
        _periods(*(_p(60 * i) for i in range(LIMITS.max_periods + 1))),
        PERIODS,
    ),
    "Recurring without recurrencyKind": (RECURRING, 1, _drop("recurrencyKind"), "recurrencyKind"),
    "Recurring without startSchedule": (
        RECURRING,
        1,
        _schedule(lambda s: s.pop("startSchedule")),
        "chargingSchedule.startSchedule",
    ),
    "Relative with startSchedule": (
        payload(1, DEFAULT, kind="Relative", start=T0),
        1,
        lambda p: None,
        "chargingSchedule.startSchedule",
    ),
    "validFrom equal to validTo": (
        payload(1, DEFAULT, valid_from=T0, valid_to=T0),
        1,
        lambda p: None,
        "validTo",
    ),
    "validFrom after validTo": (
        payload(1, DEFAULT, valid_from=T0, valid_to=T0 - timedelta(seconds=1)),
        1,
        lambda p: None,
        "validTo",
    ),
    "validFrom not a date-time": (
        payload(1, DEFAULT),
        1,
        _set("validFrom", "tomorrow"),
        "validFrom",
    ),
    "TxProfile on connector 0": (
        payload(1, "TxProfile"),
        0,
        lambda p: None,
        "chargingProfilePurpose",
    ),
    "ChargePointMaxProfile on a connector": (
        payload(1, "ChargePointMaxProfile"),
        1,
        lambda p: None,
        "chargingProfilePurpose",
    ),
    "stack level above ChargeProfileMaxStackLevel": (
        payload(1, DEFAULT, stack=LIMITS.max_stack_level + 1),
        1,
        lambda p: None,
        "stackLevel",
    ),
    "negative stack level": (payload(1, DEFAULT), 1, _set("stackLevel", -1), "stackLevel"),
    "zero duration": (
        payload(1, DEFAULT, duration=0),
        1,
        lambda p: None,
        "chargingSchedule.duration",
    ),
    "negative minChargingRate": (
        payload(1, DEFAULT, min_rate=-6.0),
        1,
        lambda p: None,
        "chargingSchedule.minChargingRate",
    ),
    "transactionId on a TxDefaultProfile": (
        payload(1, DEFAULT, transaction_id=5),
        1,
        lambda p: None,
        "transactionId",
    ),
    "negative connector": (payload(1, DEFAULT), -1, lambda p: None, "connectorId"),
}


@pytest.mark.parametrize(
    ("base", "connector", "edit", "field"), SEMANTIC_ERRORS.values(), ids=SEMANTIC_ERRORS.keys()
)
def test_semantic_errors_name_the_field(
    base: dict[str, Any], connector: int, edit: Edit, field: str
) -> None:
    profile = copy.deepcopy(base)
    edit(profile)
    schema_checked(max(connector, 0), profile)  # the schema lets it through
    with pytest.raises(ProfileError) as info:
        parse_charging_profile(profile, connector_id=connector, limits=LIMITS)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, ValueError)


def test_a_unit_the_station_does_not_allow_is_refused() -> None:
    amps_only = ProfileLimits(max_stack_level=10, max_periods=24, allowed_units=frozenset({"A"}))
    profile = schema_checked(1, payload(1, DEFAULT, unit="W", periods=[(0, 11000)]))
    with pytest.raises(ProfileError) as info:
        parse_charging_profile(profile, connector_id=1, limits=amps_only)
    assert info.value.field == "chargingSchedule.chargingRateUnit"


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_drop("chargingSchedule"), "chargingSchedule"),
        (_drop("chargingProfileId"), "chargingProfileId"),
        (_set("stackLevel", "1"), "stackLevel"),
        (_set("chargingProfilePurpose", "Other"), "chargingProfilePurpose"),
        (_set("chargingProfileKind", None), "chargingProfileKind"),
        (_periods(_p(0, True)), f"{PERIODS}[0].limit"),
        (_periods(_p(0, float("nan"))), f"{PERIODS}[0].limit"),
        (_periods("0:16"), f"{PERIODS}[0]"),
        (
            _schedule(lambda s: s.__setitem__("chargingRateUnit", "kW")),
            "chargingSchedule.chargingRateUnit",
        ),
    ],
)
def test_malformed_data_is_refused_without_the_schema(edit: Edit, field: str) -> None:
    """Profiles read back from storage do not go through the schema; the parser still checks."""
    profile = payload(1, DEFAULT)
    edit(profile)
    with pytest.raises(ProfileError) as info:
        parse_charging_profile(profile, connector_id=1, limits=LIMITS)
    assert info.value.field == field


def test_remote_start_profile_must_be_a_tx_profile_without_transaction() -> None:
    request = {"idTag": "TAG", "connectorId": 1, "chargingProfile": payload(1, "TxProfile")}
    validate_call("RemoteStartTransaction", request)
    profile = parse_remote_start_profile(request["chargingProfile"], connector_id=1, limits=LIMITS)
    assert profile.transaction_id is None
    for wrong, field in [
        (payload(1, DEFAULT), "chargingProfilePurpose"),
        (payload(1, "TxProfile", transaction_id=9), "transactionId"),
    ]:
        validate_call("RemoteStartTransaction", {"idTag": "TAG", "chargingProfile": wrong})
        with pytest.raises(ProfileError) as info:
            parse_remote_start_profile(wrong, connector_id=1, limits=LIMITS)
        assert info.value.field == field


def test_absolute_without_start_schedule_is_anchored_to_the_session() -> None:
    profile = parse_charging_profile(payload(1, DEFAULT), connector_id=1, limits=LIMITS)
    assert profile.schedule.start_schedule is None
    assert profile.session_anchored
    anchored = parse_charging_profile(payload(1, DEFAULT, start=T0), connector_id=1, limits=LIMITS)
    assert not anchored.session_anchored


def test_date_times_with_an_offset_become_utc() -> None:
    raw = payload(1, DEFAULT, kind="Recurring", recurrency="Daily")
    raw["chargingSchedule"]["startSchedule"] = "2024-03-01T23:00:00+01:00"
    raw["validFrom"] = "2024-03-01T00:00:00"  # no zone: UTC
    profile = parse_charging_profile(schema_checked(0, raw), connector_id=0, limits=LIMITS)
    assert profile.schedule.start_schedule == datetime(2024, 3, 1, 22, tzinfo=UTC)
    assert profile.schedule.start_schedule.tzinfo is UTC
    assert profile.valid_from == datetime(2024, 3, 1, tzinfo=UTC)
    assert profile_to_ocpp(profile)["chargingSchedule"]["startSchedule"] == (
        "2024-03-01T22:00:00.000Z"
    )


def test_the_ocpp_package_decimal_payload_is_accepted() -> None:
    """``ocpp.messages.validate_payload`` turns the limits into Decimal; they parse as floats."""
    profile = payload(1, DEFAULT, periods=[(0, 15.9, 1), (60, 6)], min_rate=6.1)
    call = Call("1", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})
    asyncio.run(validate_payload(call, "1.6"))
    converted = call.payload["csChargingProfiles"]
    assert isinstance(converted["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"], Decimal)
    parsed = parse_charging_profile(converted, connector_id=1, limits=LIMITS)
    assert parsed.schedule.periods == (
        ChargingSchedulePeriod(0, 15.9, 1),
        ChargingSchedulePeriod(60, 6.0),
    )
    assert parsed.schedule.min_charging_rate == 6.1


ROUND_TRIPS = {
    "every field": (
        1,
        payload(
            7,
            "TxProfile",
            kind="Absolute",
            stack=3,
            unit="W",
            periods=[(0, 11000.0, 3), (900, 7400.5, 1)],
            start=T0,
            duration=3600,
            transaction_id=1234,
            valid_from=T0 - timedelta(days=1),
            valid_to=T0 + timedelta(days=1),
            min_rate=1380.0,
        ),
    ),
    "minimal": (0, payload(1, "ChargePointMaxProfile", kind="Relative")),
    "recurring weekly": (
        2,
        payload(3, DEFAULT, kind="Recurring", recurrency="Weekly", start=T0, periods=[(0, 0)]),
    ),
    "recurrencyKind kept on an Absolute profile": (1, payload(4, DEFAULT, recurrency="Daily")),
}


@pytest.mark.parametrize(("connector", "raw"), ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip(connector: int, raw: dict[str, Any]) -> None:
    profile = parse_charging_profile(
        schema_checked(connector, raw), connector_id=connector, limits=LIMITS
    )
    serialised = profile_to_ocpp(profile)
    schema_checked(connector, serialised)
    assert parse_charging_profile(serialised, connector_id=connector, limits=LIMITS) == profile
    assert set(serialised) == set(raw)
    assert set(serialised["chargingSchedule"]) == set(raw["chargingSchedule"])


def test_serialised_form() -> None:
    raw = payload(1, DEFAULT, kind="Recurring", recurrency="Daily", start=T0, periods=[(0, 16, 3)])
    profile = parse_charging_profile(raw, connector_id=0, limits=LIMITS)
    assert profile_to_ocpp(profile) == {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Recurring",
        "recurrencyKind": "Daily",
        "chargingSchedule": {
            "startSchedule": "2024-03-04T00:00:00.000Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}],
        },
    }


@settings(max_examples=200, deadline=None)
@given(item=profile_payloads(T0))
def test_round_trip_property(item: tuple[int, dict[str, Any]]) -> None:
    connector, raw = item
    profile: ChargingProfile = parse_charging_profile(
        schema_checked(connector, raw), connector_id=connector, limits=LIMITS
    )
    serialised = profile_to_ocpp(profile)
    schema_checked(connector, serialised)
    assert parse_charging_profile(serialised, connector_id=connector, limits=LIMITS) == profile
