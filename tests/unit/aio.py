"""Helpers for driver tests that run coroutines in the background and watch HAL events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from hal.interfaces import HalEvent


@contextlib.asynccontextmanager
async def running(
    *jobs: Coroutine[Any, Any, None], must_run_until_cancelled: bool = True
) -> AsyncIterator[None]:
    """Run ``jobs`` in the background; at the end cancel them and raise what they raised.

    With ``must_run_until_cancelled``, a job that ended on its own is a failure too
    (a device emulator may end when its link closes: pass False for those).
    """
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        if must_run_until_cancelled:
            assert all(task.cancelled() for task in tasks), "a job ended before it was cancelled"


async def until(condition: Callable[[], bool], timeout_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def drain(events: asyncio.Queue[HalEvent]) -> list[HalEvent]:
    """Every event queued so far, oldest first."""
    out: list[HalEvent] = []
    while not events.empty():
        out.append(events.get_nowait())
    return out


async def next_event(events: asyncio.Queue[HalEvent], timeout: float = 1.0) -> HalEvent:
    return await asyncio.wait_for(events.get(), timeout)


async def looked_after(driver: Any, moment: float, timeout_s: float = 2.0) -> None:
    """Wait until ``driver`` (``supervised_at``: its last look at its input) has looked at
    its input at or after the monotonic ``moment``: what it did not report by then, it
    decided not to report."""
    await until(lambda: driver.supervised_at >= moment, timeout_s)


async def advanced(counter: Callable[[], int], by: int, timeout_s: float = 2.0) -> None:
    """Wait until ``counter()`` has grown by ``by``: proof that a driver did that much
    work (polls, reads, reopen attempts), after which an event it did not emit is one
    it decided not to emit."""
    start = counter()
    await until(lambda: counter() >= start + by, timeout_s)


def running_lenient(
    *jobs: Coroutine[Any, Any, None],
) -> contextlib.AbstractAsyncContextManager[None]:
    """``running`` for jobs that may end on their own (an emulated device whose link closed)."""
    return running(*jobs, must_run_until_cancelled=False)
