"""The daemon's shutdown ends every task even when one lost its cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from firmware.app import cancel_until_done


async def test_a_task_that_swallowed_its_cancel_is_cancelled_again() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        # As Python 3.11's asyncio.wait_for does when a cancel races its inner result.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        swallowed.set()
        await asyncio.sleep(30)

    async def polite() -> None:
        await asyncio.sleep(30)

    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(stubborn()), tg.create_task(polite())]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        tg.create_task(cancel_until_done(tasks))
    assert swallowed.is_set()
    assert all(task.cancelled() for task in tasks)


async def test_tasks_that_end_at_their_cancel_are_not_cancelled_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def polite() -> None:
        await asyncio.sleep(30)

    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(polite()) for _ in range(3)]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        tg.create_task(cancel_until_done(tasks))
    assert all(task.cancelled() for task in tasks)
    assert "cancelling again" not in caplog.text
