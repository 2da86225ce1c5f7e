"""StatusNotification: every change while online, the current state after a reconnect.

Status changes are not queued durably: while offline they are only
remembered, and on (re)registration the current status of every connector
(0..N) is sent, not the backlog. A ``StatusProfile`` of the connection's
version says what a status looks like on the wire (1.6: one message per
connector 0..N with errorCode; 2.0.1: one per EVSE connector with
connectorStatus, none for the station itself), which statuses the CSMS tells
apart (2.0.1's Occupied covers 1.6's Preparing, Charging, Suspended* and
Finishing: a change between those sends nothing), and how long a status must
last before it is reported (1.6 MinimumStatusDuration; 2.0.1 has none).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from firmware.clock import Clock
from firmware.connector.status import Status
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.rpc import Rpc

log = logging.getLogger("firmware.ocpp.status")


class StatusProfile(Protocol):
    """A connector status in one OCPP version's words."""

    @property
    def version(self) -> str: ...

    def minimum_duration_s(self) -> int:
        """How long a status must last before it is reported."""

    def reported(self, status: Status) -> Hashable:
        """What the CSMS sees of ``status``: equal values are the same report."""

    def payloads(self, connector_id: int, status: Status, at: datetime) -> list[dict[str, Any]]:
        """The StatusNotification requests of ``status`` (none: not reported here)."""


@dataclass(frozen=True, slots=True)
class _Report:
    connector_id: int
    status: Status
    at: datetime
    due: float
    generation: int
    resync: bool = False


class StatusNotifier:
    @property
    def profile(self) -> StatusProfile:
        return self._profiles.get(self.rpc.version, self._default)

    def __init__(
        self,
        rpc: Rpc,
        profile: StatusProfile,
        clock: Clock,
        ready: asyncio.Event,
        *,
        alternatives: Sequence[StatusProfile] = (),
    ) -> None:
        self.rpc = rpc
        # ``alternatives``: the profiles of other versions (``ocpp.version: auto``); the
        # connection's version (or the last one's) says which one speaks.
        self._default = profile
        self._profiles = {p.version: p for p in (profile, *alternatives)}
        self.clock = clock
        self.ready = ready
        self.current: dict[int, tuple[Status, datetime]] = {}
        self._queue: asyncio.Queue[_Report] = asyncio.Queue()
        self._generation = 0
        self._last_sent: dict[int, Hashable] = {}

    def report(self, connector_id: int, status: Status) -> None:
        """A connector's status changed (called synchronously by controllers)."""
        now = self.clock.now()
        self.current[connector_id] = (status, now)
        log.info("connector %d status %s (%s)", connector_id, status.status, status.error_code)
        if not self.ready.is_set():
            return  # sent as current state on the next registration
        delay = max(0, self.profile.minimum_duration_s())
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
        self._last_sent[connector_id] = self.profile.reported(current[0])
        await self._send(connector_id, *current)

    async def _send(self, connector_id: int, status: Status, at: datetime) -> None:
        for payload in self.profile.payloads(connector_id, status, at):
            try:
                await self.rpc.call("StatusNotification", payload, version=self.profile.version)
            except CallFailed as err:
                log.warning(
                    "StatusNotification for connector %d not delivered: %s", connector_id, err
                )

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
            reported = self.profile.reported(report.status)
            if not report.resync and self._last_sent.get(report.connector_id) == reported:
                continue  # the CSMS already has it (a change that came back, or looks the same)
            await self.ready.wait()
            if report.generation != self._generation:
                continue
            self._last_sent[report.connector_id] = reported
            await self._send(report.connector_id, report.status, report.at)
