"""Status notifications of a long-running job (``firmware.management.reporter.Reporter``).

A ``StatusReporter`` sends ``<action>(status)`` for each status in the order
the job reached them while the station is registered. While it is not, only
the newest status is kept (a stale Downloading is no news once Downloaded);
it goes out once the BootNotification is Accepted again. A status may carry
the ``requestId`` of the request it belongs to (SignedFirmwareStatusNotification).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from firmware.ocpp.errors import CallFailed, InvalidRequest, NotConnected
from firmware.ocpp.rpc import Rpc

log = logging.getLogger("firmware.ocpp.status")

RETRY_S = 5.0  # after a CALLERROR or timeout, while the status is still news


class StatusReporter:
    def __init__(
        self,
        rpc: Rpc,
        action: str,
        ready: asyncio.Event,
        *,
        on_delivered: Callable[[str], None] | None = None,
        retry_s: float = RETRY_S,
    ) -> None:
        self.rpc = rpc
        self.action = action
        self.ready = ready
        self.on_delivered = on_delivered
        self.retry_s = retry_s
        self._pending: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def report(self, status: str, request_id: int | None = None) -> None:
        payload: dict[str, Any] = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        if self.ready.is_set():
            self._pending.append(payload)
        else:
            self._pending = [payload]
        self._idle.clear()
        self._changed.set()

    async def flush(self, timeout: float) -> bool:
        """Wait until every status is delivered (or ``timeout``); True if they were."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
            return True
        except TimeoutError:
            return False

    async def run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._changed.clear()
                await self._changed.wait()
                continue
            await self.ready.wait()
            payload = self._pending[0]
            status = str(payload["status"])
            try:
                await self.rpc.call(self.action, payload)
            except NotConnected:
                self._pending = self._pending[-1:]
                await self._wait_disconnect()
                continue
            except InvalidRequest:
                self._pending.pop(0)  # logged by the RPC layer; never valid
                continue
            except CallFailed as err:
                log.warning("%s %s not delivered: %s", self.action, status, err)
                await asyncio.sleep(self.retry_s)
                if not self.ready.is_set():
                    self._pending = self._pending[-1:]
                continue
            if self._pending and self._pending[0] is payload:
                self._pending.pop(0)
            if self.on_delivered is not None:
                self.on_delivered(status)

    async def _wait_disconnect(self) -> None:
        # The connection is going; ready is set again after the next one is up.
        await asyncio.sleep(0.1)
        await self.rpc.connected_event.wait()
