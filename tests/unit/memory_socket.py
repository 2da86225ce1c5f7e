"""A websocket connection in memory, for tests of the OCPP layer (it implements ``rpc.Socket``).

The test plays the CSMS: ``feed`` puts a frame on the way to the station,
``sent`` is what the station sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any


class MemorySocket:
    """One connection: frames the CSMS sends go in ``feed``; what the station sends is ``sent``."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[str | bytes | Exception | None] = asyncio.Queue()
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self._changed = asyncio.Event()

    # rpc.Socket
    async def send(self, message: str) -> None:
        if self.closed is not None:
            raise ConnectionError("closed")
        self.sent.append(message)
        self._changed.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)
            self._inbox.put_nowait(None)
            self._changed.set()

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str | bytes]:
        while True:
            item = await self._inbox.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    # the CSMS side
    def feed(self, frame: str | bytes | list[Any]) -> None:
        self._inbox.put_nowait(json.dumps(frame) if isinstance(frame, list) else frame)

    def abort(self) -> None:
        """The connection breaks (no close handshake)."""
        self._inbox.put_nowait(ConnectionResetError("connection reset"))

    async def wait_sent(self, count: int, timeout: float = 2.0) -> list[Any]:
        """The ``count``-th frame the station sent (1-based), parsed."""
        async with asyncio.timeout(timeout):
            while len(self.sent) < count:
                self._changed.clear()
                await self._changed.wait()
        parsed: list[Any] = json.loads(self.sent[count - 1])
        return parsed

    async def wait_closed(self, timeout: float = 2.0) -> tuple[int, str]:
        async with asyncio.timeout(timeout):
            while self.closed is None:
                self._changed.clear()
                await self._changed.wait()
        return self.closed
