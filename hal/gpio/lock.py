"""Motorised cable lock: lock and unlock pulses on two GPIO outputs, position switch input."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from hal.errors import HalConfigError, LockError
from hal.gpio._common import (
    POLL_S,
    InputPin,
    OutputPin,
    check_distinct,
    check_duration,
    check_flag,
    check_pin,
    close_quietly,
    open_input,
    open_output,
)
from hal.interfaces import Fault, FaultChanged, HalEvent

log = logging.getLogger("hal.gpio")


class GpioLock:
    """Cable lock of one socket outlet (``hal.interfaces.ConnectorLock``).

    ``lock()`` / ``unlock()`` drive the matching output (active high) for
    ``pulse_s`` (the other output is always released first, so the two are
    never driven together), then wait up to ``settle_s`` for the position
    switch to report the target. A failed attempt is repeated ``retries`` more
    times; then ``LOCK_FAILURE`` is reported and ``LockError`` raised. The
    next successful operation clears the fault (event with ``active=False``).
    ``locked`` is the position switch as read now. Operations are serialised.

    ``run()`` watches the switch between operations: after a confirmed lock or
    unlock it must stay there. When it leaves that position for ``supervise_s``
    (a bolt forced back, a broken switch), ``LOCK_FAILURE`` is reported; it
    clears when the switch returns or the next operation succeeds.
    """

    def __init__(
        self,
        connector_id: int,
        events: asyncio.Queue[HalEvent],
        *,
        lock_pin: int,
        unlock_pin: int,
        feedback_pin: int,
        feedback_active_high: bool = True,
        pulse_s: float = 0.3,
        settle_s: float = 0.5,
        retries: int = 2,
        supervise_s: float = 0.2,
        pin_factory: object | None = None,
    ) -> None:
        name = f"lock of connector {connector_id}"
        check_pin(f"{name}: lock_pin", lock_pin)
        check_pin(f"{name}: unlock_pin", unlock_pin)
        check_pin(f"{name}: feedback_pin", feedback_pin)
        check_distinct(
            name, {"lock_pin": lock_pin, "unlock_pin": unlock_pin, "feedback_pin": feedback_pin}
        )
        check_flag(f"{name}: feedback_active_high", feedback_active_high)
        self._pulse_s = check_duration(f"{name}: pulse_s", pulse_s, positive=True)
        self._settle_s = check_duration(f"{name}: settle_s", settle_s)
        self._supervise_s = check_duration(f"{name}: supervise_s", supervise_s)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise HalConfigError(f"{name}: retries must be a whole number >= 0, got {retries!r}")
        self._retries = retries
        self._id = connector_id
        self._name = name
        self._events = events
        self._failed = False
        self.supervised_at = -math.inf
        self._expected: bool | None = None  # position confirmed by the last operation
        self._moved_alone = False  # the fault came from supervision, not an operation
        self._operation = asyncio.Lock()
        opened: list[OutputPin | InputPin] = []
        try:
            self._lock_out = open_output(
                f"{name}: lock", lock_pin, active_high=True, pin_factory=pin_factory
            )
            opened.append(self._lock_out)
            self._unlock_out = open_output(
                f"{name}: unlock", unlock_pin, active_high=True, pin_factory=pin_factory
            )
            opened.append(self._unlock_out)
            self._feedback = open_input(
                f"{name}: feedback",
                feedback_pin,
                active_high=feedback_active_high,
                pin_factory=pin_factory,
            )
        except BaseException:
            close_quietly(*opened)
            raise

    @property
    def connector_id(self) -> int:
        return self._id

    @property
    def locked(self) -> bool:
        return bool(self._feedback.is_active)

    @property
    def failed(self) -> bool:
        """Whether ``LOCK_FAILURE`` is reported and not yet cleared."""
        return self._failed

    async def lock(self) -> None:
        await self._drive(True)

    async def unlock(self) -> None:
        await self._drive(False)

    async def run(self) -> None:
        """Supervise the position switch between operations until cancelled."""
        since: float | None = None
        while True:
            await asyncio.sleep(POLL_S)
            self.supervised_at = time.monotonic()  # the last look at the switch (tests wait on it)
            expected = self._expected
            if expected is None or self._operation.locked():
                since = None
                continue
            if self.locked is expected:
                since = None
                if self._moved_alone:
                    self._moved_alone = False
                    log.info("%s: position switch back where it was put", self._name)
                    self._report(False)
                continue
            now = time.monotonic()
            if since is None:
                since = now
            elif now - since >= self._supervise_s and not self._failed:
                where = "locked" if expected else "unlocked"
                log.error("%s: position switch left the %s position", self._name, where)
                self._moved_alone = True
                self._report(True)

    def release_pins(self) -> None:
        """Stop driving and give the GPIO lines back (the driver is unusable after)."""
        self._lock_out.off()
        self._unlock_out.off()
        close_quietly(self._lock_out, self._unlock_out, self._feedback)

    async def _drive(self, locked: bool) -> None:
        verb = "lock" if locked else "unlock"
        drive, other = (
            (self._lock_out, self._unlock_out) if locked else (self._unlock_out, self._lock_out)
        )
        async with self._operation:
            attempts = 1 + self._retries
            for attempt in range(1, attempts + 1):
                other.off()
                drive.on()
                try:
                    await asyncio.sleep(self._pulse_s)
                finally:
                    drive.off()
                if await self._wait_for(locked):
                    self._expected = locked
                    self._moved_alone = False
                    self._report(False)
                    return
                log.warning(
                    "%s: %s attempt %d of %d not confirmed", self._name, verb, attempt, attempts
                )
            self._expected = None
            self._moved_alone = False
            self._report(True)
            raise LockError(
                f"{self._name}: did not {verb} after {attempts} attempt(s) (feedback unchanged)"
            )

    async def _wait_for(self, locked: bool) -> bool:
        deadline = time.monotonic() + self._settle_s
        while True:
            if self.locked is locked:
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            await asyncio.sleep(min(POLL_S, deadline - now))

    def _report(self, active: bool) -> None:
        if self._failed == active:
            return
        self._failed = active
        self._events.put_nowait(FaultChanged(self._id, Fault.LOCK_FAILURE, active))
