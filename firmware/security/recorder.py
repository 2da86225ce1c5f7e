"""The station's security event sink: the security log, and the CSMS for critical events.

``raise_event`` stores every event in the security log with the time it
happened (the station's clock, which follows the CSMS's). A critical one
(``events.CRITICAL``) is queued in the same database transaction as a
SecurityEventNotification in the durable outbox, so it reaches the CSMS like
a transaction message: in order, after an outage, after a power cut. The
others stay in the log (the whitepaper asks the station to send the critical
ones; the CSMS reads the rest with GetLog).

techInfo is cleaned before it is stored: passwords and idTags masked as in
the log, control characters made blanks, at most 255 characters (longer text
is cut and ends in ``...``).

Never raises, never blocks: an event that cannot be stored (a full disk, a
database error) is kept in memory (the newest ``pending_max``) and stored by
``run()`` as soon as it can be, before any later event, so the order holds.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from firmware import logs
from firmware.clock import iso
from firmware.security.events import TECH_INFO_MAX, V201_NAMES, SecurityEvent, is_critical
from firmware.security.security_log import SecurityLog
from firmware.storage.db import Database

log = logging.getLogger("firmware.security.events")

RETRY_S = 5.0  # a store that failed is tried again this often
ELLIPSIS = "..."
TYPE_MAX = 50  # SecurityEventNotification.type: string[50]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

MessageBuilder = Callable[[SecurityEvent, datetime, str | None], tuple[str, dict[str, Any]]]


class Delivery(Protocol):
    """The durable queue critical events go through (``firmware.queue.Outbox``)."""

    def enqueue(self, action: str, payload: dict[str, Any], local_tx: int | None = None) -> int: ...

    def on_settled(self, action: str, handler: Callable[[int, bool], None]) -> None: ...


def notification_16(
    event: SecurityEvent, at: datetime, tech_info: str | None
) -> tuple[str, dict[str, Any]]:
    """OCPP 1.6 (Security Whitepaper): SecurityEventNotification.req."""
    payload: dict[str, Any] = {"type": event.value, "timestamp": iso(at)}
    if tech_info:
        payload["techInfo"] = tech_info
    return "SecurityEventNotification", payload


def notification_201(
    event: SecurityEvent, at: datetime, tech_info: str | None
) -> tuple[str, dict[str, Any]]:
    """OCPP 2.0.1 (A04): SecurityEventNotificationRequest, with 2.0.1's event names."""
    action, payload = notification_16(event, at, tech_info)
    return action, {**payload, "type": V201_NAMES.get(event, event.value)}


def event_payload(version: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A queued SecurityEventNotification payload with its type as ``version`` names it."""
    to_201 = {event.value: name for event, name in V201_NAMES.items()}
    names = to_201 if version == "2.0.1" else {name: value for value, name in to_201.items()}
    kind = payload.get("type")
    return {**payload, "type": names[kind]} if isinstance(kind, str) and kind in names else payload


def clean_tech_info(text: object) -> str | None:
    if text is None:
        return None
    cleaned = _CONTROL.sub(" ", logs.mask_id_tags(logs.redact(str(text)))).strip()
    if not cleaned:
        return None
    if len(cleaned) > TECH_INFO_MAX:
        cleaned = cleaned[: TECH_INFO_MAX - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return cleaned


@dataclass(frozen=True, slots=True)
class _Event:
    event: SecurityEvent
    tech_info: str | None
    at: datetime


class SecurityEvents:
    def __init__(
        self,
        db: Database,
        security_log: SecurityLog,
        now: Callable[[], datetime],
        *,
        message: MessageBuilder = notification_16,
        pending_max: int = 256,
        retry_s: float = RETRY_S,
    ) -> None:
        self.db = db
        self.log = security_log
        self._now = now
        self._message = message
        self._delivery: Delivery | None = None
        self._pending: deque[_Event] = deque()
        self._pending_max = pending_max
        self._retry_s = retry_s
        self._storing = False
        self._stuck = asyncio.Event()
        self.lost = 0  # events that could not be kept (memory bound while storing failed)

    def deliver_through(self, delivery: Delivery) -> None:
        """Queue critical events in ``delivery`` from now on, and those stored before."""
        delivery.on_settled(self._action(), self._settled)
        self._delivery = delivery
        for entry in self.log.unqueued_critical():
            try:
                event = SecurityEvent(entry.type)
            except ValueError:
                continue
            at = datetime.fromisoformat(entry.occurred_at.replace("Z", "+00:00"))
            with self.db.transaction():
                self._enqueue(entry.id, event, at, entry.tech_info)

    def _action(self) -> str:
        return self._message(SecurityEvent.STARTUP_OF_THE_DEVICE, self._now(), None)[0]

    # ------------------------------------------------------------ the sink

    def raise_event(self, event: SecurityEvent, tech_info: str | None = None) -> None:
        try:
            kind = SecurityEvent(event)
            if len(kind.value) > TYPE_MAX:
                raise ValueError(f"type {kind.value!r} is longer than {TYPE_MAX} characters")
            item = _Event(kind, clean_tech_info(tech_info), self._now())
        except Exception as err:
            log.error("security event %r refused: %s", event, err)
            return
        if len(self._pending) >= self._pending_max:
            self._pending.popleft()
            self.lost += 1
            log.error("security event lost: %d events wait to be stored", len(self._pending))
        self._pending.append(item)
        self._store_pending()
        kept = any(each is item for each in self._pending)
        waiting = " (kept in memory until it can be stored)" if kept else ""
        detail = f": {item.tech_info}" if item.tech_info else ""
        log.warning("security event %s%s%s", kind.value, detail, waiting)

    def _store_pending(self) -> None:
        if self._storing:  # an event raised while storing (a full disk): stored next
            return
        self._storing = True
        try:
            while self._pending:
                self._store(self._pending[0])
                self._pending.popleft()
            self._stuck.clear()
        except Exception as err:
            self.log.resync()
            if not self._stuck.is_set():
                log.error("security log: cannot store events (%s); retrying", err)
            self._stuck.set()
        finally:
            self._storing = False

    def _store(self, item: _Event) -> None:
        critical = is_critical(item.event)
        with self.db.transaction():
            entry_id = self.log.append(iso(item.at), item.event.value, item.tech_info, critical)
            if critical and self._delivery is not None:
                self._enqueue(entry_id, item.event, item.at, item.tech_info)

    def _enqueue(
        self, entry_id: int, event: SecurityEvent, at: datetime, tech_info: str | None
    ) -> None:
        assert self._delivery is not None
        action, payload = self._message(event, at, tech_info)
        self.log.queued(entry_id, self._delivery.enqueue(action, payload))

    def _settled(self, seq: int, delivered: bool) -> None:
        self.log.settled(seq, delivered, iso(self._now()))

    @property
    def pending(self) -> int:
        """Events waiting in memory to be stored."""
        return len(self._pending)

    async def run(self) -> None:
        """Store what could not be stored, once it can be."""
        while True:
            await self._stuck.wait()
            await asyncio.sleep(self._retry_s)
            self._store_pending()
            if not self._pending:
                log.info("security log: the events kept in memory are stored")
