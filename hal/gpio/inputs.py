"""Station-wide GPIO inputs: the emergency-stop button and the tamper switch."""

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


class _StationInput:
    """A debounced contact reported as ``FAULT`` on connector 0.

    ``run()`` reads the pin every ``POLL_S`` and puts one ``FaultChanged``
    per debounced change (a level must hold for ``debounce_s``). It starts
    from "inactive", so a contact already active at start is reported once
    it has been read for ``debounce_s``.

    The contact is expected normally closed, holding the line at the inactive
    level; the internal pull resistor pulls towards the active level, so an
    open contact and a broken wire both read as active.
    ``active_high=True``: contact to GND with pull-up (open reads high = active);
    ``active_high=False`` (the default): contact to 3V3 with pull-down.
    """

    FAULT: Fault
    NAME: str
    ACTIVE: str
    INACTIVE: str

    def __init__(
        self,
        events: asyncio.Queue[HalEvent],
        *,
        pin: int,
        active_high: bool = False,
        debounce_s: float = 0.05,
        pin_factory: object | None = None,
    ) -> None:
        check_pin(f"{self.NAME}: pin", pin)
        check_flag(f"{self.NAME}: active_high", active_high)
        self._debounce_s = check_duration(f"{self.NAME}: debounce_s", debounce_s)
        self._events = events
        self._input: InputPin = open_input(
            self.NAME,
            pin,
            active_high=active_high,
            pin_factory=pin_factory,
            pull_to_active=True,
        )
        self._active = False
        self.supervised_at = -math.inf

    @property
    def active(self) -> bool:
        """The last state reported (False until ``run()`` has seen the contact active)."""
        return self._active

    async def run(self) -> None:
        """Watch the contact until cancelled."""
        contact = Debouncer(False, time.monotonic(), self._debounce_s)
        while True:
            now = time.monotonic()
            self.supervised_at = now  # the last look at the contact (tests wait on it)
            if contact.sample(bool(self._input.is_active), now):
                self._active = contact.stable
                if self._active:
                    log.error("%s", self.ACTIVE)
                else:
                    log.warning("%s", self.INACTIVE)
                self._events.put_nowait(FaultChanged(STATION_ID, self.FAULT, self._active))
            await asyncio.sleep(POLL_S)

    def release_pins(self) -> None:
        """Give the GPIO line back (the driver is unusable after)."""
        close_quietly(self._input)


class GpioEmergencyStop(_StationInput):
    """Emergency-stop input reported as ``Fault.EMERGENCY_STOP`` on connector 0
    (a normally-closed button: pressed or a broken wire is a stop)."""

    FAULT = Fault.EMERGENCY_STOP
    NAME = "emergency stop"
    ACTIVE = "emergency stop pressed"
    INACTIVE = "emergency stop released"


class GpioTamper(_StationInput):
    """Tamper switch (enclosure door, cover) reported as ``Fault.TAMPER`` on
    connector 0: a normally-closed contact, so an opened door and a cut wire
    both read as tampering."""

    FAULT = Fault.TAMPER
    NAME = "tamper"
    ACTIVE = "tamper switch active: the enclosure is open"
    INACTIVE = "tamper switch back to normal"
