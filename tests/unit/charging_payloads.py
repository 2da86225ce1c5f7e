"""Schema-valid OCPP 1.6 charging profile payloads for the smart charging tests.

Every payload goes through the OCA schema (``firmware.ocpp.frames.validate_call``,
which uses the ``ocpp`` package's validators) before it is parsed, so the test
vectors are what a CSMS could really send.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from firmware.ocpp.frames import validate_call
from firmware.smart_charging import InstalledProfile, ProfileLimits, parse_charging_profile

T0 = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday, 00:00 UTC
LIMITS = ProfileLimits(max_stack_level=10, max_periods=24)

Period = tuple[int, float] | tuple[int, float, int]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payload(
    profile_id: int,
    purpose: str,
    *,
    kind: str = "Absolute",
    stack: int = 0,
    unit: str = "A",
    periods: Sequence[Period] = ((0, 16),),
    start: datetime | None = None,
    duration: int | None = None,
    transaction_id: int | None = None,
    recurrency: str | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    min_rate: float | None = None,
) -> dict[str, Any]:
    """A ``csChargingProfiles`` object; only the given optional fields are present."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": p[0], "limit": p[1]} | ({"numberPhases": p[2]} if len(p) > 2 else {})
            for p in periods
        ],
    }
    if start is not None:
        schedule["startSchedule"] = stamp(start)
    if duration is not None:
        schedule["duration"] = duration
    if min_rate is not None:
        schedule["minChargingRate"] = min_rate
    profile: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    for key, value in (
        ("transactionId", transaction_id),
        ("recurrencyKind", recurrency),
        ("validFrom", None if valid_from is None else stamp(valid_from)),
        ("validTo", None if valid_to is None else stamp(valid_to)),
    ):
        if value is not None:
            profile[key] = value
    return profile


def schema_checked(connector_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    """``profile`` after checking it as a SetChargingProfile.req for ``connector_id``."""
    validate_call(
        "SetChargingProfile", {"connectorId": connector_id, "csChargingProfiles": profile}
    )
    return profile


def install(connector_id: int, profile: dict[str, Any]) -> InstalledProfile:
    """Schema check, parse, and install ``profile`` on ``connector_id``."""
    checked = schema_checked(connector_id, profile)
    parsed = parse_charging_profile(checked, connector_id=connector_id, limits=LIMITS)
    return InstalledProfile(connector_id, parsed)


def _minutes(low: int, high: int) -> st.SearchStrategy[timedelta]:
    return st.integers(low, high).map(lambda m: timedelta(minutes=m))


@st.composite
def profile_payloads(draw: st.DrawFn, base: datetime) -> tuple[int, dict[str, Any]]:
    """(connector id, profile) around ``base``: any purpose, kind and unit the station takes."""
    purpose = draw(st.sampled_from(["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"]))
    connector = {"ChargePointMaxProfile": 0, "TxProfile": 1}.get(purpose)
    if connector is None:
        connector = draw(st.sampled_from([0, 1]))
    kind = draw(st.sampled_from(["Absolute", "Recurring", "Relative"]))
    unit = draw(st.sampled_from(["A", "W"]))
    limit = st.integers(0, 640).map(lambda x: x / 10) if unit == "A" else st.integers(0, 22000)
    phases = st.one_of(st.none(), st.integers(1, 3))
    starts = sorted(draw(st.sets(st.integers(1, 300), max_size=4)))
    periods: list[Period] = []
    for start_minute in [0, *starts]:
        count = draw(phases)
        value = float(draw(limit))
        periods.append(
            (start_minute * 60, value) if count is None else (start_minute * 60, value, count)
        )
    start = None
    if kind == "Recurring" or (kind == "Absolute" and draw(st.booleans())):
        start = base + draw(_minutes(-10 * 24 * 60, 24 * 60))
    valid_from = draw(st.one_of(st.none(), _minutes(-2 * 24 * 60, 24 * 60).map(base.__add__)))
    valid_to = draw(st.one_of(st.none(), _minutes(1, 2 * 24 * 60)))
    return connector, payload(
        draw(st.integers(1, 1000)),
        purpose,
        kind=kind,
        stack=draw(st.integers(0, 3)),
        unit=unit,
        periods=periods,
        start=start,
        duration=draw(st.one_of(st.none(), st.integers(60, 3 * 24 * 3600))),
        transaction_id=draw(st.sampled_from([None, 7, 8])) if purpose == "TxProfile" else None,
        recurrency=draw(st.sampled_from(["Daily", "Weekly"])) if kind == "Recurring" else None,
        valid_from=valid_from,
        valid_to=None if valid_to is None else (valid_from or base) + valid_to,
        min_rate=draw(st.one_of(st.none(), st.integers(0, 100).map(lambda x: x / 10))),
    )


def installed_profiles(base: datetime) -> st.SearchStrategy[InstalledProfile]:
    return profile_payloads(base).map(lambda item: install(*item))
