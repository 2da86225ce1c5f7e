"""The durable outbox over a real websocket to the bench CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware import packing
from firmware.clock import Clock
from firmware.connector.transactions import TransactionStore
from firmware.ocpp.errors import NotConnected
from firmware.ocpp.rpc import Rpc
from firmware.queue import MessageDropped, Outbox
from firmware.storage.db import Database
from hil.csms import NO_REPLY, BenchCsms, CallErrorReply, Frame, StationLog
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

        async def call(self, action: str, payload: dict[str, Any], **_: Any) -> dict[str, Any]:
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


# ------------------------------------------------------------ packing on replay


def _mv(i: int, connector: int = 1) -> dict[str, Any]:
    """A sample whose value and timestamp tell its place in the queue."""
    at = f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
    return {
        "connectorId": connector,
        "meterValue": [{"timestamp": at, "sampledValue": [{"value": str(i)}]}],
    }


def _values(requests: list[dict[str, Any]]) -> list[int]:
    return [int(sv["value"]) for r in requests for e in r["meterValue"] for sv in e["sampledValue"]]


def _sizes(requests: list[dict[str, Any]]) -> list[int]:
    return [len(r["meterValue"]) for r in requests]


def _live(db: Database, **kw: Any) -> Outbox:
    rpc = Rpc(response_timeout_s=5, max_frame_bytes=65536, spawn=lambda coro: coro.close())
    ready = asyncio.Event()
    ready.set()
    options: dict[str, Any] = {"attempts": lambda: 1, "retry_interval_s": lambda: 0, **kw}
    return Outbox(db, rpc, Clock(), ready=ready, **options)


def _confirmed(db: Database, connector: int, csms_id: int) -> int:
    """A transaction whose StartTransaction was answered (its rows need no Start)."""
    txs = TransactionStore(db)
    record = txs.open(connector, "AB01", None, 0, Clock().now())
    txs.confirm(record.local_id, csms_id, "Accepted")
    return record.local_id


@contextlib.asynccontextmanager
async def _online(outbox: Outbox, csms: BenchCsms, cp_id: str) -> AsyncIterator[StationLog]:
    """The outbox delivering over a websocket to ``csms`` until the block ends."""
    async with (
        connect(f"{csms.url}/{cp_id}", subprotocols=[Subprotocol("ocpp1.6")]) as ws,
        asyncio.TaskGroup() as tg,
    ):
        tg.create_task(outbox.rpc.serve(ws))
        delivering = tg.create_task(outbox.run())
        try:
            yield csms.station(cp_id)
        finally:
            delivering.cancel()
            await ws.close()


async def _drained(outbox: Outbox) -> None:
    await until(outbox.is_empty, timeout_s=10)


def call_frames(log: StationLog, action: str | None = None) -> list[Frame]:
    """The station's CALL frames, in order."""
    return [
        f
        for f in log.frames
        if f.direction == "in"
        and f.message
        and f.message[0] == 2
        and action in (None, f.message[2])
    ]


async def test_replay_packs_meter_values_of_one_transaction_between_its_start_and_stop(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "state.db")
    outbox = _live(db)
    txs = TransactionStore(db)
    outbox.on_result(
        "StartTransaction",
        lambda local, result: txs.confirm(local or 0, result["transactionId"], "Accepted"),
    )
    one = txs.open(1, "AB01", None, 0, Clock().now()).local_id
    two = txs.open(2, "AB02", None, 0, Clock().now()).local_id
    stop = {"meterStop": 9, "timestamp": "2026-01-01T01:00:00Z"}
    queue: list[tuple[str, dict[str, Any], int | None]] = [
        ("StartTransaction", START, one),
        ("MeterValues", _mv(1), one),
        ("MeterValues", _mv(2), one),
        ("MeterValues", _mv(3), one),
        ("StartTransaction", {**START, "connectorId": 2, "idTag": "AB02"}, two),
        ("MeterValues", _mv(4), one),
        ("MeterValues", _mv(5), one),
        ("MeterValues", _mv(6, connector=2), two),
        ("MeterValues", _mv(7, connector=2), two),
        ("MeterValues", _mv(8), one),
        ("MeterValues", _mv(9), None),  # not of a transaction: never packed
        ("StopTransaction", stop, one),
        ("MeterValues", _mv(10, connector=2), two),
        ("StopTransaction", stop, two),
    ]
    for action, payload, local in queue:
        outbox.enqueue(action, payload, local)

    async with BenchCsms() as csms:
        csms.next_transaction_id = 101
        async with _online(outbox, csms, "CP-PACK") as log:
            await log.wait_for("StopTransaction", lambda p: p["transactionId"] == 102)
            await _drained(outbox)
    sent = [(f.message[2], f.message[3]) for f in call_frames(log) if f.message]
    assert [(a, _values([p]) if a == "MeterValues" else None) for a, p in sent] == [
        ("StartTransaction", None),
        ("MeterValues", [1, 2, 3]),
        ("StartTransaction", None),
        ("MeterValues", [4, 5]),
        ("MeterValues", [6, 7]),
        ("MeterValues", [8]),
        ("MeterValues", [9]),
        ("StopTransaction", None),
        ("MeterValues", [10]),
        ("StopTransaction", None),
    ]
    ids = [p.get("transactionId") for a, p in sent if a != "StartTransaction"]
    assert ids == [101, 101, 102, 101, None, 101, 102, 102]
    packed = log.calls("MeterValues")[0]["meterValue"]
    assert [e["timestamp"] for e in packed] == [
        _mv(i)["meterValue"][0]["timestamp"] for i in (1, 2, 3)
    ]
    assert log.violations == [] and outbox.dropped == 0
    db.close()


async def test_packs_are_bounded_by_count_and_frame_bytes(tmp_path: Path) -> None:
    async def replay(batch_max: int, batch_bytes: int, cp_id: str) -> list[Frame]:
        db = Database(tmp_path / f"{cp_id}.db")
        outbox = _live(db, batch_max=batch_max, batch_bytes=batch_bytes)
        local = _confirmed(db, 1, 7)
        for i in range(10):
            outbox.enqueue("MeterValues", _mv(i), local)
        async with BenchCsms() as csms, _online(outbox, csms, cp_id) as log:
            await _drained(outbox)
        db.close()
        assert _values(log.calls("MeterValues")) == list(range(10))
        assert log.violations == []
        return call_frames(log, "MeterValues")

    counted = await replay(4, 65536, "CP-COUNT")
    assert [len(f.message[3]["meterValue"]) for f in counted if f.message] == [4, 4, 2]
    unpacked = await replay(1, 65536, "CP-ONE")
    assert len(unpacked) == 10
    # Room for the first sample's frame and two more entries: packs of three.
    bound = packing.frame_bytes(_mv(0)) + 2 * packing.entries_bytes(_mv(1))
    by_bytes = await replay(50, bound, "CP-BYTES")
    assert [len(f.message[3]["meterValue"]) for f in by_bytes if f.message] == [3, 3, 3, 1]
    assert all(len(f.raw.encode()) <= bound for f in by_bytes)


async def test_crash_between_send_and_answer_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = Database(path)
    outbox = _live(db)
    txs = TransactionStore(db)
    outbox.on_result(
        "StartTransaction",
        lambda local, result: txs.confirm(local or 0, result["transactionId"], "Accepted"),
    )
    local = txs.open(1, "AB01", None, 0, Clock().now()).local_id
    outbox.enqueue("StartTransaction", START, local)
    for i in range(6):
        outbox.enqueue("MeterValues", _mv(i), local)
    outbox.enqueue("StopTransaction", {"meterStop": 9, "timestamp": "2026-01-01T01:00:00Z"}, local)

    async with BenchCsms() as csms:
        csms.next_transaction_id = 42
        csms.handlers["MeterValues"] = lambda _cp, _p: NO_REPLY  # the answer never comes
        async with _online(outbox, csms, "CP-CRASH") as log:
            await log.wait_for("MeterValues")
        db.close()  # the process is gone with the pack in flight

        db = Database(path)
        again = _live(db)
        assert again.pending() == 7  # the six samples and the stop
        del csms.handlers["MeterValues"]
        async with _online(again, csms, "CP-CRASH"):
            await log.wait_for("StopTransaction")
            await _drained(again)
    first, second = log.calls("MeterValues")
    assert first == second and _values([second]) == list(range(6))
    assert second["transactionId"] == 42  # from the database, not from memory
    assert len(log.calls("StartTransaction")) == 1 and log.violations == []
    db.close()
    db = Database(path)
    assert _live(db).pending() == 0  # what the next start would find
    db.close()


async def test_thinning_while_a_pack_is_in_flight(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    outbox = _live(db, max_messages=10, batch_max=4)
    local = _confirmed(db, 1, 7)
    for i in range(6):
        outbox.enqueue("MeterValues", _mv(i), local)
    answers = [asyncio.Event(), asyncio.Event()]
    calls = 0

    async def held(_cp: str, _payload: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls <= len(answers):
            await answers[calls - 1].wait()

    async with BenchCsms() as csms:
        csms.handlers["MeterValues"] = held
        async with _online(outbox, csms, "CP-THIN") as log:
            await log.wait_for("MeterValues")
            for i in range(6, 16):  # the queue overflows: every other sample goes
                outbox.enqueue("MeterValues", _mv(i), local)
            assert outbox.thinned > 0
            answers[0].set()
            await log.wait_for("MeterValues", since=1)  # the pack has left the queue
            row = db.query_one("SELECT COUNT(*) AS n, SUM(LENGTH(payload)) AS b FROM outbox")
            assert row is not None and row["n"] == 5
            assert (outbox.pending(), outbox._bytes) == (row["n"], row["b"])
            answers[1].set()
            await _drained(outbox)
    requests = log.calls("MeterValues")
    assert _values(requests[:1]) == [0, 1, 2, 3]
    # 1, 3 and then 2 of the pack in flight were thinned too; the survivors follow it.
    assert _values(requests[1:]) == [4, 8, 11, 13, 15] and outbox.thinned == 10
    assert log.violations == [] and outbox.dropped == 0
    db.close()


async def test_a_refused_pack_is_retried_unpacked_and_costs_no_attempt(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    # No retry allowed: an attempt charged for a pack would drop its head.
    outbox = _live(db, attempts=lambda: 0, batch_max=8)
    local = _confirmed(db, 1, 7)
    for i in range(16):
        outbox.enqueue("MeterValues", _mv(i), local)

    def small_only(_cp: str, payload: dict[str, Any]) -> CallErrorReply | None:
        if len(payload["meterValue"]) > 2:
            return CallErrorReply("FormationViolation", "too many meter values")
        return None

    async with BenchCsms() as csms:
        csms.handlers["MeterValues"] = small_only
        async with _online(outbox, csms, "CP-REFUSE") as log:
            await _drained(outbox)
            sizes = _sizes(log.calls("MeterValues"))
            # 8 refused, its head alone, 4 refused, its head alone, then packs of 2.
            assert sizes == [8, 1, 4, 1, 2, 2, 2, 2, 2, 2, 2]
            accepted = [r for r in log.calls("MeterValues") if len(r["meterValue"]) <= 2]
            assert _values(accepted) == list(range(16))
            # The pack size recovers once the backlog is gone.
            for i in range(16, 20):
                outbox.enqueue("MeterValues", _mv(i), local)
            since = log.mark()
            await _drained(outbox)
            assert _sizes(log.calls("MeterValues")[since:]) == [4, 1, 2, 1]
    assert outbox.dropped == 0 and log.violations == []
    db.close()


async def test_a_message_the_csms_rejects_is_isolated_from_its_pack(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    outbox = _live(db, attempts=lambda: 1, batch_max=6)
    local = _confirmed(db, 1, 7)
    for i in range(6):
        outbox.enqueue("MeterValues", _mv(i), local)

    def no_three(_cp: str, payload: dict[str, Any]) -> CallErrorReply | None:
        if 3 in _values([payload]):
            return CallErrorReply("PropertyConstraintViolation", "value 3 is not accepted")
        return None

    async with BenchCsms() as csms:
        csms.handlers["MeterValues"] = no_three
        async with _online(outbox, csms, "CP-POISON") as log:
            await _drained(outbox)
    # The pack of six is refused; its head goes alone; a pack of three is refused; its
    # head goes alone; then one by one, and the rejected sample gets its attempt and one
    # retry before it is dropped.
    assert [_values([r]) for r in log.calls("MeterValues")] == [
        [0, 1, 2, 3, 4, 5],
        [0],
        [1, 2, 3],
        [1],
        [2],
        [3],
        [3],
        [4],
        [5],
    ]
    assert outbox.dropped == 1 and log.violations == []
    db.close()


async def test_a_pack_of_a_transaction_without_csms_id_is_dropped_at_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    outbox = _live(db)
    local = TransactionStore(db).open(1, "AB01", None, 0, Clock().now()).local_id
    for i in range(5):
        outbox.enqueue("MeterValues", _mv(i), local)
    async with BenchCsms() as csms, _online(outbox, csms, "CP-NOID") as log:
        await _drained(outbox)
    assert outbox.dropped == 5 and log.calls("MeterValues") == []
    db.close()


async def test_a_pack_the_csms_closes_the_connection_on_is_halved(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    outbox = _live(db, attempts=lambda: 0, batch_max=8)
    local = _confirmed(db, 1, 7)
    for i in range(16):
        outbox.enqueue("MeterValues", _mv(i), local)
    cp_id = "CP-DROP"

    def oversized(payload: dict[str, Any]) -> bool:
        return len(payload["meterValue"]) > 2

    async with BenchCsms() as csms, asyncio.TaskGroup() as tg:
        csms.handlers["MeterValues"] = lambda _cp, p: NO_REPLY if oversized(p) else None
        log = csms.station(cp_id)
        delivering = tg.create_task(outbox.run())
        for _ in range(4):
            async with connect(f"{csms.url}/{cp_id}", subprotocols=[Subprotocol("ocpp1.6")]) as ws:
                serving = tg.create_task(outbox.rpc.serve(ws))
                seen = len(log.calls("MeterValues"))

                def decided(seen: int = seen) -> bool:
                    return outbox.is_empty() or any(map(oversized, log.calls("MeterValues")[seen:]))

                await until(decided, timeout_s=10)
                if outbox.is_empty():
                    break
                # As a server closes the socket on a message over its size limit.
                await csms.drop(cp_id, abort=True)
                await serving
        delivering.cancel()
    assert _sizes(log.calls("MeterValues")) == [8, 1, 4, 1, 2, 2, 2, 2, 2, 2, 2]
    accepted = [r for r in log.calls("MeterValues") if not oversized(r)]
    assert _values(accepted) == list(range(16))
    assert outbox.dropped == 0 and log.violations == []
    db.close()


async def test_a_message_goes_out_only_in_the_version_it_was_written_in(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    outbox = _live(db)
    event = {"type": "StartupOfTheDevice", "timestamp": "2026-01-01T00:00:00Z"}
    outbox.enqueue("SecurityEventNotification", {**event, "techInfo": "first"})
    # A 2.0.1 transaction has the station's own id: none is filled in, none is missing.
    unconfirmed = TransactionStore(db).open(1, "AB01", None, 0, Clock().now()).local_id
    outbox.enqueue(
        "SecurityEventNotification", {**event, "techInfo": "2.0.1"}, unconfirmed, version="2.0.1"
    )
    outbox.enqueue("SecurityEventNotification", {**event, "techInfo": "third"})
    async with BenchCsms(versions=["1.6", "2.0.1"]) as csms:
        async with _online(outbox, csms, "CP-V16") as log:
            await until(lambda: outbox.pending() == 1, timeout_s=10)
            assert [p["techInfo"] for p in log.calls()] == ["first", "third"]
        # The same queue over a 2.0.1 connection: the message waiting for it goes.
        async with (
            connect(f"{csms.url}/CP-V201", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws,
            asyncio.TaskGroup() as tg,
        ):
            tg.create_task(outbox.rpc.serve(ws, "2.0.1"))
            delivering = tg.create_task(outbox.run())
            outbox.wake()
            await _drained(outbox)
            delivering.cancel()
            await ws.close()
        v201 = csms.station("CP-V201")
        assert v201.calls("SecurityEventNotification") == [{**event, "techInfo": "2.0.1"}]
        assert v201.violations == [] and csms.station("CP-V16").violations == []
    assert outbox.dropped == 0
    db.close()
