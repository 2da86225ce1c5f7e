"""OCPP 1.6 Smart Charging: charging profiles (pure, no I/O).

The daemon parses a profile from SetChargingProfile / RemoteStartTransaction
with ``parse_charging_profile`` / ``parse_remote_start_profile`` and keeps the
installed ones as ``InstalledProfile`` values, persisted with
``profile_to_ocpp``.
"""

from __future__ import annotations

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
    "InstalledProfile",
    "ProfileError",
    "ProfileLimits",
    "SmartChargingError",
    "parse_charging_profile",
    "parse_remote_start_profile",
    "profile_to_ocpp",
    "schedule_to_ocpp",
]
