"""Composite schedule, current limit and next change: explicit vectors and properties.

Vectors are (installed profiles, now, connector, transaction, duration, unit) →
expected periods as (startPeriod, limit) or (startPeriod, limit, numberPhases);
a limit of None is a period where no profile limits charging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.ocpp.frames import validate_result
from firmware.smart_charging import (
    CompositePeriod,
    InstalledProfile,
    Limit,
    Supply,
    TransactionContext,
    composite_schedule,
    limit_at,
    next_change_after,
)
from tests.unit.charging_payloads import T0, install, installed_profiles, payload

NOW = T0 + timedelta(hours=12)  # Monday 2024-03-04 12:00 UTC
SUPPLY = Supply(voltage_v=230.0, phases=3)
HOUR = 3600
_S = timedelta(seconds=1)
MINUTES_10 = timedelta(minutes=10)

CPMAX = "ChargePointMaxProfile"
DEFAULT = "TxDefaultProfile"
TX = "TxProfile"

Expected = tuple[int, float | None] | tuple[int, float | None, int | None]


@dataclass(frozen=True)
class Vector:
    profiles: list[InstalledProfile]
    expected: list[Expected]
    now: datetime = NOW
    connector: int = 1
    transaction: TransactionContext | None = None
    duration: int = 2 * HOUR
    unit: str | None = None
    supply: Supply = field(default=SUPPLY)


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """March 2024, UTC."""
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


def default(profile_id: int, connector: int = 1, **fields: Any) -> InstalledProfile:
    return install(connector, payload(profile_id, DEFAULT, **fields))


def station_max(profile_id: int, **fields: Any) -> InstalledProfile:
    return install(0, payload(profile_id, CPMAX, **fields))


def tx_profile(profile_id: int, connector: int = 1, **fields: Any) -> InstalledProfile:
    return install(connector, payload(profile_id, TX, **fields))


def daily(profile_id: int, **fields: Any) -> InstalledProfile:
    return default(profile_id, connector=0, kind="Recurring", recurrency="Daily", **fields)


def weekly(profile_id: int, **fields: Any) -> InstalledProfile:
    return default(profile_id, connector=0, kind="Recurring", recurrency="Weekly", **fields)


TX_42 = TransactionContext(started_at=NOW - timedelta(minutes=1), transaction_id=42)

VECTORS = {
    # §3.13.2: the higher stack level prevails while it has a period, then
    # the lower one takes over (the shape of OCTT's TC_072).
    "stacking falls back when the higher's duration ends": Vector(
        [
            default(1, stack=0, start=NOW, duration=400, periods=[(0, 6), (100, 8), (200, 10)]),
            default(2, stack=1, start=NOW, duration=150, periods=[(0, 10), (100, 7)]),
        ],
        [(0, 10), (100, 7), (150, 8), (200, 10), (400, None)],
        duration=500,
    ),
    "stacking without a duration never falls back": Vector(
        [
            default(1, stack=0, start=NOW, periods=[(0, 6), (300, 12)]),
            default(2, stack=1, start=NOW, periods=[(0, 10), (100, 7)]),
        ],
        [(0, 10), (100, 7)],
        duration=500,
    ),
    "stacking: the lower level fills in before the higher one starts": Vector(
        [
            default(1, connector=0, stack=0, start=T0, periods=[(0, 32)]),
            default(
                2, connector=0, stack=5, start=NOW + MINUTES_10, duration=600, periods=[(0, 6)]
            ),
        ],
        [(0, 32), (600, 6), (1200, 32)],
    ),
    "validFrom/validTo open a window for the higher stack level": Vector(
        [
            default(1, stack=0, start=NOW - timedelta(hours=1)),
            default(
                2,
                stack=1,
                start=NOW - timedelta(hours=1),
                periods=[(0, 6)],
                valid_from=NOW + timedelta(seconds=600),
                valid_to=NOW + timedelta(seconds=1200),
            ),
        ],
        [(0, 16), (600, 6), (1200, 16)],
    ),
    "validFrom/validTo alone leave gaps around the window": Vector(
        [
            default(
                1,
                start=NOW,
                periods=[(0, 10)],
                valid_from=NOW + timedelta(seconds=300),
                valid_to=NOW + timedelta(seconds=900),
            ),
        ],
        [(0, None), (300, 10), (900, None)],
    ),
    "Recurring Daily crossing midnight continues the previous day's instance": Vector(
        [daily(1, start=_at(1, 22), periods=[(0, 8), (8 * HOUR, 32)])],
        [(0, 32), (2 * HOUR, 8), (10 * HOUR, 32)],  # 22:00: 8 A overnight; 06:00: 32 A
        now=_at(4, 20),
        duration=14 * HOUR,
    ),
    "Recurring Daily shorter than a day falls back to the lower level": Vector(
        [
            default(1, connector=0, stack=0, start=T0 - timedelta(days=60), periods=[(0, 32)]),
            daily(2, stack=1, start=_at(1, 18), duration=4 * HOUR, periods=[(0, 10)]),
        ],
        [(0, 32), (6 * HOUR, 10), (10 * HOUR, 32), (30 * HOUR, 10), (34 * HOUR, 32)],
        duration=36 * HOUR,
    ),
    "Recurring Daily: periods beyond 24 h are cut at the restart (§5.16.4)": Vector(
        [
            daily(
                1,
                start=_at(1, 0),
                duration=100_000,
                periods=[(0, 10), (12 * HOUR, 20), (25 * HOUR, 30)],
            )
        ],
        [(0, 20), (HOUR, 10), (13 * HOUR, 20)],
        now=_at(4, 23),
        duration=25 * HOUR,
    ),
    "Recurring Weekly: no charging at the weekend": Vector(
        [weekly(1, start=_at(2, 0), periods=[(0, 0), (48 * HOUR, 32)])],
        [(0, 32), (12 * HOUR, 0), (60 * HOUR, 32)],  # Fri 12:00, Sat 00:00, Mon 00:00
        now=_at(8, 12),
        duration=72 * HOUR,
    ),
    "Recurring Weekly does not run before its first startSchedule": Vector(
        [weekly(1, start=_at(2, 0), periods=[(0, 0), (48 * HOUR, 32)])],
        [(0, None), (12 * HOUR, 0)],
        now=_at(1, 12),
        duration=24 * HOUR,
    ),
    "Relative counts from the transaction's start": Vector(
        [default(1, kind="Relative", periods=[(0, 6), (HOUR, 16)])],
        [(0, 6), (HOUR - 600, 16)],
        transaction=TransactionContext(started_at=NOW - timedelta(seconds=600)),
    ),
    "Relative without a transaction counts from now": Vector(
        [default(1, kind="Relative", periods=[(0, 6), (HOUR, 16)])],
        [(0, 6), (HOUR, 16)],
    ),
    "Absolute without startSchedule is relative to the start of charging (§7.13)": Vector(
        [default(1, duration=HOUR, periods=[(0, 6)])],
        [(0, 6), (HOUR - 300, None)],
        transaction=TransactionContext(started_at=NOW - timedelta(seconds=300)),
    ),
    "no profile at all: no limit": Vector([], [(0, None)]),
    "gap before an absolute schedule and after its duration": Vector(
        [default(1, start=NOW + MINUTES_10, duration=600, periods=[(0, 10)])],
        [(0, None), (600, 10), (1200, None)],
    ),
    "W to A, 3 phases": Vector(
        [default(1, unit="W", start=T0, periods=[(0, 11040, 3)])],
        [(0, 16.0, 3)],
        unit="A",
    ),
    "W to A, 1 phase": Vector(
        [default(1, unit="W", start=T0, periods=[(0, 3680, 1)])],
        [(0, 16.0, 1)],
        unit="A",
    ),
    "A to W, 3 phases": Vector(
        [default(1, start=T0, periods=[(0, 16, 3)])],
        [(0, 11040.0, 3)],
        unit="W",
    ),
    "A to W, 1 phase": Vector(
        [default(1, start=T0, periods=[(0, 16, 1)])],
        [(0, 3680.0, 1)],
        unit="W",
    ),
    "A to W, numberPhases absent: 3 assumed (§7.12)": Vector(
        [default(1, start=T0, periods=[(0, 16)])],
        [(0, 11040.0)],
        unit="W",
    ),
    "W to A on a single-phase station: the phases it has": Vector(
        [default(1, unit="W", start=T0, periods=[(0, 3680)])],
        [(0, 16.0)],
        unit="A",
        supply=Supply(voltage_v=230.0, phases=1),
    ),
    "no unit asked: the profiles' own unit": Vector(
        [default(1, unit="W", start=T0, periods=[(0, 7400)])],
        [(0, 7400.0)],
    ),
    "TxProfile overrides TxDefaultProfile, which returns after it": Vector(
        [
            default(1, stack=3, start=T0, periods=[(0, 32)]),
            tx_profile(2, start=NOW, duration=600, periods=[(0, 10)], transaction_id=42),
        ],
        [(0, 10), (600, 32)],
        transaction=TX_42,
    ),
    "TxProfile for another transaction is ignored": Vector(
        [
            default(1, start=T0, periods=[(0, 32)]),
            tx_profile(2, start=NOW, periods=[(0, 10)], transaction_id=41),
        ],
        [(0, 32)],
        transaction=TX_42,
    ),
    "TxProfile without transactionId governs the running transaction": Vector(
        [
            default(1, start=T0, periods=[(0, 32)]),
            tx_profile(2, kind="Relative", periods=[(0, 10)]),
        ],
        [(0, 10)],
        transaction=TransactionContext(started_at=NOW),
    ),
    "TxProfile without a transaction is ignored": Vector(
        [
            default(1, start=T0, periods=[(0, 32)]),
            tx_profile(2, kind="Relative", periods=[(0, 10)]),
        ],
        [(0, 32)],
    ),
    "TxProfile on another connector is ignored": Vector(
        [tx_profile(2, connector=2, kind="Relative", periods=[(0, 10)])],
        [(0, None)],
        transaction=TX_42,
    ),
    "connector-0 TxDefaultProfile applies to a connector without its own": Vector(
        [
            default(1, connector=0, stack=1, start=T0, periods=[(0, 10)]),
            default(2, connector=1, stack=0, start=T0, periods=[(0, 20)]),
        ],
        [(0, 10)],
        connector=2,
    ),
    "a connector's own TxDefaultProfile replaces connector 0's, whatever the level": Vector(
        [
            default(1, connector=0, stack=1, start=T0, periods=[(0, 10)]),
            default(2, connector=1, stack=0, start=T0, periods=[(0, 20)]),
        ],
        [(0, 20)],
        connector=1,
    ),
    "ChargePointMaxProfile caps the transaction limit": Vector(
        [
            station_max(1, start=NOW, periods=[(0, 20), (600, 8)]),
            default(2, start=T0, periods=[(0, 16)]),
        ],
        [(0, 16), (600, 8)],
    ),
    "ChargePointMaxProfile in W caps a limit in A": Vector(
        [
            station_max(1, unit="W", start=T0, periods=[(0, 6900)]),
            default(2, start=T0, periods=[(0, 16)]),
        ],
        [(0, 10.0)],
        unit="A",
    ),
    "ChargePointMaxProfile alone limits a connector": Vector(
        [station_max(1, kind="Relative", periods=[(0, 25)])],
        [(0, 25)],
    ),
    "connector 0: the station maximum alone": Vector(
        [
            station_max(1, start=NOW, periods=[(0, 20), (600, 8)]),
            default(2, connector=0, start=T0, periods=[(0, 6)]),
        ],
        [(0, 20), (600, 8)],
        connector=0,
    ),
    "numberPhases: the fewest any limiting period allows": Vector(
        [
            station_max(1, start=T0, periods=[(0, 32, 1)]),
            default(2, start=T0, periods=[(0, 16, 3)]),
        ],
        [(0, 16, 1)],
    ),
}


def _flatten(periods: tuple[CompositePeriod, ...]) -> list[Expected]:
    return [
        (p.start_period, p.limit)
        if p.number_phases is None
        else (p.start_period, p.limit, p.number_phases)
        for p in periods
    ]


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_composite_vectors(vector: Vector) -> None:
    schedule = composite_schedule(
        vector.profiles,
        now=vector.now,
        connector_id=vector.connector,
        duration_s=vector.duration,
        supply=vector.supply,
        transaction=vector.transaction,
        unit=vector.unit,
    )
    assert _flatten(schedule.periods) == vector.expected
    assert schedule.start_schedule == vector.now
    assert schedule.duration == vector.duration
    assert schedule.connector_id == vector.connector


@pytest.mark.parametrize("vector", VECTORS.values(), ids=VECTORS.keys())
def test_limit_at_and_next_change_agree_with_the_vectors(vector: Vector) -> None:
    context: dict[str, Any] = {
        "now": vector.now,
        "connector_id": vector.connector,
        "supply": vector.supply,
        "transaction": vector.transaction,
        "unit": vector.unit,
    }
    first = limit_at(vector.profiles, **context)
    assert (None if first is None else first.value) == vector.expected[0][1]
    change = next_change_after(vector.profiles, **context)
    idle_relative = vector.transaction is None and any(
        item.profile.session_anchored for item in vector.profiles
    )
    if len(vector.expected) > 1 and not idle_relative:  # see test_idle_relative_profiles
        assert change == vector.now + timedelta(seconds=vector.expected[1][0])


def test_idle_relative_profiles_stay_at_their_first_period() -> None:
    """No transaction: the limit is what a transaction starting then would begin with."""
    profiles = [
        default(1, kind="Relative", periods=[(0, 6), (HOUR, 16)]),
        station_max(2, kind="Relative", periods=[(0, 4), (60, 10)], valid_to=NOW + 2 * HOUR * _S),
    ]
    for later in (0, 59, 60, HOUR, HOUR + 1):
        limit = limit_at(profiles, now=NOW + later * _S, connector_id=1, supply=SUPPLY)
        assert limit is not None and limit.value == 4
    # No wake-up at the Relative boundaries, only where the station maximum expires.
    change = next_change_after(profiles, now=NOW, connector_id=1, supply=SUPPLY)
    assert change == NOW + 2 * HOUR * _S
    # The composite shows what a transaction starting now would get.
    schedule = composite_schedule(profiles, now=NOW, connector_id=1, duration_s=HOUR, supply=SUPPLY)
    assert _flatten(schedule.periods) == [(0, 4), (60, 6)]
    assert limit_at(profiles, now=change, connector_id=1, supply=SUPPLY) == Limit(6, "A")


def test_min_charging_rate_and_unit_are_carried() -> None:
    profiles = [default(1, unit="W", start=T0, min_rate=1380.0, periods=[(0, 11040, 3)])]
    limit = limit_at(profiles, now=NOW, connector_id=1, supply=SUPPLY, unit="A")
    assert limit == Limit(value=16.0, unit="A", number_phases=3, min_charging_rate=2.0)
    schedule = composite_schedule(profiles, now=NOW, connector_id=1, duration_s=60, supply=SUPPLY)
    assert schedule.periods == (CompositePeriod(0, 11040.0, 3, 1380.0),)


WEEKEND_OFF = [(0, 0), (48 * HOUR, 32)]
NIGHT = [(0, 16), (6 * HOUR, 10), (22 * HOUR, 16)]
YEAR_LATER = NOW + timedelta(days=365)
IN_2031 = datetime(2031, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("profiles", "now", "expected"),
    [
        ([], NOW, None),
        # Daily with one period and no duration: the limit never changes...
        ([daily(1, start=T0)], NOW, None),
        # ...until its validTo, however far away.
        ([daily(1, start=T0, valid_to=IN_2031)], NOW, IN_2031),
        # Weekend block: from Monday noon the next change is Saturday 00:00.
        ([weekly(1, start=_at(2, 0), periods=WEEKEND_OFF)], NOW, _at(9, 0)),
        # Equal limits either side of the daily restart: no change at midnight.
        ([daily(1, start=T0, periods=NIGHT)], _at(4, 23), _at(5, 6)),
        ([default(1, start=YEAR_LATER)], NOW, YEAR_LATER),
    ],
)
def test_next_change_after(
    profiles: list[InstalledProfile], now: datetime, expected: datetime | None
) -> None:
    assert next_change_after(profiles, now=now, connector_id=1, supply=SUPPLY) == expected


def test_unlimited_periods_are_explicit_and_filled_when_serialised() -> None:
    start = NOW + timedelta(seconds=60)
    profiles = [default(1, unit="W", start=start, duration=60, periods=[(0, 11000, 3)])]
    schedule = composite_schedule(
        profiles, now=NOW, connector_id=1, duration_s=300, supply=SUPPLY, unit="A"
    )
    assert [p.limit for p in schedule.periods] == [None, pytest.approx(15.942, abs=1e-3), None]
    conf = schedule.conf_payload(hardware_max=32.0)
    validate_result("GetCompositeSchedule", conf)
    assert conf == {
        "status": "Accepted",
        "connectorId": 1,
        "scheduleStart": "2024-03-04T12:00:00.000Z",
        "chargingSchedule": {
            "duration": 300,
            "startSchedule": "2024-03-04T12:00:00.000Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 32.0},
                {"startPeriod": 60, "limit": 15.9, "numberPhases": 3},  # rounded down
                {"startPeriod": 120, "limit": 32.0},
            ],
        },
    }
    # A limit above the hardware's is reported as the hardware's.
    assert schedule.to_ocpp(hardware_max=10.0)["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 10.0},
        {"startPeriod": 60, "limit": 10.0, "numberPhases": 3},
        {"startPeriod": 120, "limit": 10.0},
    ]


def test_serialised_neighbours_that_become_equal_are_merged() -> None:
    profiles = [default(1, start=NOW, periods=[(0, 40), (60, 50), (120, 8)], min_rate=6.0)]
    schedule = composite_schedule(profiles, now=NOW, connector_id=1, duration_s=300, supply=SUPPLY)
    assert len(schedule.periods) == 3
    charging_schedule = schedule.to_ocpp(hardware_max=32.0)
    assert charging_schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 32.0},
        {"startPeriod": 120, "limit": 8.0},
    ]
    assert charging_schedule["minChargingRate"] == 6.0
    validate_result("GetCompositeSchedule", schedule.conf_payload(hardware_max=32.0))


def test_changes_inside_a_second_are_reported_from_the_next_second() -> None:
    now = NOW + timedelta(milliseconds=250)
    profiles = [default(1, start=NOW + timedelta(seconds=10), periods=[(0, 10)])]
    schedule = composite_schedule(profiles, now=now, connector_id=1, duration_s=60, supply=SUPPLY)
    assert _flatten(schedule.periods) == [(0, None), (10, 10)]
    assert next_change_after(profiles, now=now, connector_id=1, supply=SUPPLY) == (
        NOW + timedelta(seconds=10)
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        limit_at([], now=datetime(2024, 1, 1), connector_id=1, supply=SUPPLY)


@pytest.mark.parametrize(("voltage", "phases"), [(0.0, 3), (230.0, 0), (230.0, 4)])
def test_supply_is_checked(voltage: float, phases: int) -> None:
    with pytest.raises(ValueError, match="supply"):
        Supply(voltage_v=voltage, phases=phases)


# Properties -----------------------------------------------------------------

PROFILES = st.lists(installed_profiles(NOW), max_size=6)
TRANSACTIONS = st.builds(
    TransactionContext,
    started_at=st.integers(0, 6 * HOUR).map(lambda s: NOW - timedelta(seconds=s)),
    transaction_id=st.sampled_from([None, 7, 8]),
)
UNITS = st.sampled_from([None, "A", "W"])
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _value(limit: Limit | None) -> tuple[float | None, int | None, float | None]:
    if limit is None:
        return (None, None, None)
    return (limit.value, limit.number_phases, limit.min_charging_rate)


@PROPERTY_SETTINGS
@given(
    profiles=PROFILES,
    transaction=TRANSACTIONS,
    unit=UNITS,
    duration=st.integers(1, 2 * 24 * HOUR),
    data=st.data(),
)
def test_limit_at_matches_the_composite_period_covering_it(
    profiles: list[InstalledProfile],
    transaction: TransactionContext,
    unit: str | None,
    duration: int,
    data: st.DataObject,
) -> None:
    schedule = composite_schedule(
        profiles,
        now=NOW,
        connector_id=1,
        duration_s=duration,
        supply=SUPPLY,
        transaction=transaction,
        unit=unit,
    )
    starts = [p.start_period for p in schedule.periods]
    assert starts[0] == 0
    assert all(a < b for a, b in pairwise(starts))
    assert all(start < duration for start in starts)
    for before, after in pairwise(schedule.periods):
        assert (before.limit, before.number_phases, before.min_charging_rate) != (
            after.limit,
            after.number_phases,
            after.min_charging_rate,
        )
    # Every boundary, the second before it, and random instants.
    offsets = {max(0, s + d) for s in starts for d in (-1, 0)}
    offsets |= set(data.draw(st.lists(st.integers(0, duration - 1), max_size=20)))
    for offset in sorted(offsets):
        period = schedule.period_at(offset)
        limit = limit_at(
            profiles,
            now=NOW + timedelta(seconds=offset),
            connector_id=1,
            supply=SUPPLY,
            transaction=transaction,
            unit=unit,
        )
        assert _value(limit) == (period.limit, period.number_phases, period.min_charging_rate)
        if limit is not None:
            assert limit.unit == schedule.unit


@PROPERTY_SETTINGS
@given(profiles=PROFILES, transaction=st.none() | TRANSACTIONS, unit=UNITS, data=st.data())
def test_the_composite_never_exceeds_the_charge_point_maximum(
    profiles: list[InstalledProfile],
    transaction: TransactionContext | None,
    unit: str | None,
    data: st.DataObject,
) -> None:
    station_max = [p for p in profiles if p.profile.purpose == CPMAX]
    schedule = composite_schedule(
        profiles,
        now=NOW,
        connector_id=1,
        duration_s=2 * 24 * HOUR,
        supply=SUPPLY,
        transaction=transaction,
        unit=unit,
    )
    anchored = transaction or TransactionContext(started_at=NOW)
    for offset in data.draw(st.lists(st.integers(0, 2 * 24 * HOUR - 1), min_size=1)):
        cap = limit_at(
            station_max,
            now=NOW + timedelta(seconds=offset),
            connector_id=0,
            supply=SUPPLY,
            transaction=anchored,
            unit=schedule.unit,
        )
        if cap is not None:
            limit = schedule.period_at(offset).limit
            assert limit is not None and limit <= cap.value


@PROPERTY_SETTINGS
@given(profiles=PROFILES, transaction=st.none() | TRANSACTIONS, unit=UNITS, data=st.data())
def test_next_change_is_where_the_limit_first_changes(
    profiles: list[InstalledProfile],
    transaction: TransactionContext | None,
    unit: str | None,
    data: st.DataObject,
) -> None:
    context: dict[str, Any] = {
        "connector_id": 1,
        "supply": SUPPLY,
        "transaction": transaction,
        "unit": unit,
    }
    change = next_change_after(profiles, now=NOW, **context)
    base = limit_at(profiles, now=NOW, **context)
    horizon = 30 * 24 * HOUR if change is None else int((change - NOW).total_seconds())
    assert horizon > 0
    for offset in data.draw(st.lists(st.integers(0, horizon - 1), max_size=20)):
        assert limit_at(profiles, now=NOW + timedelta(seconds=offset), **context) == base
    if change is not None:
        assert limit_at(profiles, now=change, **context) != base
    if change is not None and transaction is not None:
        schedule = composite_schedule(profiles, now=NOW, duration_s=horizon + 1, **context)
        assert schedule.periods[1].start_period == horizon
