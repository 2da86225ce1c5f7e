"""StatusNotification: every change while online, the current state after a reconnect.

Status changes are not queued durably: while offline they are only
remembered, and on (re)registration the current status of every connector
(0..N) is sent, not the backlog. MinimumStatusDuration holds a report back
until the status has lasted that long.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firmware.clock import Clock, iso
from firmware.connector.status import Status
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v16.configuration import ConfigurationStore

log = logging.getLogger("firmware.ocpp.status")


@dataclass(frozen=True, slots=True)
class _Report:
    connector_id: int
    status: Status
    at: datetime
    due: float
    generation: int
    resync: bool = False


class StatusNotifier:
    def __init__(
        self, rpc: Rpc, config: ConfigurationStore, clock: Clock, ready: asyncio.Event
    ) -> None:
        self.rpc = rpc
        self.config = config
        self.clock = clock
        self.ready = ready
        self.current: dict[int, tuple[Status, datetime]] = {}
        self._queue: asyncio.Queue[_Report] = asyncio.Queue()
        self._generation = 0
        self._last_sent: dict[int, Status] = {}

    def report(self, connector_id: int, status: Status) -> None:
        """A connector's status changed (called synchronously by controllers)."""
        now = self.clock.now()
        self.current[connector_id] = (status, now)
        log.info("connector %d status %s (%s)", connector_id, status.status, status.error_code)
        if not self.ready.is_set():
            return  # sent as current state on the next registration
        delay = max(0, self.config.get_int("MinimumStatusDuration"))
        self._queue.put_nowait(
            _Report(connector_id, status, now, self.clock.monotonic() + delay, self._generation)
        )

    async def resync(self) -> None:
        """Queue the current status of every connector (after (re)registration)."""
        self._generation += 1
        while not self._queue.empty():
            self._queue.get_nowait()
        now = self.clock.monotonic()
        for connector_id in sorted(self.current):
            status, at = self.current[connector_id]
            self._queue.put_nowait(
                _Report(connector_id, status, at, now, self._generation, resync=True)
            )

    async def send_current(self, connector_id: int) -> None:
        """Send the current status of ``connector_id`` now (TriggerMessage)."""
        current = self.current.get(connector_id)
        if current is None:
            return
        self._last_sent[connector_id] = current[0]
        await self._send(connector_id, *current)

    def payload(self, connector_id: int, status: Status, at: datetime) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "connectorId": connector_id,
            "status": status.status,
            "errorCode": status.error_code,
            "timestamp": iso(at),
        }
        if status.vendor_error_code:
            payload["vendorErrorCode"] = status.vendor_error_code
        return payload

    async def _send(self, connector_id: int, status: Status, at: datetime) -> None:
        try:
            await self.rpc.call("StatusNotification", self.payload(connector_id, status, at))
        except CallFailed as err:
            log.warning("StatusNotification for connector %d not delivered: %s", connector_id, err)

    async def run(self) -> None:
        while True:
            report = await self._queue.get()
            wait = report.due - self.clock.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if report.generation != self._generation:
                continue
            if self.current.get(report.connector_id, (None,))[0] != report.status:
                continue  # superseded before it lasted MinimumStatusDuration
            if not report.resync and self._last_sent.get(report.connector_id) == report.status:
                continue  # the CSMS already has it (a change that came back)
            await self.ready.wait()
            if report.generation != self._generation:
                continue
            self._last_sent[report.connector_id] = report.status
            await self._send(report.connector_id, report.status, report.at)
