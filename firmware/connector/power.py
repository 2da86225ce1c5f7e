"""The power path of one connector: cable lock, offered current (PWM), contactor.

Energy is withdrawn first and the contactor opens on any doubt; a failure of
the hardware to follow is reported as a fault, never raised to the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hal.errors import HalError, RelayError
from hal.interfaces import ConnectorHardware, Fault

log = logging.getLogger("firmware.connector")


# After the contactor dropped out on its own (its supply cut, e.g. by an RCD),
# it is not closed again for this long: the cause is usually reported a moment later.
DROP_OUT_HOLD_S = 2.0


class PowerPath:
    def __init__(self, hw: ConnectorHardware, monotonic: Callable[[], float]) -> None:
        self.hw = hw
        self._monotonic = monotonic
        self.closed_at = 0.0
        self._holding = False  # we closed it and have not opened it since
        self._dropped_at: float | None = None
        self.close_commanded_at = 0.0  # time.monotonic() of the last successful close command

    @property
    def id(self) -> int:
        return self.hw.connector_id

    async def drive(self, offer_a: float, close: bool) -> set[Fault]:
        """Bring offer and contactor to the wanted state; returns faults found on the way."""
        faults: set[Fault] = set()
        now = self._monotonic()
        if self._holding and not self.hw.relay.commanded_closed:
            self._holding = False
            self._dropped_at = now
            log.warning("connector %d contactor dropped out; holding it open", self.id)
        held = self._dropped_at is not None and now - self._dropped_at < DROP_OUT_HOLD_S
        try:
            if not close and self.hw.relay.commanded_closed:
                faults |= await self.open_relay()
            if self.hw.evse.offered_current_a != offer_a:
                await self.hw.evse.offer_current(offer_a)
            if close and not held and not self.hw.relay.commanded_closed:
                commanded_at = time.monotonic()
                await self.hw.relay.close()
                self.close_commanded_at = commanded_at
                self._holding = True
                self.closed_at = self._monotonic()
                log.info("connector %d relay closed", self.id)
        except RelayError as err:
            log.error("connector %d contactor failed to close: %s", self.id, err)
            faults.add(Fault.CONTACTOR_FAILED_TO_CLOSE)
            faults |= await self.withdraw()
        except (HalError, ValueError) as err:
            log.error("connector %d hardware error: %s; withdrawing energy", self.id, err)
            faults |= await self.withdraw()
        return faults

    async def open_relay(self) -> set[Fault]:
        self._holding = False
        try:
            await self.hw.relay.open()
            log.info("connector %d relay opened", self.id)
        except RelayError as err:
            log.error("connector %d contactor welded: %s", self.id, err)
            return {Fault.CONTACTOR_WELDED}
        return set()

    async def lock(self) -> bool:
        """Lock the cable (verified by feedback); True when locked or there is no lock."""
        lock = self.hw.lock
        if lock is None or lock.locked:
            return True
        try:
            await lock.lock()
        except HalError as err:
            log.error("connector %d cannot lock the cable: %s", self.id, err)
            return False
        return True

    async def unlock(self) -> bool:
        """Release the cable; True when released or there is no lock."""
        if self.hw.lock is None:
            return True
        try:
            await self.hw.lock.unlock()
        except HalError as err:
            log.error("connector %d cannot unlock: %s", self.id, err)
            return False
        return True

    async def withdraw(self) -> set[Fault]:
        """Stop offering and open the relay, whatever fails on the way."""
        faults: set[Fault] = set()
        try:
            await self.hw.evse.offer_current(0.0)
        except Exception as err:
            log.error("connector %d cannot stop offering: %s", self.id, err)
        try:
            faults |= await self.open_relay()
        except Exception as err:
            log.error("connector %d cannot open relay: %s", self.id, err)
        return faults
