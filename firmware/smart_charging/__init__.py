"""OCPP 1.6 Smart Charging: charging profiles and the composite schedule (pure, no I/O).

The daemon parses a profile from SetChargingProfile / RemoteStartTransaction
with ``parse_charging_profile`` / ``parse_remote_start_profile``, keeps the
installed ones as ``InstalledProfile`` values (persisted with
``profile_to_ocpp``), and asks ``limit_at`` for the limit to apply,
``next_change_after`` for when to apply the next one, and
``composite_schedule`` to answer GetCompositeSchedule.
"""

from __future__ import annotations

from firmware.smart_charging.composite import (
    CompositePeriod,
    CompositeSchedule,
    Limit,
    Supply,
    TransactionContext,
    composite_schedule,
    limit_at,
    next_change_after,
    tx_profile_applies,
)
from firmware.smart_charging.errors import ProfileError, SmartChargingError
from firmware.smart_charging.profiles import (
    ChargingProfile,
    ChargingSchedule,
    ChargingSchedulePeriod,
    InstalledProfile,
    ProfileLimits,
    parse_charging_profile,
    parse_remote_start_profile,
    profile_to_ocpp,
    schedule_to_ocpp,
)

__all__ = [
    "ChargingProfile",
    "ChargingSchedule",
    "ChargingSchedulePeriod",
    "CompositePeriod",
    "CompositeSchedule",
    "InstalledProfile",
    "Limit",
    "ProfileError",
    "ProfileLimits",
    "SmartChargingError",
    "Supply",
    "TransactionContext",
    "composite_schedule",
    "limit_at",
    "next_change_after",
    "parse_charging_profile",
    "parse_remote_start_profile",
    "profile_to_ocpp",
    "schedule_to_ocpp",
    "tx_profile_applies",
]
