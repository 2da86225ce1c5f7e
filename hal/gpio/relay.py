"""Contactor on a GPIO output, verified by its auxiliary contact on a GPIO input."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from hal.errors import HalConfigError, RelayError
from hal.gpio._common import (
    POLL_S,
    Debouncer,
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


class GpioRelay:
    """Main contactor of one connector (``hal.interfaces.Relay``).

    The coil is a gpiozero ``OutputDevice`` that starts released; the optional
    auxiliary contact is a ``DigitalInputDevice`` read through a debouncer
    (readings shorter than ``debounce_s`` never count). ``settle_s`` is how long
    the contacts may take to follow the coil.

    With feedback:

    - ``close()`` refuses a contactor known to be welded, and never energises
      a coil whose contact reads closed: it first waits for the contact to
      open (at most ``settle_s`` after the last release) and latches the weld
      if it does not. Then it drives the coil and waits up to ``settle_s``
      for the contact to read closed; if it does not, the coil is released,
      ``CONTACTOR_FAILED_TO_CLOSE`` is reported and ``RelayError`` raised.
      The next successful close clears that fault. A close that an
      ``open()`` overtakes raises ``RelayError`` without a fault, and a
      cancelled close releases the coil.
    - ``open()`` releases the coil at once, then waits for the contact to read
      open; if it stays closed the contactor is latched as welded
      (``CONTACTOR_WELDED`` reported, ``RelayError`` raised) and is never
      energised again until the latch clears.
    - ``run()`` watches the contact: closed with the coil released for longer
      than ``settle_s`` latches the weld; a welded latch clears (event with
      ``active=False``) once the contact has read open for ``settle_s``; a
      contact that drops out while closed (RCD trip cutting the coil supply,
      coil failure) makes the driver release the coil, so ``commanded_closed``
      drops and the contactor does not close again by itself.

    Without feedback nothing is verified and ``feedback_closed`` is None.
    Fault events go to ``events`` with ``put_nowait`` (the queue must be
    unbounded) and only when the fault's state changes.
    """

    def __init__(
        self,
        connector_id: int,
        events: asyncio.Queue[HalEvent],
        *,
        pin: int,
        active_high: bool = True,
        feedback_pin: int | None = None,
        feedback_active_high: bool = True,
        debounce_s: float = 0.03,
        settle_s: float = 0.3,
        pin_factory: object | None = None,
    ) -> None:
        name = f"relay of connector {connector_id}"
        check_pin(f"{name}: pin", pin)
        if feedback_pin is not None:
            check_pin(f"{name}: feedback_pin", feedback_pin)
        check_distinct(name, {"pin": pin, "feedback_pin": feedback_pin})
        check_flag(f"{name}: active_high", active_high)
        check_flag(f"{name}: feedback_active_high", feedback_active_high)
        self._debounce_s = check_duration(f"{name}: debounce_s", debounce_s)
        self._settle_s = check_duration(f"{name}: settle_s", settle_s, positive=True)
        if feedback_pin is not None and self._settle_s <= self._debounce_s:
            raise HalConfigError(
                f"{name}: settle_s ({settle_s!r}) must be longer than debounce_s ({debounce_s!r})"
            )
        self._id = connector_id
        self._name = name
        self._events = events
        self._coil: OutputPin = open_output(
            f"{name}: coil", pin, active_high=active_high, pin_factory=pin_factory
        )
        self._feedback: InputPin | None = None
        if feedback_pin is not None:
            try:
                self._feedback = open_input(
                    f"{name}: feedback",
                    feedback_pin,
                    active_high=feedback_active_high,
                    pin_factory=pin_factory,
                )
            except BaseException:
                close_quietly(self._coil)
                raise
        now = time.monotonic()
        self._contact = Debouncer(self._read_feedback(), now, self._debounce_s)
        self.supervised_at = -math.inf
        self._released_at = now  # when the coil was last released
        self._verified_closed = False  # a close() saw the contact pull in
        self._opens = 0  # open() calls so far: a close() gives way to a later open()
        self._active: set[Fault] = set()
        self._operation = asyncio.Lock()

    # ------------------------------------------------------------ state

    @property
    def connector_id(self) -> int:
        return self._id

    @property
    def commanded_closed(self) -> bool:
        return bool(self._coil.is_active)

    @property
    def feedback_closed(self) -> bool | None:
        if self._feedback is None:
            return None
        self._sample(time.monotonic())
        return self._contact.stable

    @property
    def welded(self) -> bool:
        """The weld latch: while set, ``close()`` never energises the coil."""
        return Fault.CONTACTOR_WELDED in self._active

    @property
    def faults(self) -> frozenset[Fault]:
        """Faults this driver has reported as active and not yet cleared."""
        return frozenset(self._active)

    # ------------------------------------------------------------ commands

    async def close(self) -> None:
        opens = self._opens
        async with self._operation:
            self._supervise(time.monotonic())
            if self.welded:
                raise RelayError(f"{self._name}: contactor is welded, not energising it")
            if self.commanded_closed and (self._verified_closed or self._feedback is None):
                return
            if not await self._wait_released_contact_open():
                self._report(Fault.CONTACTOR_WELDED, True)
                raise RelayError(
                    f"{self._name}: contactor welded (feedback closed with the coil released)"
                )
            if self._opens != opens:
                raise RelayError(f"{self._name}: close interrupted by open()")
            self._coil.on()
            if self._feedback is None:
                return
            try:
                closed = await self._wait_closed(opens)
            except BaseException:
                self._release(time.monotonic())
                raise
            if closed:
                self._verified_closed = True
                self._report(Fault.CONTACTOR_FAILED_TO_CLOSE, False)
                return
            if self._opens != opens:
                raise RelayError(f"{self._name}: close interrupted by open()")
            self._release(time.monotonic())
            self._report(Fault.CONTACTOR_FAILED_TO_CLOSE, True)
            raise RelayError(f"{self._name}: contactor did not close (feedback open)")

    async def open(self) -> None:
        self._opens += 1
        self._release(time.monotonic())
        if self._feedback is None:
            return
        async with self._operation:
            if await self._wait_released_contact_open():
                return
            self._report(Fault.CONTACTOR_WELDED, True)
            raise RelayError(
                f"{self._name}: contactor welded (feedback closed with the coil released)"
            )

    async def run(self) -> None:
        """Watch the auxiliary contact every ``POLL_S`` until cancelled."""
        while True:
            now = time.monotonic()
            self._supervise(now)
            self.supervised_at = now  # the last look at the contact (evidence for tests)
            await asyncio.sleep(POLL_S)

    def release_pins(self) -> None:
        """Release the coil and give the GPIO lines back (the driver is unusable after)."""
        self._release(time.monotonic())
        close_quietly(self._coil, self._feedback)

    # ------------------------------------------------------------ internals

    def _read_feedback(self) -> bool:
        return self._feedback is not None and bool(self._feedback.is_active)

    def _sample(self, now: float) -> None:
        if self._feedback is not None:
            self._contact.sample(self._read_feedback(), now)

    def _release(self, now: float) -> None:
        if self.commanded_closed:
            self._released_at = now
        self._coil.off()
        self._verified_closed = False

    async def _wait_released_contact_open(self) -> bool:
        """With the coil released: wait until the contact reads open, at most until
        ``settle_s`` after the release. False when it still reads closed (welded)."""
        deadline = self._released_at + self._settle_s
        while True:
            now = time.monotonic()
            self._supervise(now)
            if not self._contact.stable:
                return True
            if self.welded or self._past(deadline, now):
                return False
            await asyncio.sleep(POLL_S)

    async def _wait_closed(self, opens: int) -> bool:
        """Wait up to ``settle_s`` for a closed contact; False if not, or if ``open()``
        was called since ``opens`` was read."""
        deadline = time.monotonic() + self._settle_s
        while True:
            now = time.monotonic()
            self._supervise(now)
            if self._opens != opens:
                return False
            if self._contact.stable:
                return True
            if self._past(deadline, now):
                return False
            await asyncio.sleep(POLL_S)

    def _past(self, deadline: float, now: float) -> bool:
        """Whether the wait is over: at the deadline, a reading still being debounced gets
        its debounce time (after a stall of the event loop the first reading is late)."""
        if now < deadline:
            return False
        contact = self._contact
        return not contact.pending or now > contact.pending_since + self._debounce_s

    def _supervise(self, now: float) -> None:
        if self._feedback is None:
            return
        self._sample(now)
        closed = self._contact.stable
        if self.commanded_closed:
            if self._verified_closed and not closed:
                log.warning("%s: contact dropped out, releasing the coil", self._name)
                self._release(now)
            return
        if closed:
            late = now - self._released_at >= self._settle_s and not self._contact.pending
            if not self.welded and late:
                log.error("%s: contact closed with the coil released (welded)", self._name)
                self._report(Fault.CONTACTOR_WELDED, True)
        elif self.welded:
            open_since = max(self._contact.stable_since, self._released_at)
            if now - open_since >= self._settle_s:
                log.info("%s: contact reads open again, weld cleared", self._name)
                self._report(Fault.CONTACTOR_WELDED, False)

    def _report(self, fault: Fault, active: bool) -> None:
        if (fault in self._active) == active:
            return
        if active:
            self._active.add(fault)
        else:
            self._active.discard(fault)
        self._events.put_nowait(FaultChanged(self._id, fault, active))
