"""Security events the station detects by itself, and how often they may be raised.

- StartupOfTheDevice at every start; ResetOrReboot for a restart that
  followed no clean shutdown; SecurityLogWasCleared when the log was lost
  (``report_start``, from ``runs.RunRecord``). A Reset asked by the CSMS is
  raised by the app when it takes the request.
- SettingSystemTime: the clock adopted from the CSMS moved by more than a
  threshold (``ClockWatch``).
- InvalidMessages and MemoryExhaustion can come in bursts (a CSMS sending
  garbage, a full disk): ``RepeatLimit`` raises the first at once and then at
  most one entry per interval counting the repeats.
- MemoryExhaustion (``MemoryWatch``): a MemoryError logged anywhere (every
  task logs what kills it), the state database full (SQLITE_FULL), and the
  daemon's resident memory above a configured limit.
- TamperDetectionActivated: the tamper input became active (``TamperWatch``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from firmware.security.events import SecurityEvent, SecurityEventSink
from firmware.security.runs import PreviousRun
from hal.interfaces import Fault, FaultChanged

log = logging.getLogger("firmware.security.events")

RSS_REARM = 0.9  # below this share of the limit, a new crossing is reported again
UNCLEAN = "power loss, crash, kill or watchdog"


def report_start(
    sink: SecurityEventSink, previous: PreviousRun, firmware_version: str | None
) -> None:
    """The events of a start, in the order things happened."""
    if previous.first_start:
        how = "first start"
    elif previous.clean:
        how = f"after a clean stop ({previous.stop_reason or 'unknown reason'})"
    else:
        how = f"after an unclean stop ({UNCLEAN})"
        since = f" started {previous.started_at}" if previous.started_at else ""
        sink.raise_event(
            SecurityEvent.RESET_OR_REBOOT,
            f"unexpected restart: the previous run{since} ended without a clean shutdown "
            f"({UNCLEAN})",
        )
    version = firmware_version or "of unknown version"
    sink.raise_event(SecurityEvent.STARTUP_OF_THE_DEVICE, f"firmware {version}, {how}")
    if previous.log_lost_since is not None:
        sink.raise_event(
            SecurityEvent.SECURITY_LOG_WAS_CLEARED,
            f"the security log kept since {previous.log_lost_since} is gone: "
            "the state database was deleted or replaced",
        )


class RepeatLimit:
    """``event`` at most once per ``interval_s``: the first at once, the repeats that
    follow within the interval as one entry at its end (``run``) saying how many."""

    def __init__(
        self,
        sink: SecurityEventSink,
        event: SecurityEvent,
        interval_s: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.event = event
        self.interval_s = interval_s
        self._monotonic = monotonic
        self._quiet_until = -float("inf")
        self._repeats = 0
        self._last = ""
        self._woken = asyncio.Event()

    @property
    def repeats(self) -> int:
        """Occurrences held back, to be reported at the end of the interval."""
        return self._repeats

    def note(self, detail: str) -> None:
        now = self._monotonic()
        if now >= self._quiet_until:
            # Before raising: a raise that fails on a full disk notes again.
            self._quiet_until = now + self.interval_s
            self.sink.raise_event(self.event, detail)
            return
        self._repeats += 1
        self._last = detail
        self._woken.set()

    async def run(self) -> None:
        while True:
            await self._woken.wait()
            self._woken.clear()
            await asyncio.sleep(max(0.0, self._quiet_until - self._monotonic()))
            if self._repeats:
                count, self._repeats = self._repeats, 0
                self._quiet_until = self._monotonic() + self.interval_s
                self.sink.raise_event(
                    self.event,
                    f"{count} more in {self.interval_s:g} s; the last: {self._last}",
                )


class ClockWatch:
    """SettingSystemTime when the time taken from the CSMS moves the clock by more
    than ``threshold_s`` (either way)."""

    def __init__(self, sink: SecurityEventSink, threshold_s: float) -> None:
        self.sink = sink
        self.threshold_s = threshold_s

    def adjusted(self, step: timedelta) -> None:
        seconds = step.total_seconds()
        if abs(seconds) > self.threshold_s:
            self.sink.raise_event(
                SecurityEvent.SETTING_SYSTEM_TIME,
                f"clock set from the CSMS's time: moved {seconds:+.3f} s",
            )


class TamperWatch:
    """TamperDetectionActivated each time the tamper input becomes active."""

    def __init__(self, limit: RepeatLimit) -> None:
        self.limit = limit

    def fault_changed(self, event: FaultChanged) -> None:
        if event.fault is not Fault.TAMPER:
            return
        if event.active:
            self.limit.note("tamper input active")
        else:
            log.warning("tamper input back to normal")


def resident_bytes(statm: Path = Path("/proc/self/statm")) -> int | None:
    """The process's resident memory, or None where the system does not tell."""
    try:
        pages = int(statm.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _memory_error(exc: BaseException | None) -> bool:
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_memory_error(each) for each in exc.exceptions)
    return False


class MemoryWatch(logging.Handler):
    """MemoryExhaustion from a logged MemoryError, a full state database or RSS.

    Installed on the root logger, it sees every error a task logs when it
    dies. It is called from whatever thread logs; the event is raised on the
    event loop's thread.
    """

    def __init__(
        self,
        limit: RepeatLimit,
        *,
        rss_limit_bytes: int | None = None,
        check_s: float = 30.0,
        rss: Callable[[], int | None] = resident_bytes,
    ) -> None:
        super().__init__(logging.ERROR)
        self.limit = limit
        self.rss_limit_bytes = rss_limit_bytes
        self.check_s = check_s
        self._rss = rss
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._over = False

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._thread = loop, threading.get_ident()
        logging.getLogger().addHandler(self)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if _memory_error(exc):
            self._note_threadsafe(f"MemoryError ({record.name}: {record.getMessage()})")

    def crashed(self, exc: BaseException) -> bool:
        """The daemon is ending on ``exc``: a MemoryError among it is raised. True if so."""
        if _memory_error(exc):
            self.limit.note("MemoryError ended the daemon")
            return True
        return False

    def storage_full(self, detail: str) -> None:
        self._note_threadsafe(f"state database full: {detail}")

    def _note_threadsafe(self, detail: str) -> None:
        if self._loop is None or threading.get_ident() == self._thread:
            self.limit.note(detail)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.limit.note, detail)

    async def run(self) -> None:
        """Watch the resident memory every ``check_s`` while a limit is set."""
        if self.rss_limit_bytes is None:
            return
        while True:
            used = self._rss()
            if used is None:
                log.warning("resident memory cannot be read here: its limit is not watched")
                return
            if used > self.rss_limit_bytes and not self._over:
                self._over = True
                self.limit.note(
                    f"resident memory {used / 2**20:.1f} MiB is above the limit of "
                    f"{self.rss_limit_bytes / 2**20:.1f} MiB"
                )
            elif used < self.rss_limit_bytes * RSS_REARM:
                self._over = False
            await asyncio.sleep(self.check_s)


class SecurityWatch:
    """Every detector of this module, set up from the ``security_log`` settings."""

    def __init__(
        self,
        sink: SecurityEventSink,
        *,
        time_change_s: float,
        event_repeat_s: float,
        rss_limit_mb: int | None,
        memory_check_s: float,
    ) -> None:
        self.invalid_messages = RepeatLimit(sink, SecurityEvent.INVALID_MESSAGES, event_repeat_s)
        self.clock = ClockWatch(sink, time_change_s)
        self.tamper = TamperWatch(
            RepeatLimit(sink, SecurityEvent.TAMPER_DETECTION_ACTIVATED, event_repeat_s)
        )
        self.memory = MemoryWatch(
            RepeatLimit(sink, SecurityEvent.MEMORY_EXHAUSTION, event_repeat_s),
            rss_limit_bytes=None if rss_limit_mb is None else rss_limit_mb * 2**20,
            check_s=memory_check_s,
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.invalid_messages.run(), name="invalid-messages")
            tg.create_task(self.tamper.limit.run(), name="tamper")
            tg.create_task(self.memory.limit.run(), name="memory-exhaustion")
            tg.create_task(self.memory.run(), name="memory-watch")
