"""Pieces the GPIO drivers share: typed views of gpiozero devices, debouncing, checks."""

from __future__ import annotations

import contextlib
import math
from typing import Protocol

from gpiozero import DigitalInputDevice, OutputDevice
from gpiozero.exc import GPIOZeroError

from hal.errors import HalConfigError

POLL_S = 0.01  # how often the drivers look at their inputs


class OutputPin(Protocol):
    """What the drivers use of a gpiozero ``OutputDevice``."""

    @property
    def is_active(self) -> bool: ...

    def on(self) -> None: ...

    def off(self) -> None: ...

    def close(self) -> None: ...


class InputPin(Protocol):
    """What the drivers use of a gpiozero ``DigitalInputDevice``."""

    @property
    def is_active(self) -> bool: ...

    def close(self) -> None: ...


def check_pin(role: str, pin: object) -> int:
    """A GPIO number (BCM numbering), or ``HalConfigError`` naming ``role``."""
    if isinstance(pin, bool) or not isinstance(pin, int) or pin < 0:
        raise HalConfigError(f"{role}: GPIO pin must be a whole number >= 0, got {pin!r}")
    return pin


def check_distinct(owner: str, pins: dict[str, int | None]) -> None:
    """``HalConfigError`` when two roles of one driver share a pin."""
    seen: dict[int, str] = {}
    for role, pin in pins.items():
        if pin is None:
            continue
        if pin in seen:
            raise HalConfigError(f"{owner}: {role} and {seen[pin]} both use GPIO {pin}")
        seen[pin] = role


def check_duration(role: str, value: object, *, positive: bool = False) -> float:
    """A finite number of seconds (>= 0, or > 0 when ``positive``)."""
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    low_ok = number > 0.0 if positive else number >= 0.0
    if not (math.isfinite(number) and low_ok):
        bound = "> 0" if positive else ">= 0"
        raise HalConfigError(f"{role}: must be a number of seconds {bound}, got {value!r}")
    return number


def check_flag(role: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise HalConfigError(f"{role}: must be true or false, got {value!r}")
    return value


def open_output(role: str, pin: int, *, active_high: bool, pin_factory: object | None) -> OutputPin:
    """An output that starts released (inactive); gpiozero errors become ``HalConfigError``."""
    try:
        device: OutputPin = OutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )
    except GPIOZeroError as err:
        raise HalConfigError(f"{role}: GPIO {pin}: {err}") from err
    return device


def open_input(
    role: str,
    pin: int,
    *,
    active_high: bool,
    pin_factory: object | None,
    pull_to_active: bool = False,
) -> InputPin:
    """An input whose ``is_active`` means "asserted" (the line at its active level).

    The internal pull resistor holds an open line at the inactive level, or at
    the active level with ``pull_to_active`` (fail safe for normally-closed
    safety contacts: a broken wire reads as asserted).
    """
    pull_up = active_high if pull_to_active else not active_high
    try:
        device: InputPin = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=pin_factory)
    except GPIOZeroError as err:
        raise HalConfigError(f"{role}: GPIO {pin}: {err}") from err
    return _Inverted(device) if pull_to_active else device


class _Inverted:
    """An input read the other way round (gpiozero ties "active" to the pull)."""

    def __init__(self, device: InputPin) -> None:
        self._device = device

    @property
    def is_active(self) -> bool:
        return not self._device.is_active

    def close(self) -> None:
        self._device.close()


def close_quietly(*devices: OutputPin | InputPin | None) -> None:
    """Release gpiozero devices, ignoring those already closed."""
    for device in devices:
        if device is None:
            continue
        with contextlib.suppress(GPIOZeroError):
            device.close()


class Debouncer:
    """Accepts a new level only once it has been read unchanged for ``debounce_s``.

    Fed by polling: a level counts as stable when two readings at least
    ``debounce_s`` apart showed it with no other level read in between, so a
    pulse shorter than ``debounce_s`` is never accepted.
    """

    def __init__(self, level: bool, now: float, debounce_s: float) -> None:
        self.debounce_s = debounce_s
        self.stable = level
        self.stable_since = now  # when the readings first showed ``stable``
        self._raw = level
        self._raw_since = now

    @property
    def pending(self) -> bool:
        """The last reading differs from the stable level and is being debounced."""
        return self._raw != self.stable

    @property
    def pending_since(self) -> float:
        """When the readings started to show the level being debounced."""
        return self._raw_since

    def sample(self, level: bool, now: float) -> bool:
        """Take one reading; True when it made the stable level change."""
        if level != self._raw:
            self._raw = level
            self._raw_since = now
        if level != self.stable and now - self._raw_since >= self.debounce_s:
            self.stable = level
            self.stable_since = self._raw_since
            return True
        return False
