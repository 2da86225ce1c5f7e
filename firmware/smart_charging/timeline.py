"""One profile on the time line: its period at an instant, and where that can change.

Pure functions of the profile, the instant and the session start: the
transaction's start, which Relative profiles count from. A session start of
None means no transaction runs: a session-anchored profile then stays at its
first period, as a transaction starting at the instant asked about would see
it. Rules, from OCPP 1.6 edition 2:

- validFrom/validTo bound the profile (§7.8, §3.13.2); outside, it has no period.
- Absolute: periods count from ``startSchedule``; nothing before it (§7.9).
- Relative, and Absolute without ``startSchedule``: periods count from the
  session start (§7.9, §7.13).
- Recurring: the schedule restarts every 24 h (Daily) or 7 days (Weekly) at
  the time (and weekday) of ``startSchedule`` (§7.37). The first instance starts
  at ``startSchedule``; nothing before it. An instance lasts ``duration`` or the
  recurrence length, whichever is shorter: periods or a duration beyond the
  recurrence length are not executed, and a shorter duration leaves a gap until
  the next restart (§5.16.4 notes). All times are UTC, so a day is 86,400 s.
- After ``duration`` the profile has no period; without one, the last period
  goes on (§7.13, §5.16.4).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from ocpp.v16.enums import ChargingProfileKindType, RecurrencyKind

from firmware.smart_charging.profiles import ChargingProfile, ChargingSchedulePeriod

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def recurrence(profile: ChargingProfile) -> timedelta | None:
    """How often a Recurring profile restarts; None for the other kinds."""
    if profile.kind != ChargingProfileKindType.recurring:
        return None
    return DAY if profile.recurrency_kind == RecurrencyKind.daily else WEEK


def instance_length(profile: ChargingProfile) -> timedelta | None:
    """How long one run of the schedule lasts; None: the last period never ends."""
    duration = profile.schedule.duration
    length = None if duration is None else timedelta(seconds=duration)
    cycle = recurrence(profile)
    if cycle is None:
        return length
    return cycle if length is None else min(length, cycle)


def period_at(
    profile: ChargingProfile, moment: datetime, session_start: datetime | None
) -> ChargingSchedulePeriod | None:
    """The profile's period in force at ``moment``; None if it has none then."""
    if not profile.valid_at(moment):
        return None
    origin = _origin_before(profile, moment, session_start)
    if origin is None or moment < origin:
        return None
    offset = moment - origin
    length = instance_length(profile)
    if length is not None and offset >= length:
        return None
    current = None
    for period in profile.schedule.periods:
        if timedelta(seconds=period.start_period) > offset:
            break
        current = period
    return current


def change_points(
    profile: ChargingProfile, start: datetime, end: datetime, session_start: datetime | None
) -> Iterator[datetime]:
    """Instants strictly between ``start`` and ``end`` where the profile's period can change.

    Unsorted, possibly repeated. Between two consecutive points (and ``start``,
    ``end``), ``period_at`` gives the same answer.
    """
    for edge in (profile.valid_from, profile.valid_to):
        if edge is not None and start < edge < end:
            yield edge
    offsets = _offsets(profile)
    for origin in _origins(profile, start, end, session_start):
        for offset in offsets:
            point = origin + offset
            if point >= end:
                break
            if point > start:
                yield point


def fixed_points(profile: ChargingProfile, session_start: datetime | None) -> Iterator[datetime]:
    """The change points that do not repeat (all of them, for a non-Recurring profile).

    Between two consecutive fixed points of every profile, the limits repeat
    with a period of one week (the longest recurrence), which is what lets
    ``next_change_after`` stop searching.
    """
    for edge in (profile.valid_from, profile.valid_to):
        if edge is not None:
            yield edge
    if profile.kind == ChargingProfileKindType.recurring:
        if profile.schedule.start_schedule is not None:
            yield profile.schedule.start_schedule
        return
    origin = _fixed_origin(profile, session_start)
    if origin is not None:
        for offset in _offsets(profile):
            yield origin + offset


def _offsets(profile: ChargingProfile) -> list[timedelta]:
    """Offsets from an instance's origin where its period changes, in order."""
    length = instance_length(profile)
    offsets = [timedelta(seconds=p.start_period) for p in profile.schedule.periods]
    if length is None:
        return offsets
    return [offset for offset in offsets if offset < length] + [length]


def _fixed_origin(profile: ChargingProfile, session_start: datetime | None) -> datetime | None:
    """Origin of a non-Recurring profile; None: session-anchored, and no session."""
    start = profile.schedule.start_schedule
    if profile.session_anchored or start is None:
        return session_start
    return start


def _origin_before(
    profile: ChargingProfile, moment: datetime, session_start: datetime | None
) -> datetime | None:
    """Origin of the schedule instance that covers ``moment`` (if any does)."""
    cycle = recurrence(profile)
    if cycle is None:
        origin = _fixed_origin(profile, session_start)
        return moment if origin is None else origin
    first = profile.schedule.start_schedule
    if first is None or moment < first:
        return None
    return first + cycle * ((moment - first) // cycle)


def _origins(
    profile: ChargingProfile, start: datetime, end: datetime, session_start: datetime | None
) -> Iterator[datetime]:
    """Origins of the schedule instances that can reach into [start, end), in order."""
    cycle = recurrence(profile)
    if cycle is None:
        origin = _fixed_origin(profile, session_start)
        if origin is not None:
            yield origin
        return
    first = profile.schedule.start_schedule
    if first is None:
        return
    index = max(0, (start - first) // cycle)
    origin = first + cycle * index
    while origin < end:
        yield origin
        origin += cycle
