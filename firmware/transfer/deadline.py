"""Overall and stall timeouts of one attempt, as two asyncio timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from firmware.transfer.errors import TransferTimeout, describe


class Deadline:
    """``async with deadline.guard():`` bounds the block by ``timeout_s``, and by
    ``stall_timeout_s`` since the last ``kick()`` (call it whenever bytes move;
    connecting and waiting for a reply count as stalling).

    Either expiry raises TransferTimeout; a cancellation from outside stays a
    CancelledError.
    """

    def __init__(self, timeout_s: float, stall_timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.stall_timeout_s = stall_timeout_s
        self._stall: asyncio.Timeout | None = None

    def kick(self) -> None:
        if self._stall is not None and not self._stall.expired():
            self._stall.reschedule(asyncio.get_running_loop().time() + self.stall_timeout_s)

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[Deadline]:
        overall = asyncio.timeout(self.timeout_s)
        stall = asyncio.timeout(self.stall_timeout_s)
        try:
            async with overall, stall:
                self._stall = stall
                yield self
        except TimeoutError as err:
            if stall.expired():
                raise TransferTimeout(
                    f"stalled: nothing moved for {self.stall_timeout_s:g} s"
                ) from None
            if overall.expired():
                raise TransferTimeout(f"timed out after {self.timeout_s:g} s") from None
            if isinstance(err, TransferTimeout):
                raise
            raise TransferTimeout(f"timed out: {describe(err)}") from None
        finally:
            self._stall = None
