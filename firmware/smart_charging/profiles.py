"""OCPP 1.6 charging profiles: frozen values, parsed and checked from the JSON payload.

The ``ocpp`` package's schema validation runs first (types, required fields,
enum values). This module checks what the schema cannot express, and turns
the payload into values the composite schedule computation can trust.
References are to OCPP 1.6 edition 2: §3.13 (purposes, stacking), §5.16
(SetChargingProfile and its notes), §7.8 ChargingProfile, §7.13
ChargingSchedule, §7.14 ChargingSchedulePeriod, §7.37 RecurrencyKindType.

Decisions where the text leaves room:

- An Absolute profile without ``startSchedule`` is accepted: §7.13 says a
  schedule without ``startSchedule`` is relative to the start of charging, so
  it is evaluated like a Relative one (see ``ChargingProfile.session_anchored``).
- ``duration`` must be positive: a zero-length schedule would never apply, and
  a CSMS sending 0 most likely meant "no end" (omit the field for that), so
  such a profile is rejected rather than silently ignored.
- ``recurrencyKind`` on a non-Recurring profile is kept (and serialised back)
  but has no effect.
- ``transactionId`` is only accepted on a TxProfile (§7.8: only valid there).
- Periods that start at or after ``duration`` (or after the recurrence
  length) are accepted and never executed (§5.16.4 notes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ocpp.v16.enums import (
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    RecurrencyKind,
)

from firmware.clock import iso, parse_iso
from firmware.smart_charging.errors import ProfileError

ALL_UNITS = frozenset({ChargingRateUnitType.amps, ChargingRateUnitType.watts})


@dataclass(frozen=True, slots=True)
class ChargingSchedulePeriod:
    start_period: int  # seconds from the start of the schedule
    limit: float  # in the schedule's unit: A per phase, or W in total (§7.12)
    number_phases: int | None = None  # absent: 3 is assumed where it matters (§7.14)


@dataclass(frozen=True, slots=True)
class ChargingSchedule:
    charging_rate_unit: ChargingRateUnitType
    periods: tuple[ChargingSchedulePeriod, ...]
    duration: int | None = None  # seconds; None: the last period never ends
    start_schedule: datetime | None = None
    min_charging_rate: float | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    charging_profile_id: int
    stack_level: int
    purpose: ChargingProfilePurposeType
    kind: ChargingProfileKindType
    schedule: ChargingSchedule
    transaction_id: int | None = None
    recurrency_kind: RecurrencyKind | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        """Inside [validFrom, validTo); an absent bound does not limit (§7.8)."""
        if self.valid_from is not None and moment < self.valid_from:
            return False
        return self.valid_to is None or moment < self.valid_to

    @property
    def session_anchored(self) -> bool:
        """Periods count from the start of the session, not from a fixed time.

        True for Relative profiles, and for Absolute ones without
        ``startSchedule`` (§7.13: absent, the schedule is relative to the start
        of charging).
        """
        if self.kind == ChargingProfileKindType.relative:
            return True
        return (
            self.kind == ChargingProfileKindType.absolute and self.schedule.start_schedule is None
        )


@dataclass(frozen=True, slots=True)
class InstalledProfile:
    """A profile as installed by SetChargingProfile on ``connector_id`` (0: the station)."""

    connector_id: int
    profile: ChargingProfile


@dataclass(frozen=True, slots=True)
class ProfileLimits:
    """What the station accepts, as its Smart Charging configuration keys report (§3.13.5)."""

    max_stack_level: int  # ChargeProfileMaxStackLevel
    max_periods: int  # ChargingScheduleMaxPeriods
    # ChargingScheduleAllowedChargingRateUnit
    allowed_units: frozenset[ChargingRateUnitType] = ALL_UNITS


def parse_charging_profile(
    payload: Mapping[str, Any], *, connector_id: int, limits: ProfileLimits
) -> ChargingProfile:
    """SetChargingProfile.req ``csChargingProfiles`` sent for ``connector_id``.

    Raises ProfileError naming the field. Whether a TxProfile's transaction is
    running on the connector is the caller's check (§3.13.1: reject if not).
    """
    profile = _parse_profile(payload, limits)
    if connector_id < 0:
        raise ProfileError("connectorId", f"must be 0 or a connector, not {connector_id}")
    if profile.purpose == ChargingProfilePurposeType.tx_profile and connector_id == 0:
        raise ProfileError("chargingProfilePurpose", "a TxProfile cannot be set on connector 0")
    if profile.purpose == ChargingProfilePurposeType.charge_point_max_profile and connector_id != 0:
        raise ProfileError(
            "chargingProfilePurpose", "a ChargePointMaxProfile can only be set on connector 0"
        )
    return profile


def parse_remote_start_profile(
    payload: Mapping[str, Any], *, connector_id: int, limits: ProfileLimits
) -> ChargingProfile:
    """RemoteStartTransaction.req ``chargingProfile`` for the connector chosen for it.

    §5.16.2: the purpose must be TxProfile and ``transactionId`` must be absent;
    the profile then applies to the transaction this request starts.
    """
    profile = parse_charging_profile(payload, connector_id=connector_id, limits=limits)
    if profile.purpose != ChargingProfilePurposeType.tx_profile:
        raise ProfileError(
            "chargingProfilePurpose", "must be TxProfile in a RemoteStartTransaction"
        )
    if profile.transaction_id is not None:
        raise ProfileError("transactionId", "must be absent in a RemoteStartTransaction")
    return profile


def _parse_profile(payload: Mapping[str, Any], limits: ProfileLimits) -> ChargingProfile:
    if not isinstance(payload, Mapping):
        raise ProfileError("chargingProfile", "must be an object")
    stack_level = _int(payload, "stackLevel", "stackLevel")
    if stack_level < 0:
        raise ProfileError("stackLevel", f"must be >= 0, not {stack_level}")
    if stack_level > limits.max_stack_level:
        raise ProfileError(
            "stackLevel",
            f"{stack_level} is above ChargeProfileMaxStackLevel ({limits.max_stack_level})",
        )
    purpose = _enum(payload, "chargingProfilePurpose", ChargingProfilePurposeType)
    kind = _enum(payload, "chargingProfileKind", ChargingProfileKindType)
    transaction_id = _opt_int(payload, "transactionId", "transactionId")
    if transaction_id is not None and purpose != ChargingProfilePurposeType.tx_profile:
        raise ProfileError("transactionId", "only a TxProfile can name a transaction")
    recurrency = (
        _enum(payload, "recurrencyKind", RecurrencyKind)
        if payload.get("recurrencyKind") is not None
        else None
    )
    valid_from = _opt_datetime(payload, "validFrom", "validFrom")
    valid_to = _opt_datetime(payload, "validTo", "validTo")
    if valid_from is not None and valid_to is not None and valid_from >= valid_to:
        raise ProfileError("validTo", "must be later than validFrom")
    schedule = _parse_schedule(payload.get("chargingSchedule"), limits)
    if kind == ChargingProfileKindType.recurring:
        if recurrency is None:
            raise ProfileError("recurrencyKind", "is required for a Recurring profile")
        if schedule.start_schedule is None:
            raise ProfileError(
                "chargingSchedule.startSchedule", "is required for a Recurring profile"
            )
    if kind == ChargingProfileKindType.relative and schedule.start_schedule is not None:
        raise ProfileError("chargingSchedule.startSchedule", "must be absent in a Relative profile")
    return ChargingProfile(
        charging_profile_id=_int(payload, "chargingProfileId", "chargingProfileId"),
        stack_level=stack_level,
        purpose=purpose,
        kind=kind,
        schedule=schedule,
        transaction_id=transaction_id,
        recurrency_kind=recurrency,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def _parse_schedule(raw: object, limits: ProfileLimits) -> ChargingSchedule:
    where = "chargingSchedule"
    if not isinstance(raw, Mapping):
        raise ProfileError(where, "must be an object")
    unit = _enum(raw, "chargingRateUnit", ChargingRateUnitType, f"{where}.chargingRateUnit")
    if unit not in limits.allowed_units:
        raise ProfileError(f"{where}.chargingRateUnit", f"{unit} is not allowed on this station")
    duration = _opt_int(raw, "duration", f"{where}.duration")
    if duration is not None and duration <= 0:
        raise ProfileError(f"{where}.duration", "must be > 0 seconds (omit it for no end)")
    min_rate = _opt_number(raw, "minChargingRate", f"{where}.minChargingRate")
    if min_rate is not None and min_rate < 0:
        raise ProfileError(f"{where}.minChargingRate", "must be >= 0")
    return ChargingSchedule(
        charging_rate_unit=unit,
        periods=_parse_periods(raw.get("chargingSchedulePeriod"), limits),
        duration=duration,
        start_schedule=_opt_datetime(raw, "startSchedule", f"{where}.startSchedule"),
        min_charging_rate=min_rate,
    )


def _parse_periods(raw: object, limits: ProfileLimits) -> tuple[ChargingSchedulePeriod, ...]:
    where = "chargingSchedule.chargingSchedulePeriod"
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or not raw:
        raise ProfileError(where, "must be a non-empty list")
    if len(raw) > limits.max_periods:
        raise ProfileError(
            where, f"{len(raw)} periods, ChargingScheduleMaxPeriods is {limits.max_periods}"
        )
    periods: list[ChargingSchedulePeriod] = []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise ProfileError(at, "must be an object")
        start = _int(item, "startPeriod", f"{at}.startPeriod")
        if index == 0 and start != 0:
            raise ProfileError(f"{at}.startPeriod", f"must be 0 in the first period, not {start}")
        if periods and start <= periods[-1].start_period:
            raise ProfileError(
                f"{at}.startPeriod",
                f"{start} does not come after the previous period's {periods[-1].start_period}",
            )
        limit = _number(item, "limit", f"{at}.limit")
        if limit < 0:
            raise ProfileError(f"{at}.limit", f"must be >= 0, not {limit}")
        phases = _opt_int(item, "numberPhases", f"{at}.numberPhases")
        if phases is not None and not 1 <= phases <= 3:
            raise ProfileError(f"{at}.numberPhases", f"must be 1, 2 or 3, not {phases}")
        periods.append(ChargingSchedulePeriod(start, limit, phases))
    return tuple(periods)


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if value is None:
        raise ProfileError(where, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(where, f"must be an integer, not {value!r}")
    return value


def _opt_int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    return None if data.get(key) is None else _int(data, key, where)


def _number(data: Mapping[str, Any], key: str, where: str) -> float:
    value = data.get(key)
    if value is None:
        raise ProfileError(where, "is required")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ProfileError(where, f"must be a number, not {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ProfileError(where, f"must be a finite number, not {value!r}")
    return number


def _opt_number(data: Mapping[str, Any], key: str, where: str) -> float | None:
    return None if data.get(key) is None else _number(data, key, where)


def _opt_datetime(data: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return parse_iso(value).astimezone(UTC)  # an offset is kept as the instant it names
    except ValueError:
        raise ProfileError(where, f"not an ISO 8601 date-time: {value!r}") from None


def _enum(data: Mapping[str, Any], key: str, enum: Any, where: str | None = None) -> Any:
    value = data.get(key)
    if value is None:
        raise ProfileError(where or key, "is required")
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ProfileError(where or key, f"must be one of {allowed}, not {value!r}") from None


def profile_to_ocpp(profile: ChargingProfile) -> dict[str, Any]:
    """The OCPP 1.6 ChargingProfile object (for persistence); absent fields are left out."""
    payload: dict[str, Any] = {
        "chargingProfileId": profile.charging_profile_id,
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": profile.purpose.value,
        "chargingProfileKind": profile.kind.value,
    }
    if profile.transaction_id is not None:
        payload["transactionId"] = profile.transaction_id
    if profile.recurrency_kind is not None:
        payload["recurrencyKind"] = profile.recurrency_kind.value
    if profile.valid_from is not None:
        payload["validFrom"] = iso(profile.valid_from)
    if profile.valid_to is not None:
        payload["validTo"] = iso(profile.valid_to)
    payload["chargingSchedule"] = schedule_to_ocpp(profile.schedule)
    return payload


def schedule_to_ocpp(schedule: ChargingSchedule) -> dict[str, Any]:
    """The OCPP 1.6 ChargingSchedule object; absent fields are left out."""
    payload: dict[str, Any] = {}
    if schedule.duration is not None:
        payload["duration"] = schedule.duration
    if schedule.start_schedule is not None:
        payload["startSchedule"] = iso(schedule.start_schedule)
    payload["chargingRateUnit"] = schedule.charging_rate_unit.value
    payload["chargingSchedulePeriod"] = [_period_to_ocpp(p) for p in schedule.periods]
    if schedule.min_charging_rate is not None:
        payload["minChargingRate"] = schedule.min_charging_rate
    return payload


def _period_to_ocpp(period: ChargingSchedulePeriod) -> dict[str, Any]:
    payload: dict[str, Any] = {"startPeriod": period.start_period, "limit": period.limit}
    if period.number_phases is not None:
        payload["numberPhases"] = period.number_phases
    return payload
