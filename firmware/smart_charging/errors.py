"""Errors of the smart charging package."""

from __future__ import annotations

from firmware.errors import FirmwareError


class SmartChargingError(FirmwareError):
    """Root of the smart charging package's errors."""


class ProfileError(SmartChargingError, ValueError):
    """A charging profile the schema allows but OCPP 1.6 semantics do not.

    ``field`` is the path of the offending field inside the profile object
    (``chargingSchedule.chargingSchedulePeriod[1].startPeriod``), so the
    handler can log it; SetChargingProfile answers such a profile with status
    Rejected, not with a CALLERROR.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
