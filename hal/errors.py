"""Exception root of the hardware abstraction layer."""

from __future__ import annotations


class HalError(Exception):
    """Root of every error raised by a HAL backend."""


class HalConfigError(HalError, ValueError):
    """A backend was configured wrongly (unknown driver, bad pin, missing port)."""


class HalTimeout(HalError, TimeoutError):
    """A device did not answer in time."""


class RelayError(HalError):
    """The contactor did not follow its command (welded or failed to close)."""


class LockError(HalError):
    """The connector lock did not reach the commanded position."""


class MeterError(HalError):
    """The energy meter could not be read."""
