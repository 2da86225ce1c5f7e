"""SIGTERM and SIGINT over the whole life of the process, re-executions included.

A stop signal always wins: whenever it arrives (while running, while shutting
down to restart after a Reset or a firmware install, while a hard reset command
runs, or between the end of the event loop and the re-execution) the daemon ends
with exit code 0 instead of coming back.

While the event loop runs it receives the signals itself (``add_signal_handler``).
Outside the loop they are blocked in the main thread, so one that arrives stays
pending: :func:`arrived` sees it before a re-execution, and one that comes in the
last instant before ``execv`` survives it (the signal mask and the pending
signals are kept across ``execve``) and stops the new image as soon as its loop
listens (:func:`release`). A process-wide handler records signals delivered
while not blocked (to another thread, or before the loop started), so the
default action, which would kill the process with a signal instead of exit
code 0, never applies.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})

_received: list[int] = []


def _record(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)


def install() -> None:
    """Record stop signals from now on (the main thread, before the event loop)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _record)


def listen(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Hand stop signals to ``callback`` on ``loop``; one held from before comes now."""
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, callback)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if _received:
        callback()


def stop_listening(loop: asyncio.AbstractEventLoop) -> None:
    """The loop is about to end: keep stop signals pending from now on."""
    hold()
    for sig in STOP_SIGNALS:
        loop.remove_signal_handler(sig)  # the default action, but blocked here ...
    install()  # ... and replaced at once


def hold() -> None:
    """Keep stop signals pending (in this thread) until :func:`listen` or :func:`wait`."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def received() -> int | None:
    """The first stop signal recorded by the handler, if any."""
    return _received[0] if _received else None


def arrived() -> bool:
    """A stop signal was recorded or is pending."""
    return bool(_received) or bool(STOP_SIGNALS & signal.sigpending())


def wait(timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for a stop signal (held, see :func:`hold`); True if one came."""
    if arrived():
        return True
    if timeout_s <= 0:
        return False
    deadline = time.monotonic() + timeout_s
    # Short slices: a signal delivered to another thread runs the handler, not sigtimedwait.
    while (remaining := deadline - time.monotonic()) > 0:
        info = signal.sigtimedwait(STOP_SIGNALS, min(remaining, 0.1))
        if info is not None:
            _received.append(info.si_signo)
            return True
        if _received:
            return True
    return False
