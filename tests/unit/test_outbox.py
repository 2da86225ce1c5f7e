"""The durable outbox over a real websocket to the bench CSMS."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware.clock import Clock
from firmware.connector.transactions import TransactionStore
from firmware.ocpp.rpc import Rpc
from firmware.queue import Outbox
from firmware.storage.db import Database
from hil.csms import BenchCsms


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
