"""Durable delivery of transaction-related messages and critical security events.

StartTransaction, StopTransaction and MeterValues of a transaction, and the
SecurityEventNotification of a critical security event, are written to SQLite
before they are sent and deleted only when their CALLRESULT arrives, strictly
in the order they were queued, across reconnects and restarts.

Messages of a transaction are stored without ``transactionId``; the id the
CSMS assigned (from the StartTransaction.conf ahead of them in the queue) is
filled in at send time, so a transaction started offline never goes out with
a placeholder id.

A message is retried ``TransactionMessageAttempts`` times after its first
try, ``TransactionMessageRetryInterval`` x try apart, then dropped. What uses
up a try:

- a CALLERROR or an invalid CALLRESULT: at once;
- a timeout: only once the CSMS has shown it is there, that is when a later
  CALL on the same connection is answered (whichever CALL it is). Then the try
  is written to the ``attempts`` column at that moment. A timeout whose
  connection is declared dead (``ocpp.dead_link_timeouts`` timeouts in a row)
  or lost before any later answer uses up nothing: a dead link is an outage,
  and no attempt is spent while offline. Nothing is written until a try is
  used up, so a crash or restart in between only forgets a timeout that had
  not counted yet (the rule errs towards delivering);
- no connection at all: nothing.

A SecurityEventNotification follows the same rule, with one more: a CSMS that
answers it NotImplemented or NotSupported does not take security events at
all, so it is given up at once (retrying would only hold up the transaction
messages behind it).

The queue is bounded (messages and bytes). When it is full, queued
MeterValues are thinned (every other one goes) to make room; StartTransaction
and StopTransaction are never dropped. The queue is read one request at a
time, so its length does not cost memory.

Each message is delivered in the OCPP version it was written in (the
``version`` column), over a connection of that version only: the queue is not
converted. While the station speaks another version (``ocpp.version: auto``
and a CSMS that chose the other one), those messages wait, still counted in
``pending``; the messages of the version in use go on in their order. Only
1.6 messages of a transaction carry the CSMS's transactionId filled in at send
time; a 2.0.1 transaction has the station's own id from the start.

A backlog is replayed with consecutive MeterValues of one transaction packed
into one request (``firmware.packing``), at most ``batch_max`` messages and
``batch_bytes`` of frame; with one message waiting, it goes alone. The packed
rows leave the queue together, in one database transaction, when the
CALLRESULT arrives; a crash before that sends them again. A packed request
that fails costs no attempt: its head is sent next on its own, under the
usual attempt rule, and stays alone until delivered or given up (a message
that failed once is never packed). A CALLERROR on a packed request, or the
connection dropping under it (a CSMS may close the socket on a frame it finds
too big), also halves the pack size until the queue next runs empty.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from firmware import logs, packing
from firmware.clock import Clock, iso
from firmware.ocpp.errors import (
    CallErrorReceived,
    CallFailed,
    CallTimeout,
    InvalidRequest,
    NotConnected,
)
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.versions import V16
from firmware.storage.db import Database

OFFLINE_PAUSE_S = 0.2  # after a send that found no connection
log = logging.getLogger("firmware.queue")

# 1.6: Start/StopTransaction and MeterValues; 2.0.1: TransactionEvent.
TRANSACTION_ACTIONS = frozenset(
    {"StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent"}
)
# Of the security extension: a CSMS without it answers NotImplemented or NotSupported.
OPTIONAL_ACTIONS = frozenset({"SecurityEventNotification"})
QUEUED_ACTIONS = TRANSACTION_ACTIONS | OPTIONAL_ACTIONS
_UNSUPPORTED = frozenset({"NotImplemented", "NotSupported"})

ResultHandler = Callable[[int | None, dict[str, Any]], None]
# (local_tx, the request as sent, its CALLRESULT payload)
ReplyHandler = Callable[[int | None, dict[str, Any], dict[str, Any]], None]
SettledHandler = Callable[[int, bool], None]


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    seq: int
    action: str
    payload: dict[str, Any]
    local_tx: int | None
    attempts: int
    size: int
    version: str = V16


def _sample_only(message: QueuedMessage) -> bool:
    """A message that only carries meter samples (its answer changes nothing)."""
    if message.action == "TransactionEvent":
        return bool(message.payload.get("eventType") == "Updated")
    return message.action == "MeterValues"


def _retrieve(future: asyncio.Future[dict[str, Any]]) -> None:
    if not future.cancelled():
        future.exception()


class MessageDropped(Exception):
    """A queued message was given up (attempts exhausted or its transaction unknown)."""


class Outbox:
    """The durable transaction-message queue and its delivery loop."""

    def __init__(
        self,
        db: Database,
        rpc: Rpc,
        clock: Clock,
        *,
        ready: asyncio.Event,
        attempts: Callable[[], int],
        retry_interval_s: Callable[[], int],
        max_messages: int = 200_000,
        max_bytes: int = 64 * 1024 * 1024,
        batch_max: int = 100,
        batch_bytes: int = 24 * 1024,
    ) -> None:
        self.db = db
        self.rpc = rpc
        self.clock = clock
        self._ready = ready
        self._attempts = attempts
        self._retry_interval_s = retry_interval_s
        self._wakeup = asyncio.Event()
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, list[ResultHandler]] = {}
        self._reply_handlers: dict[str, list[ReplyHandler]] = {}
        self._settled: dict[str, list[SettledHandler]] = {}
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.batch_max = batch_max
        self.batch_bytes = batch_bytes
        self._pack_limit = batch_max  # lowered when the CSMS refuses packs
        self._alone: int | None = None  # seq of a head whose packed request failed
        self._count, self._bytes = self._measure()
        self._over_limit_logged = False

    # ------------------------------------------------------------ bookkeeping

    def _measure(self) -> tuple[int, int]:
        row = self.db.query_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(payload)), 0) AS b FROM outbox"
        )
        return (int(row["n"]), int(row["b"])) if row else (0, 0)

    @property
    def dropped(self) -> int:
        """Messages given up after their attempts (or without a CSMS transaction id)."""
        return self.db.counter("outbox_dropped")

    @property
    def thinned(self) -> int:
        """MeterValues dropped to keep the queue within its bounds."""
        return self.db.counter("outbox_thinned")

    def _full(self, incoming: int) -> bool:
        return self._count + 1 > self.max_messages or self._bytes + incoming > self.max_bytes

    def _make_room(self, incoming: int) -> bool:
        """Thin queued MeterValues until ``incoming`` bytes fit; False if they cannot."""
        while self._full(incoming):
            cursor = self.db.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() "
                "OVER (ORDER BY seq) AS n FROM outbox WHERE action = 'MeterValues') "
                "WHERE n % 2 = 0)"
            )
            if cursor.rowcount <= 0:
                return False
            self.db.count_up("outbox_thinned", cursor.rowcount)
            self._count, self._bytes = self._measure()
            log.warning(
                "queue full (%d messages, %d bytes): dropped %d queued MeterValues",
                self._count,
                self._bytes,
                cursor.rowcount,
            )
        return True

    # ------------------------------------------------------------ producer side

    def enqueue(
        self,
        action: str,
        payload: dict[str, Any],
        local_tx: int | None = None,
        *,
        version: str = V16,
    ) -> int:
        """Persist one message written in OCPP ``version``; returns its sequence number.
        Call inside a db transaction to make it atomic with the state change it reports."""
        if action not in QUEUED_ACTIONS:
            raise ValueError(f"{action} is not a message the queue delivers")
        data = json.dumps(payload, separators=(",", ":"))
        if self._full(len(data)) and not self._make_room(len(data)):
            if action == "MeterValues":
                self.db.count_up("outbox_thinned")
                log.warning("queue full of Start/StopTransaction: MeterValues not queued")
                return 0
            if not self._over_limit_logged:
                log.error("queue over its bounds; %s is queued anyway", action)
                self._over_limit_logged = True
        cursor = self.db.execute(
            "INSERT INTO outbox (action, payload, local_tx, created_at, version) "
            "VALUES (?, ?, ?, ?, ?)",
            (action, data, local_tx, iso(self.clock.now()), version),
        )
        self._count += 1
        self._bytes += len(data)
        self._wakeup.set()
        seq = cursor.lastrowid
        assert seq is not None
        return seq

    def in_version(self, version: str | Callable[[], str]) -> VersionedQueue:
        """This queue, taking messages written in ``version`` (or the version it names
        when a message is queued)."""
        return VersionedQueue(self, version)

    def convert(
        self, action: str, version: str, payload: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> int:
        """Rewrite the queued ``action`` messages of other versions into ``version``
        (``payload`` gives each one's new payload), in place and in order; returns how
        many. Only for a message that means the same in both versions (a security event)."""
        rows = self.db.query(
            "SELECT seq, payload FROM outbox WHERE action = ? AND version != ?", (action, version)
        )
        with self.db.transaction():
            for row in rows:
                data = json.dumps(payload(json.loads(row["payload"])), separators=(",", ":"))
                self.db.execute(
                    "UPDATE outbox SET payload = ?, version = ? WHERE seq = ?",
                    (data, version, row["seq"]),
                )
                self._bytes += len(data) - len(row["payload"])
        if rows:
            log.info("%d queued %s now go out in OCPP %s", len(rows), action, version)
            self._wakeup.set()
        return len(rows)

    def wake(self) -> None:
        """A connection was registered, maybe in another version: look at the queue again."""
        self._wakeup.set()

    def on_result(self, action: str, handler: ResultHandler) -> None:
        """Call ``handler(local_tx, result_payload)`` for every delivered ``action``."""
        self._handlers.setdefault(action, []).append(handler)

    def on_reply(self, action: str, handler: ReplyHandler) -> None:
        """Call ``handler(local_tx, request, result)`` for every delivered ``action``
        (for answers whose meaning depends on the request, as TransactionEvent's)."""
        self._reply_handlers.setdefault(action, []).append(handler)

    def on_settled(self, action: str, handler: SettledHandler) -> None:
        """Call ``handler(seq, delivered)`` when a queued ``action`` leaves the queue:
        acknowledged (True) or given up (False), in the database transaction that
        removes it."""
        self._settled.setdefault(action, []).append(handler)

    async def delivered(self, seq: int) -> bool:
        """Wait until message ``seq`` is answered (True) or given up (False)."""
        try:
            await self.wait_result(seq)
        except MessageDropped:
            return False
        return True

    def wait_result(self, seq: int) -> asyncio.Future[dict[str, Any]]:
        """A future for the CALLRESULT of message ``seq`` (MessageDropped if given up)."""
        future = self._waiters.get(seq)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            # A waiter that gave up first (its own timeout) must not leave a
            # "Future exception was never retrieved" behind when the message is dropped.
            future.add_done_callback(_retrieve)
            self._waiters[seq] = future
        return future

    def pending(self) -> int:
        """Messages waiting to be delivered."""
        return self._count

    def is_empty(self) -> bool:
        return self._count == 0

    def queued(self, action: str, local_tx: int | None = None) -> int:
        """Messages ``action`` waiting to be delivered (of transaction ``local_tx`` only,
        when given)."""
        if local_tx is None:
            row = self.db.query_one("SELECT COUNT(*) AS n FROM outbox WHERE action = ?", (action,))
        else:
            row = self.db.query_one(
                "SELECT COUNT(*) AS n FROM outbox WHERE action = ? AND local_tx = ?",
                (action, local_tx),
            )
        return 0 if row is None else int(row["n"])

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the queue is empty (or the timeout); True when empty."""
        try:
            async with asyncio.timeout(timeout_s):
                while not self.is_empty():
                    if not self.rpc.connected:
                        return False
                    await asyncio.sleep(0.05)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------ delivery

    @staticmethod
    def _message(row: sqlite3.Row) -> QueuedMessage:
        return QueuedMessage(
            int(row["seq"]),
            str(row["action"]),
            json.loads(row["payload"]),
            row["local_tx"],
            int(row["attempts"]),
            len(row["payload"]),
            str(row["version"]),
        )

    def _head(self) -> QueuedMessage | None:
        row = self.db.query_one(
            "SELECT seq, action, payload, local_tx, attempts, version FROM outbox "
            "WHERE version = ? ORDER BY seq LIMIT 1",
            (self.rpc.version,),
        )
        return None if row is None else self._message(row)

    def _request(self, head: QueuedMessage) -> list[QueuedMessage]:
        """The head and the queued MeterValues that go out in the same request."""
        limit = min(self.batch_max, self._pack_limit)
        if limit < 2 or head.seq == self._alone or not packing.packable(head):
            return [head]
        budget = self.batch_bytes - packing.frame_bytes(head.payload)
        batch = [head]
        for row in self.db.query(
            "SELECT seq, action, payload, local_tx, attempts, version FROM outbox "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (head.seq, limit - 1),
        ):
            message = self._message(row)
            if message.version != head.version or not packing.joins(head, message):
                break
            budget -= packing.entries_bytes(message.payload)
            if budget < 0:
                break
            batch.append(message)
        return batch

    def _with_transaction_id(self, message: QueuedMessage) -> dict[str, Any] | None:
        if message.version != V16 or message.action == "StartTransaction":
            return message.payload
        if message.local_tx is None:
            return message.payload
        row = self.db.query_one(
            "SELECT csms_id FROM transactions WHERE local_id = ?", (message.local_tx,)
        )
        if row is None or row["csms_id"] is None:
            return None
        return {**message.payload, "transactionId": int(row["csms_id"])}

    def _remove(self, message: QueuedMessage) -> None:
        cursor = self.db.execute("DELETE FROM outbox WHERE seq = ?", (message.seq,))
        if cursor.rowcount > 0:  # it may have been thinned while in flight
            self._count -= 1
            self._bytes -= message.size

    async def run(self) -> None:
        """Deliver queued messages in order, forever."""
        while True:
            message = self._head()
            if message is None:
                # Resynchronise the counters (an enqueue whose enclosing
                # transaction rolled back left them one ahead).
                self._count, self._bytes = self._measure()
                self._pack_limit = self.batch_max  # a new backlog tries full packs again
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._ready.wait()
            batch = self._request(message)
            with logs.context(transaction=message.local_tx):
                await self._send(batch)

    async def _send(self, batch: Sequence[QueuedMessage]) -> None:
        """One attempt at delivering the head of the queue (and what is packed with it)."""
        message = batch[0]
        payload = self._with_transaction_id(message)
        if payload is None:
            log.error(
                "dropping %s #%d (and %d packed after it): transaction %s has no CSMS "
                "transactionId (its StartTransaction was never confirmed)",
                message.action,
                message.seq,
                len(batch) - 1,
                message.local_tx,
            )
            with self.db.transaction():
                for each in batch:
                    self._give_up(each, "transaction has no CSMS id")
            return
        packed = len(batch) > 1
        if packed:
            payload = packing.merge(payload, [each.payload for each in batch[1:]])
        was_connected = self.rpc.connected
        try:
            result = await self.rpc.call(message.action, payload, version=message.version)
        except NotConnected as err:
            if packed and was_connected:
                self._pack_failed(batch, err)
            # No attempt spent while offline. A send on a socket that is closing fails
            # without suspending: pause, or this loop would spin before the link notices.
            await asyncio.sleep(OFFLINE_PAUSE_S)
            return
        except InvalidRequest as err:
            if packed:
                self._pack_failed(batch, err)
                return
            log.error("dropping %s #%d: %s", message.action, message.seq, err)
            self._give_up(message, str(err))
            return
        except CallFailed as err:
            if packed:
                self._pack_failed(batch, err)
                return
            if (
                message.action in OPTIONAL_ACTIONS
                and isinstance(err, CallErrorReceived)
                and err.code in _UNSUPPORTED
            ):
                log.warning(
                    "dropping %s #%d: the CSMS does not take it (%s)",
                    message.action,
                    message.seq,
                    err,
                )
                self._give_up(message, str(err))
                return
            await self._failed(message, err)
            return
        self._delivered(batch, result)

    def _pack_failed(self, batch: Sequence[QueuedMessage], err: CallFailed) -> None:
        """A packed request failed: no attempt is spent, its head goes alone next."""
        head = batch[0]
        self._alone = head.seq
        if isinstance(err, CallErrorReceived | NotConnected):
            self._pack_limit = max(1, len(batch) // 2)
        log.warning(
            "%d packed MeterValues #%d..#%d failed (%s); #%d goes alone next, "
            "then up to %d per request",
            len(batch),
            head.seq,
            batch[-1].seq,
            err,
            head.seq,
            min(self.batch_max, self._pack_limit),
        )

    def _delivered(self, batch: Sequence[QueuedMessage], result: dict[str, Any]) -> None:
        # Handlers first (they persist what the answer says, e.g. the CSMS
        # transaction id), then the message leaves the queue (a pack: all of its
        # messages, in one database transaction). Forgetting a delivered
        # MeterValues or 2.0.1 Updated event in a power cut only sends it twice
        # (the CSMS knows an Updated by its seqNo): no fsync.
        with self.db.transaction(durable=not _sample_only(batch[0])):
            for message in batch:
                for handler in self._handlers.get(message.action, []):
                    handler(message.local_tx, result)
                for replied in self._reply_handlers.get(message.action, []):
                    replied(message.local_tx, message.payload, result)
                for settled in self._settled.get(message.action, []):
                    settled(message.seq, True)
                self._remove(message)
        for message in batch:
            future = self._waiters.pop(message.seq, None)
            if future is not None and not future.done():
                future.set_result(result)

    async def _failed(self, message: QueuedMessage, err: CallFailed) -> None:
        """Charge the failed try by the rule in the module's docstring, then wait to retry."""
        alive = err.link_alive if isinstance(err, CallTimeout) else None
        if alive is not None and alive.done() and not alive.result():
            log.warning(
                "%s #%d: %s; the link was given up, so the try does not count",
                message.action,
                message.seq,
                err,
            )
            await asyncio.sleep(OFFLINE_PAUSE_S)
            return
        provisional = alive is not None and not alive.done()
        if alive is not None and provisional:
            alive.add_done_callback(functools.partial(self._charge_if_alive, message.seq))
        else:
            self._charge(message.seq)
        used = self._attempts_used(message.seq)
        if used is None:
            return  # thinned while in flight
        allowed = max(0, self._attempts())
        if used > allowed:
            self._exhausted(message, used, err)
            return
        tries = used + 1 if provisional else used
        delay = self._retry_interval_s() * tries
        log.warning(
            "%s #%d failed (%s); retry %d/%d in %d s%s",
            message.action,
            message.seq,
            err,
            tries,
            allowed,
            delay,
            " (this try counts once the CSMS answers another call)" if provisional else "",
        )
        await asyncio.sleep(delay)
        used = self._attempts_used(message.seq)
        if provisional and used is not None and used > allowed:
            self._exhausted(message, used, err)  # the CSMS answered others meanwhile

    def _attempts_used(self, seq: int) -> int | None:
        row = self.db.query_one("SELECT attempts FROM outbox WHERE seq = ?", (seq,))
        return None if row is None else int(row["attempts"])

    def _charge(self, seq: int) -> None:
        self.db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))

    def _charge_if_alive(self, seq: int, alive: asyncio.Future[bool]) -> None:
        # Runs when the streak of timeouts ends; the message may be gone by then (no row).
        if not alive.cancelled() and alive.result():
            self._charge(seq)

    def _exhausted(self, message: QueuedMessage, used: int, err: CallFailed) -> None:
        log.error("dropping %s #%d after %d attempts: %s", message.action, message.seq, used, err)
        self._give_up(message, str(err))

    def _give_up(self, message: QueuedMessage, why: str) -> None:
        with self.db.transaction():
            for settled in self._settled.get(message.action, []):
                settled(message.seq, False)
            self._remove(message)
            self.db.count_up("outbox_dropped")
        future = self._waiters.pop(message.seq, None)
        if future is not None and not future.done():
            future.set_exception(MessageDropped(why))


class VersionedQueue:
    """An outbox that takes messages written in one OCPP version (a security event's
    SecurityEventNotification is the same payload in 1.6 and 2.0.1; the version of the
    front-end in use writes it)."""

    def __init__(self, outbox: Outbox, version: str | Callable[[], str]) -> None:
        self.outbox = outbox
        self._version = version

    @property
    def version(self) -> str:
        return self._version if isinstance(self._version, str) else self._version()

    def enqueue(self, action: str, payload: dict[str, Any], local_tx: int | None = None) -> int:
        return self.outbox.enqueue(action, payload, local_tx, version=self.version)

    def on_settled(self, action: str, handler: SettledHandler) -> None:
        self.outbox.on_settled(action, handler)
