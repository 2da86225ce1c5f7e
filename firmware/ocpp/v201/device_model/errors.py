"""Errors of the device model."""

from __future__ import annotations

from firmware.errors import FirmwareError


class DeviceModelError(FirmwareError):
    """Root of the device model's errors."""
