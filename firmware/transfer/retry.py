"""Attempts of one transfer, per the OCPP ``retries`` and ``retryInterval`` fields."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from firmware.transfer.errors import TransferFailed

log = logging.getLogger("firmware.transfer")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


async def attempts(
    attempt: Callable[[], Awaitable[T]],
    *,
    retries: int,
    retry_interval_s: float,
    what: str,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run ``attempt``; after a TransferFailed, wait ``retry_interval_s`` and try
    again, ``retries`` more times at most. The last failure is raised. Any other
    exception (a CancelledError among them) ends at once.
    """
    for number in range(1, retries + 2):
        try:
            return await attempt()
        except TransferFailed as err:
            if number > retries:
                log.warning("%s failed (attempt %d of %d): %s", what, number, retries + 1, err)
                raise
            log.warning(
                "%s failed (attempt %d of %d): %s; retrying in %g s",
                what,
                number,
                retries + 1,
                err,
                retry_interval_s,
            )
        await sleep(retry_interval_s)
    raise AssertionError("unreachable")
