"""A connector's sampler on a real database: what goes into MeterValues and
transactionData, and the interval energy of each series."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware.clock import Clock
from firmware.connector.availability import AvailabilityStore
from firmware.connector.context import ConnectorContext
from firmware.connector.sampling import Sampler
from firmware.connector.transactions import TransactionStore
from firmware.metering import Sample, supported_measurands
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v16.configuration import ConfigurationStore, StationFacts
from firmware.ocpp.v16.settings import ConfigurationSettings
from firmware.ocpp.v16.transactions import V16Journal
from firmware.queue import Outbox
from firmware.storage.db import Database
from hal.interfaces import BoardSettings, MeterReading

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
INTERVAL = "Energy.Active.Import.Interval"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


def context(
    db: Database, sent: list[dict[str, Any]] | None = None, **keys: str
) -> ConnectorContext:
    """A connector's context whose journal queues 1.6 messages in a real outbox and
    hands what is not queued to ``sent``."""
    config = ConfigurationStore(db, keys, StationFacts(1, supported_measurands(has_bms=False)))
    rpc = Rpc(response_timeout_s=1, max_frame_bytes=65536, spawn=lambda coro: coro.close())
    clock = Clock()
    outbox = Outbox(
        db, rpc, clock, ready=asyncio.Event(), attempts=lambda: 1, retry_interval_s=lambda: 1
    )
    transactions = TransactionStore(db)
    unqueued = [] if sent is None else sent
    return ConnectorContext(
        db=db,
        transactions=transactions,
        journal=V16Journal(outbox, transactions, lambda _action, m: unqueued.append(m)),
        settings=ConfigurationSettings(config),
        availability=AvailabilityStore(db),
        clock=clock,
        board=BoardSettings(),
        spawn=lambda coro: coro.close(),
        online=lambda: True,
        offline_decision=lambda _tag: False,
        response_timeout_s=1,
        meter_poll_s=1,
    )


def sample(energy_wh: float, offered_a: float = 16.0) -> Sample:
    reading = MeterReading(energy_wh, 7360.0, (16.0, 16.0, 16.0), (230.0, 230.0, 230.0), 50.0)
    return Sample(reading, offered_a, None, 3, 230.0)


def queued(db: Database) -> list[dict[str, Any]]:
    rows = db.query("SELECT payload FROM outbox WHERE action = 'MeterValues' ORDER BY seq")
    return [json.loads(r["payload"]) for r in rows]


def values(message: dict[str, Any], measurand: str) -> list[str]:
    return [
        v["value"]
        for mv in message["meterValue"]
        for v in mv["sampledValue"]
        if v["measurand"] == measurand
    ]


def test_periodic_intervals_count_from_the_start_and_add_up(db: Database) -> None:
    ctx = context(
        db,
        MeterValuesSampledData=f"{INTERVAL},Power.Offered",
        StopTxnSampledData=INTERVAL,
    )
    sampler = Sampler(ctx, 1)
    tx = ctx.transactions.open(1, "AB01", None, 1000, T0)
    with db.transaction():
        sampler.begin(tx.local_id, 1000, T0, sample(1000.4))
    for n, energy in enumerate((1010.0, 1030.5), start=1):
        sampler.periodic(tx, sample(energy), T0 + timedelta(seconds=60 * n))
    with db.transaction():
        sampler.end(tx.local_id, T0 + timedelta(seconds=150), sample(1036.0))
    sent = queued(db)
    assert [values(m, INTERVAL) for m in sent] == [["10.0"], ["20.5"]]
    assert [values(m, "Power.Offered") for m in sent] == [["11040.0"], ["11040.0"]]
    kept = ctx.transactions.samples(tx.local_id)
    contexts = [(mv["sampledValue"][0]["context"], mv["sampledValue"][0]["value"]) for mv in kept]
    # Transaction.Begin ends no interval: nothing is kept for it.
    assert contexts == [
        ("Sample.Periodic", "10.0"),
        ("Sample.Periodic", "20.5"),
        ("Transaction.End", "5.5"),
    ]
    assert sum(float(v) for _, v in contexts) == 1036.0 - 1000


def test_a_new_transaction_starts_its_own_series(db: Database) -> None:
    ctx = context(db, MeterValuesSampledData=INTERVAL)
    sampler = Sampler(ctx, 1)
    first = ctx.transactions.open(1, "AB01", None, 1000, T0)
    sampler.begin(first.local_id, 1000, T0, sample(1000))
    sampler.periodic(first, sample(1100), T0)
    sampler.end(first.local_id, T0, sample(1150))
    second = ctx.transactions.open(1, "AB02", None, 1200, T0)
    sampler.begin(second.local_id, 1200, T0, sample(1200))
    sampler.periodic(second, sample(1207), T0)
    assert [values(m, INTERVAL) for m in queued(db)] == [["100.0"], ["7.0"]]


def test_clock_aligned_intervals_need_a_previous_aligned_sample(db: Database) -> None:
    sent: list[dict[str, Any]] = []
    ctx = context(db, sent, MeterValuesAlignedData=f"{INTERVAL},Energy.Active.Import.Register")
    sampler = Sampler(ctx, 1)
    for minutes, energy in ((0, 500), (15, 512), (30, 3), (45, 9)):
        sampler.aligned(None, sample(energy), T0 + timedelta(minutes=minutes))
    assert queued(db) == []  # outside a transaction: sent, not queued
    # No interval ended at the first; a register that went backwards (a meter
    # replaced) gives no interval value.
    assert [values(m, INTERVAL) for m in sent] == [[], ["12.0"], [], ["6.0"]]
    assert [len(values(m, "Energy.Active.Import.Register")) for m in sent] == [1, 1, 1, 1]
