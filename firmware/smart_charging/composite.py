"""A connector's composite schedule: a pure function of the installed profiles and ``now``.

How profiles combine (OCPP 1.6 edition 2):

- Within one purpose, at each instant the valid profile with the highest
  stackLevel that has a period then prevails; where it has none (outside
  validFrom/validTo, before its start, after its duration) the next lower
  stack level applies (§3.13.2; §5.16.4: fall back to a lower stackLevel).
  Two profiles of one purpose and stack level should not coexist (§3.13.2: the
  newer replaces the older); if they do, the higher chargingProfileId wins.
- A TxProfile overrules the TxDefaultProfiles during a transaction (§3.13.1,
  §7.10), at each instant where it has a period; where it has none, the
  TxDefaultProfiles apply. A TxProfile counts only for the running
  transaction: its transactionId must match, or be absent (it came with
  RemoteStartTransaction, §5.16.2).
- TxDefaultProfiles installed on connector 0 apply to every connector, except
  to a connector with TxDefaultProfiles of its own, which replace them there
  (§3.13.1).
- ChargePointMaxProfiles (connector 0) cap the result: the composite is the
  lower of the transaction-level limit and the station maximum (§3.13.3).
  For connector 0 the composite is the station maximum alone.
- Where nothing limits, the limit is None: charge as if no profile were
  installed, up to the hardware's own maximum (§3.13.6, §5.16.4).
- Relative schedules count from the transaction's start. Without a
  transaction, the composite schedule counts them from ``now`` (the schedule a
  transaction starting now would get), and ``limit_at`` / ``next_change_after``
  keep them at their first period (what a transaction starting at that
  instant would begin with), so an idle connector is not woken at their
  period boundaries.

Units: W = A * V * phases (§7.12: A is per phase, W is the total), with phases
= the period's numberPhases (3 when absent) but no more than the station has.
With no unit asked, the profiles' common unit is used, or A if they differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v16.enums import ChargingProfilePurposeType, ChargingRateUnitType

from firmware.clock import iso
from firmware.smart_charging import timeline
from firmware.smart_charging.profiles import (
    ChargingProfile,
    ChargingSchedulePeriod,
    InstalledProfile,
)


@dataclass(frozen=True, slots=True)
class TransactionContext:
    """The transaction running on the connector."""

    started_at: datetime
    transaction_id: int | None = None  # None until the CSMS has assigned one (offline start)


@dataclass(frozen=True, slots=True)
class Supply:
    """The station's nominal supply, for converting between W and A."""

    voltage_v: float  # nominal phase voltage (e.g. 230), not a measurement (§7.12)
    phases: int  # phases wired to the connectors

    def __post_init__(self) -> None:
        if not self.voltage_v > 0:
            raise ValueError(f"supply voltage must be > 0 V, not {self.voltage_v}")
        if not 1 <= self.phases <= 3:
            raise ValueError(f"supply phases must be 1, 2 or 3, not {self.phases}")


@dataclass(frozen=True, slots=True)
class Limit:
    """The limit in force: ``value`` in ``unit`` (A per phase, or W in total)."""

    value: float
    unit: ChargingRateUnitType
    number_phases: int | None = None  # the fewest any limiting period allows; None: not given
    min_charging_rate: float | None = None  # of the transaction-level profile, in ``unit``


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    start_period: int  # whole seconds from the schedule's start
    limit: float | None  # None: no profile limits; the hardware's maximum applies
    number_phases: int | None = None
    min_charging_rate: float | None = None


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    connector_id: int
    start_schedule: datetime  # the ``now`` it was computed for
    duration: int  # seconds
    unit: ChargingRateUnitType
    periods: tuple[CompositePeriod, ...]  # the first starts at 0; no two neighbours are equal

    def period_at(self, offset_s: float) -> CompositePeriod:
        """The period covering ``offset_s`` seconds after the start."""
        current = self.periods[0]
        for period in self.periods:
            if period.start_period > offset_s:
                break
            current = period
        return current

    def to_ocpp(self, *, hardware_max: float) -> dict[str, Any]:
        """The ``chargingSchedule`` of GetCompositeSchedule.conf (§6.22, §7.13).

        ``hardware_max`` is the most the connector can take, in this schedule's
        unit: it fills periods without a limit and caps the others. Limits are
        rounded down to 0.1 (the schema's multipleOf 0.1).
        """
        if hardware_max < 0:
            raise ValueError(f"hardware_max must be >= 0, not {hardware_max}")
        periods: list[dict[str, Any]] = []
        for period in self.periods:
            value = hardware_max if period.limit is None else min(period.limit, hardware_max)
            item: dict[str, Any] = {"startPeriod": period.start_period, "limit": _tenth(value)}
            if period.number_phases is not None:
                item["numberPhases"] = period.number_phases
            if periods and _same_but_start(periods[-1], item):
                continue
            periods.append(item)
        schedule: dict[str, Any] = {
            "duration": self.duration,
            "startSchedule": iso(self.start_schedule),
            "chargingRateUnit": self.unit.value,
            "chargingSchedulePeriod": periods,
        }
        min_rate = self.periods[0].min_charging_rate
        if min_rate is not None:
            schedule["minChargingRate"] = _tenth(min_rate)
        return schedule

    def conf_payload(self, *, hardware_max: float) -> dict[str, Any]:
        """A GetCompositeSchedule.conf with status Accepted."""
        return {
            "status": "Accepted",
            "connectorId": self.connector_id,
            "scheduleStart": iso(self.start_schedule),
            "chargingSchedule": self.to_ocpp(hardware_max=hardware_max),
        }


def tx_profile_applies(profile: ChargingProfile, transaction: TransactionContext | None) -> bool:
    """Whether a TxProfile governs ``transaction`` (§3.13.1, §5.16.2)."""
    if transaction is None:
        return False
    return profile.transaction_id is None or profile.transaction_id == transaction.transaction_id


def composite_schedule(
    profiles: Iterable[InstalledProfile],
    *,
    now: datetime,
    connector_id: int,
    duration_s: int,
    supply: Supply,
    transaction: TransactionContext | None = None,
    unit: ChargingRateUnitType | None = None,
) -> CompositeSchedule:
    """The composite schedule of ``connector_id`` from ``now`` for ``duration_s`` seconds.

    GetCompositeSchedule (§5.7). A change that falls inside a second is
    reported from the next whole second.
    """
    if duration_s < 0:
        raise ValueError(f"duration must be >= 0 s, not {duration_s}")
    now = _utc(now)
    plan = _plan(profiles, connector_id, transaction, unit, supply, idle_anchor=now)
    by_second: dict[int, Limit | None] = {}
    for point, limit in _segments(plan, now, now + timedelta(seconds=duration_s)):
        offset = _whole_seconds_after(point - now)
        if offset == 0 or offset < duration_s:
            by_second[offset] = limit
    periods: list[CompositePeriod] = []
    for offset, limit in by_second.items():
        period = _composite_period(offset, limit)
        if periods and _same_limit(periods[-1], period):
            continue
        periods.append(period)
    return CompositeSchedule(connector_id, now, duration_s, plan.unit, tuple(periods))


def limit_at(
    profiles: Iterable[InstalledProfile],
    *,
    now: datetime,
    connector_id: int,
    supply: Supply,
    transaction: TransactionContext | None = None,
    unit: ChargingRateUnitType | None = None,
) -> Limit | None:
    """The limit in force on ``connector_id`` at ``now``; None: no profile limits it."""
    now = _utc(now)
    return _evaluate(_plan(profiles, connector_id, transaction, unit, supply), now)


def next_change_after(
    profiles: Iterable[InstalledProfile],
    *,
    now: datetime,
    connector_id: int,
    supply: Supply,
    transaction: TransactionContext | None = None,
    unit: ChargingRateUnitType | None = None,
) -> datetime | None:
    """The first instant after ``now`` at which ``limit_at`` gives another answer.

    None: it never changes (with these profiles and this transaction). The
    daemon sleeps until then and applies the new limit, instead of polling.
    """
    now = _utc(now)
    plan = _plan(profiles, connector_id, transaction, unit, supply)
    base = _evaluate(plan, now)
    fixed = sorted(
        {
            point
            for profile in plan.profiles
            for point in timeline.fixed_points(profile, plan.session_start)
            if point > now
        }
    )
    cursor = now
    for stop in [*fixed, None]:
        # Between fixed points the limits repeat weekly: a week without a
        # change means none until the next fixed point.
        scan_end = cursor + timeline.WEEK
        if stop is not None:
            scan_end = min(scan_end, stop)
        segments = _segments(plan, cursor, scan_end)
        if len(segments) > 1:
            return segments[1][0]
        if stop is None:
            return None
        if _evaluate(plan, stop) != base:
            return stop
        cursor = stop
    return None  # pragma: no cover - the loop always returns


@dataclass(frozen=True, slots=True)
class _Plan:
    station_max: tuple[ChargingProfile, ...]  # each stack in order of precedence
    tx_default: tuple[ChargingProfile, ...]
    tx: tuple[ChargingProfile, ...]
    unit: ChargingRateUnitType
    session_start: datetime | None  # None: no transaction, and no fixed anchor either
    supply: Supply

    @property
    def profiles(self) -> tuple[ChargingProfile, ...]:
        return self.station_max + self.tx_default + self.tx


def _plan(
    profiles: Iterable[InstalledProfile],
    connector_id: int,
    transaction: TransactionContext | None,
    unit: ChargingRateUnitType | None,
    supply: Supply,
    *,
    idle_anchor: datetime | None = None,
) -> _Plan:
    if connector_id < 0:
        raise ValueError(f"connector id must be >= 0, not {connector_id}")
    installed = list(profiles)

    def on(connector: int, purpose: ChargingProfilePurposeType) -> list[ChargingProfile]:
        return [
            item.profile
            for item in installed
            if item.connector_id == connector and item.profile.purpose == purpose
        ]

    station_max = on(0, ChargingProfilePurposeType.charge_point_max_profile)
    tx_default: list[ChargingProfile] = []
    tx: list[ChargingProfile] = []
    if connector_id > 0:
        tx_default = on(connector_id, ChargingProfilePurposeType.tx_default_profile) or on(
            0, ChargingProfilePurposeType.tx_default_profile
        )
        tx = [
            profile
            for profile in on(connector_id, ChargingProfilePurposeType.tx_profile)
            if tx_profile_applies(profile, transaction)
        ]
    if unit is None:
        units = {p.schedule.charging_rate_unit for p in (*station_max, *tx_default, *tx)}
        unit = units.pop() if len(units) == 1 else ChargingRateUnitType.amps
    else:
        unit = ChargingRateUnitType(unit)  # also takes the plain "A" / "W" of a request
    return _Plan(
        station_max=_by_precedence(station_max),
        tx_default=_by_precedence(tx_default),
        tx=_by_precedence(tx),
        unit=unit,
        session_start=idle_anchor if transaction is None else _utc(transaction.started_at),
        supply=supply,
    )


def _by_precedence(profiles: list[ChargingProfile]) -> tuple[ChargingProfile, ...]:
    return tuple(
        sorted(profiles, key=lambda p: (p.stack_level, p.charging_profile_id), reverse=True)
    )


_Hit = tuple[ChargingProfile, ChargingSchedulePeriod]


def _prevailing(
    stack: tuple[ChargingProfile, ...], moment: datetime, session_start: datetime | None
) -> _Hit | None:
    for profile in stack:
        period = timeline.period_at(profile, moment, session_start)
        if period is not None:
            return profile, period
    return None


def _evaluate(plan: _Plan, moment: datetime) -> Limit | None:
    tx_hit = _prevailing(plan.tx, moment, plan.session_start) or _prevailing(
        plan.tx_default, moment, plan.session_start
    )
    max_hit = _prevailing(plan.station_max, moment, plan.session_start)
    hits = [hit for hit in (tx_hit, max_hit) if hit is not None]
    if not hits:
        return None
    value = min(_convert(plan, profile, period, period.limit) for profile, period in hits)
    phases = [period.number_phases for _, period in hits if period.number_phases is not None]
    min_rate = None
    if tx_hit is not None and tx_hit[0].schedule.min_charging_rate is not None:
        min_rate = _convert(plan, *tx_hit, tx_hit[0].schedule.min_charging_rate)
    return Limit(value, plan.unit, min(phases) if phases else None, min_rate)


def _convert(
    plan: _Plan, profile: ChargingProfile, period: ChargingSchedulePeriod, value: float
) -> float:
    source = profile.schedule.charging_rate_unit
    if source == plan.unit:
        return value
    phases = min(period.number_phases or 3, plan.supply.phases)
    volt_phases = plan.supply.voltage_v * phases
    return value * volt_phases if source == ChargingRateUnitType.amps else value / volt_phases


def _segments(plan: _Plan, start: datetime, end: datetime) -> list[tuple[datetime, Limit | None]]:
    """[start, end) as (from, limit) pieces, neighbours differing, the first at ``start``."""
    points = {start}
    for profile in plan.profiles:
        points.update(timeline.change_points(profile, start, end, plan.session_start))
    segments: list[tuple[datetime, Limit | None]] = []
    for point in sorted(points):
        limit = _evaluate(plan, point)
        if not segments or segments[-1][1] != limit:
            segments.append((point, limit))
    return segments


def _composite_period(offset: int, limit: Limit | None) -> CompositePeriod:
    if limit is None:
        return CompositePeriod(offset, None)
    return CompositePeriod(offset, limit.value, limit.number_phases, limit.min_charging_rate)


def _same_limit(a: CompositePeriod, b: CompositePeriod) -> bool:
    return replace(a, start_period=0) == replace(b, start_period=0)


def _same_but_start(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a | {"startPeriod": 0} == b | {"startPeriod": 0}


def _whole_seconds_after(delta: timedelta) -> int:
    microseconds = delta // timedelta(microseconds=1)
    return -(-microseconds // 1_000_000)


def _tenth(value: float) -> float:
    """Rounded down to 0.1, forgiving binary noise (15.999999999 is 16.0)."""
    return math.floor(value * 10 + 1e-6) / 10


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"a timezone-aware date-time is needed, not {moment!r}")
    return moment.astimezone(UTC)
