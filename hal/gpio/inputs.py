"""Station-wide GPIO inputs: the emergency-stop button."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from hal.gpio._common import (
    POLL_S,
    Debouncer,
    InputPin,
    check_duration,
    check_flag,
    check_pin,
    close_quietly,
    open_input,
)
from hal.interfaces import Fault, FaultChanged, HalEvent

log = logging.getLogger("hal.gpio")

STATION_ID = 0  # FaultChanged on connector 0 concerns the whole station


class GpioEmergencyStop:
    """Emergency-stop input reported as ``Fault.EMERGENCY_STOP`` on connector 0.

    ``run()`` reads the pin every ``POLL_S`` and puts one ``FaultChanged``
    per debounced change (a level must hold for ``debounce_s``). It starts
    from "not pressed", so a button already pressed at start is reported once
    it has been read for ``debounce_s``.

    The button is expected as a normally-closed contact that holds the line
    at the inactive level; the internal pull resistor pulls towards the active
    level, so a pressed button and a broken wire both read as pressed.
    ``active_high=True``: contact to GND with pull-up (open reads high = stop);
    ``active_high=False`` (the default): contact to 3V3 with pull-down.
    """

    def __init__(
        self,
        events: asyncio.Queue[HalEvent],
        *,
        pin: int,
        active_high: bool = False,
        debounce_s: float = 0.05,
        pin_factory: object | None = None,
    ) -> None:
        check_pin("emergency stop: pin", pin)
        check_flag("emergency stop: active_high", active_high)
        self._debounce_s = check_duration("emergency stop: debounce_s", debounce_s)
        self._events = events
        self._input: InputPin = open_input(
            "emergency stop",
            pin,
            active_high=active_high,
            pin_factory=pin_factory,
            pull_to_active=True,
        )
        self._active = False
        self.supervised_at = -math.inf

    @property
    def active(self) -> bool:
        """The last state reported (False until ``run()`` has seen the button pressed)."""
        return self._active

    async def run(self) -> None:
        """Watch the button until cancelled."""
        button = Debouncer(False, time.monotonic(), self._debounce_s)
        while True:
            now = time.monotonic()
            self.supervised_at = now  # the last look at the button (tests wait on it)
            if button.sample(bool(self._input.is_active), now):
                self._active = button.stable
                if self._active:
                    log.error("emergency stop pressed")
                else:
                    log.warning("emergency stop released")
                self._events.put_nowait(
                    FaultChanged(STATION_ID, Fault.EMERGENCY_STOP, self._active)
                )
            await asyncio.sleep(POLL_S)

    def release_pins(self) -> None:
        """Give the GPIO line back (the driver is unusable after)."""
        close_quietly(self._input)
