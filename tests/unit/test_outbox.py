"""The durable outbox over a real websocket to the bench CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware.clock import Clock
from firmware.connector.transactions import TransactionStore
from firmware.ocpp.errors import NotConnected
from firmware.ocpp.rpc import Rpc
from firmware.queue import MessageDropped, Outbox
from firmware.storage.db import Database
from hil.csms import BenchCsms
from tests.unit.aio import until
from tests.unit.memory_socket import MemorySocket


async def test_order_id_rewrite_and_poison_message(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    clock = Clock()
    rpc = Rpc(response_timeout_s=2, max_frame_bytes=65536, spawn=lambda coro: coro.close())
    ready = asyncio.Event()
    ready.set()
    outbox = Outbox(db, rpc, clock, ready=ready, attempts=lambda: 1, retry_interval_s=lambda: 0)
    txs = TransactionStore(db)
    outbox.on_result(
        "StartTransaction",
        lambda local, result: txs.confirm(local or 0, result["transactionId"], "Accepted"),
    )
    record = txs.open(1, "AB01", None, 100, clock.now())
    now = "2026-01-01T00:00:00.000Z"
    outbox.enqueue("StartTransaction", {"connectorId": 1}, record.local_id)  # invalid: never sent
    outbox.enqueue(
        "StartTransaction",
        {"connectorId": 1, "idTag": "AB01", "meterStart": 100, "timestamp": now},
        record.local_id,
    )
    outbox.enqueue("StopTransaction", {"meterStop": 150, "timestamp": now}, record.local_id)
    assert outbox.pending() == 3

    async with BenchCsms() as csms:
        csms.next_transaction_id = 555
        async with (
            connect(f"{csms.url}/CP-U", subprotocols=[Subprotocol("ocpp1.6")]) as ws,
            asyncio.TaskGroup() as tg,
        ):
            serving = tg.create_task(rpc.serve(ws))
            delivering = tg.create_task(outbox.run())
            log = csms.station("CP-U")
            stop = await log.wait_for("StopTransaction")
            for _ in range(100):
                if outbox.is_empty():
                    break
                await asyncio.sleep(0.02)
            delivering.cancel()
            await ws.close()
            await serving
    assert stop == {"meterStop": 150, "timestamp": now, "transactionId": 555}
    assert [p["idTag"] for p in log.calls("StartTransaction")] == ["AB01"]
    assert outbox.dropped == 1 and outbox.is_empty()
    assert log.violations == []
    db.close()


def _outbox(db: Database, **bounds: int) -> Outbox:
    rpc = Rpc(response_timeout_s=2, max_frame_bytes=65536, spawn=lambda coro: coro.close())
    return Outbox(
        db,
        rpc,
        Clock(),
        ready=asyncio.Event(),
        attempts=lambda: 1,
        retry_interval_s=lambda: 0,
        **bounds,
    )


MV = {
    "connectorId": 1,
    "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}],
}
START = {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"}


async def test_full_queue_thins_meter_values_and_keeps_start_stop(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    outbox = _outbox(db, max_messages=10)
    outbox.enqueue("StartTransaction", START, 1)
    for i in range(40):
        outbox.enqueue("MeterValues", {**MV, "connectorId": 1 + i % 2}, 1)
    outbox.enqueue("StopTransaction", {"meterStop": 5, "timestamp": "2026-01-01T00:00:00Z"}, 1)
    actions = [r["action"] for r in db.query("SELECT action FROM outbox ORDER BY seq")]
    assert actions[0] == "StartTransaction" and actions[-1] == "StopTransaction"
    assert outbox.pending() == len(actions) <= 11
    assert outbox.thinned == 40 - (len(actions) - 2)
    # The counters survive a restart; the in-memory size matches the table.
    again = _outbox(db, max_messages=10)
    assert again.thinned == outbox.thinned and again.pending() == outbox.pending()
    db.close()


async def test_queue_of_only_start_stop_is_never_thinned(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    outbox = _outbox(db, max_messages=10)
    for i in range(12):
        outbox.enqueue("StartTransaction", {**START, "meterStart": i}, i)
    assert outbox.pending() == 12  # over the bound, but nothing is dropped
    assert outbox.enqueue("MeterValues", MV, 1) == 0  # a new sample is what gives way
    assert outbox.pending() == 12 and outbox.thinned == 1
    db.close()


def test_a_queue_of_100000_costs_no_memory(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    payload = json.dumps(MV)
    with db.transaction():
        db.execute(
            "INSERT INTO outbox (action, payload, local_tx, created_at) VALUES "
            "('StartTransaction', ?, 1, 'x')",
            (json.dumps(START),),
        )
        db._conn.executemany(
            "INSERT INTO outbox (action, payload, local_tx, created_at) "
            "VALUES ('MeterValues', ?, 1, 'x')",
            ((payload,) for _ in range(100_000)),
        )
    tracemalloc.start()
    outbox = _outbox(db)
    head = outbox._head()
    pending = outbox.pending()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert head is not None and head.action == "StartTransaction"
    assert pending == 100_001
    assert peak < 2 * 1024 * 1024  # one row at a time, not the queue
    db.close()


async def test_no_connection_does_not_spin_the_event_loop(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    ready = asyncio.Event()
    ready.set()  # the link still looks up while its socket is already gone

    class ClosingRpc(Rpc):
        calls = 0

        async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
            ClosingRpc.calls += 1
            if ClosingRpc.calls > 20:
                ready.clear()  # ends a spin, so that this test fails instead of hanging
            raise NotConnected(f"{action}: send failed")

    rpc = ClosingRpc(response_timeout_s=2, max_frame_bytes=65536, spawn=lambda coro: coro.close())
    outbox = Outbox(db, rpc, Clock(), ready=ready, attempts=lambda: 1, retry_interval_s=lambda: 0)
    outbox.enqueue("StopTransaction", {"meterStop": 1, "timestamp": "2026-01-01T00:00:00Z"})
    task = asyncio.create_task(outbox.run())
    await asyncio.sleep(0.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert 1 <= ClosingRpc.calls <= 4  # one try per pause, not thousands
    assert outbox.pending() == 1  # and no attempt spent
    db.close()


STOP = {"meterStop": 5, "timestamp": "2026-01-01T00:00:00Z", "transactionId": 7}


class Link:
    """An Outbox and an Rpc over in-memory sockets; the test plays the CSMS."""

    def __init__(self, tg: asyncio.TaskGroup, db: Database, *, attempts: int, dead: int) -> None:
        self.tg = tg
        self.rpc = Rpc(
            response_timeout_s=0.1,
            max_frame_bytes=65536,
            spawn=self._spawn,
            dead_link_timeouts=dead,
        )
        self.ready = asyncio.Event()
        self.outbox = Outbox(
            db,
            self.rpc,
            Clock(),
            ready=self.ready,
            attempts=lambda: attempts,
            retry_interval_s=lambda: 1,
        )
        self.db = db

    def _spawn(self, coro: Any) -> None:
        self.tg.create_task(coro)

    async def connect(self) -> MemorySocket:
        sock = MemorySocket()
        self.tg.create_task(self.rpc.serve(sock))
        await self.rpc.connected_event.wait()
        self.ready.set()
        return sock

    def attempts_used(self) -> int:
        row = self.db.query_one("SELECT attempts FROM outbox ORDER BY seq LIMIT 1")
        assert row is not None
        return int(row["attempts"])

    async def heartbeat_answered(self, sock: MemorySocket, frame_no: int) -> None:
        call = self.tg.create_task(self.rpc.call("Heartbeat", {}))
        uid = (await sock.wait_sent(frame_no))[1]
        sock.feed([3, uid, {"currentTime": "2026-01-01T00:00:00Z"}])
        await call


async def test_a_timeout_counts_once_the_csms_answers_another_call(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    async with asyncio.TaskGroup() as tg:
        link = Link(tg, db, attempts=3, dead=3)
        link.outbox.enqueue("StopTransaction", STOP)
        sock = await link.connect()
        delivering = tg.create_task(link.outbox.run())
        first = await sock.wait_sent(1)  # not answered: a timeout
        assert first[2] == "StopTransaction"
        # While the outbox waits to retry, the CSMS answers something else ...
        await link.heartbeat_answered(sock, 2)
        await until(lambda: link.attempts_used() == 1)  # ... so the timeout counted
        retry = await sock.wait_sent(3)
        assert retry[2:] == first[2:]
        sock.feed([3, retry[1], {}])
        await until(link.outbox.is_empty)
        delivering.cancel()
        await sock.close()
    assert link.outbox.dropped == 0
    db.close()


async def test_timeouts_of_a_dead_link_count_for_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    async with asyncio.TaskGroup() as tg:
        # No retry allowed at all: a single counted timeout would drop the message.
        link = Link(tg, db, attempts=0, dead=2)
        link.outbox.enqueue("StopTransaction", STOP)
        sock = await link.connect()
        delivering = tg.create_task(link.outbox.run())
        await sock.wait_sent(2)  # two timeouts in a row: the link is given up
        assert await sock.wait_closed() == (1000, "no answer from the CSMS")
        link.ready.clear()  # what Registration does when the link goes
        assert link.attempts_used() == 0
        sock2 = await link.connect()
        again = await sock2.wait_sent(1)
        assert again[2] == "StopTransaction"
        sock2.feed([3, again[1], {}])
        await until(link.outbox.is_empty)
        delivering.cancel()
        await sock2.close()
    assert link.outbox.dropped == 0
    db.close()


async def test_a_timeout_counted_while_waiting_can_use_up_the_last_attempt(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "state.db")
    async with asyncio.TaskGroup() as tg:
        link = Link(tg, db, attempts=0, dead=3)
        seq = link.outbox.enqueue("StopTransaction", STOP)
        result = link.outbox.wait_result(seq)
        sock = await link.connect()
        delivering = tg.create_task(link.outbox.run())
        await sock.wait_sent(1)
        await link.heartbeat_answered(sock, 2)
        with pytest.raises(MessageDropped):
            await result
        assert link.outbox.is_empty() and link.outbox.dropped == 1
        assert len(sock.sent) == 2  # given up without another try
        delivering.cancel()
        await sock.close()
    db.close()
