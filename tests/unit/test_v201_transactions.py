"""OCPP 2.0.1 TransactionEvent from the station's journal, queued durably and delivered
over a real 2.0.1 websocket to the bench CSMS (which checks every frame against the OCA
schemas)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware.auth.cache import IdTagInfo
from firmware.clock import Clock
from firmware.connector.transactions import TransactionStore, TxRecord
from firmware.metering import Sample
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v201.device_model.topology import Evse, Topology
from firmware.ocpp.v201.transactions import (
    TransactionNumbers,
    V201Journal,
    id_token_info,
    sampled_value,
)
from firmware.queue import Outbox
from firmware.storage.db import Database
from hal.interfaces import MeterReading
from hil.csms import BenchCsms, StationLog
from tests.unit.aio import until

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
READING = MeterReading(1234.6, 11040.0, (16.0, 16.0, 16.0), (230.0, 230.0, 230.0), 50.0)
SAMPLE = Sample(READING, 16.0, None, 3)
MEASURANDS = ["Energy.Active.Import.Register", "Power.Active.Import", "Current.Import"]
# Connector 2 of the configuration is EVSE 1, connector 2.
TOPOLOGY = Topology([Evse(1, (1, 2))])


class Answers:
    """The station's side of the answers: what the journal tells it."""

    def __init__(self) -> None:
        self.started: list[tuple[int, int, IdTagInfo]] = []
        self.stopped: list[tuple[int, IdTagInfo | None]] = []

    def start_answered(self, local_id: int, csms_id: int, info: IdTagInfo) -> None:
        self.started.append((local_id, csms_id, info))

    def stop_answered(self, local_id: int, info: IdTagInfo | None) -> None:
        self.stopped.append((local_id, info))


class Station201:
    def __init__(self, path: Path, online: bool = True) -> None:
        self.db = Database(path / "state.db")
        self.rpc = Rpc(response_timeout_s=5, max_frame_bytes=65536, spawn=lambda c: c.close())
        ready = asyncio.Event()
        ready.set()
        self.outbox = Outbox(
            self.db, self.rpc, Clock(), ready=ready, attempts=lambda: 3, retry_interval_s=lambda: 0
        )
        self.transactions = TransactionStore(self.db)
        self.numbers = TransactionNumbers(self.db)
        self.is_online = online
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.journal = V201Journal(
            self.outbox,
            self.transactions,
            self.numbers,
            TOPOLOGY,
            online=lambda: self.is_online,
            send=lambda action, payload: self.sent.append((action, payload)),
        )
        self.answers = Answers()
        self.journal.answers_to(self.answers)  # type: ignore[arg-type]

    def start(self, connector: int = 2, tag: str = "04A1B2C3D4E5F6") -> TxRecord:
        with self.db.transaction():
            record = self.transactions.open(connector, tag, None, 1000, T0, 7)
            self.journal.started(record)
        return record

    def sample(self, record: TxRecord, context: str, seconds: int) -> None:
        with self.db.transaction():
            self.journal.sampled(
                record, SAMPLE, MEASURANDS, context, T0 + timedelta(seconds=seconds)
            )

    def end(self, record: TxRecord, reason: str, tag: str | None) -> None:
        at = T0 + timedelta(seconds=60)
        with self.db.transaction():
            self.journal.kept(record.local_id, SAMPLE, MEASURANDS[:1], "Sample.Periodic", at)
            self.journal.ended(record, 1500, at, reason, tag)
            self.transactions.close(record.local_id, 1500, at, reason, tag)


@contextlib.asynccontextmanager
async def delivering(station: Station201, csms: BenchCsms, cp_id: str) -> AsyncIterator[StationLog]:
    async with (
        connect(f"{csms.url}/{cp_id}", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws,
        asyncio.TaskGroup() as tg,
    ):
        tg.create_task(station.rpc.serve(ws, "2.0.1"))
        running = tg.create_task(station.outbox.run())
        station.outbox.wake()
        try:
            yield csms.station(cp_id)
        finally:
            running.cancel()
            await ws.close()


async def test_a_transaction_is_started_updated_and_ended_in_seq_no_order(tmp_path: Path) -> None:
    station = Station201(tmp_path)
    async with BenchCsms(versions=["2.0.1"]) as csms:
        csms.id_tags["04A1B2C3D4E5F6"] = "Accepted"
        async with delivering(station, csms, "CP-E") as log:
            record = station.start()
            station.sample(record, "Sample.Periodic", 10)
            station.sample(record, "Sample.Clock", 15)
            station.end(record, "Local", "04A1B2C3D4E5F6")
            await until(station.outbox.is_empty, timeout_s=10)
        events = log.calls("TransactionEvent")
        assert log.violations == []
    tx_id = f"{station.numbers.prefix}-{record.local_id}"
    assert [(e["eventType"], e["seqNo"], e["triggerReason"]) for e in events] == [
        ("Started", 0, "Authorized"),
        ("Updated", 1, "MeterValuePeriodic"),
        ("Updated", 2, "MeterValueClock"),
        ("Ended", 3, "StopAuthorized"),
    ]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
    assert not any(e.get("offline") for e in events)
    started, ended = events[0], events[-1]
    assert started["evse"] == {"id": 1, "connectorId": 2}
    assert started["idToken"] == {"idToken": "04A1B2C3D4E5F6", "type": "ISO14443"}
    assert started["reservationId"] == 7
    begin = started["meterValue"][0]["sampledValue"][0]
    assert begin["context"] == "Transaction.Begin" and begin["value"] == 1000.0
    assert begin["unitOfMeasure"] == {"unit": "Wh"}
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    contexts = [v["context"] for m in ended["meterValue"] for v in m["sampledValue"]]
    assert contexts == ["Sample.Periodic", "Transaction.End"]
    assert ended["meterValue"][-1]["sampledValue"][0]["value"] == 1500.0
    # The answers reached the station: the Started one as the transaction's confirmation.
    assert [(s[0], s[1], s[2].status) for s in station.answers.started] == [
        (record.local_id, record.local_id, "Accepted")
    ]
    assert [(s[0], s[1] and s[1].status) for s in station.answers.stopped] == [
        (record.local_id, "Accepted")
    ]
    station.db.close()


async def test_events_of_an_offline_session_say_so_and_survive_a_restart(tmp_path: Path) -> None:
    station = Station201(tmp_path, online=False)
    record = station.start(connector=1)
    station.sample(record, "Sample.Periodic", 10)
    prefix = station.numbers.prefix
    station.db.close()  # a power cut: the queue and the seqNo count are on disk
    again = Station201(tmp_path, online=False)
    assert again.numbers.prefix == prefix
    again.end(record, "EVDisconnected", None)
    again.is_online = True
    async with BenchCsms(versions=["2.0.1"]) as csms:
        async with delivering(again, csms, "CP-OFF") as log:
            await until(again.outbox.is_empty, timeout_s=10)
        events = log.calls("TransactionEvent")
        assert log.violations == []
    assert [(e["eventType"], e["seqNo"], e.get("offline")) for e in events] == [
        ("Started", 0, True),
        ("Updated", 1, True),
        ("Ended", 2, True),
    ]
    assert events[-1]["triggerReason"] == "EVCommunicationLost"
    assert events[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert "idToken" not in events[-1]
    again.db.close()


def test_transaction_ids_are_the_stations_own_and_map_back(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db")
    numbers = TransactionNumbers(db)
    other = TransactionNumbers(Database(tmp_path / "b.db"))
    assert numbers.prefix != other.prefix  # a replaced database: new ids
    tx_id = numbers.transaction_id(17)
    assert len(tx_id) <= 36 and numbers.local_id(tx_id) == 17
    assert other.local_id(tx_id) is None
    assert numbers.local_id("17") is None and numbers.local_id(f"{numbers.prefix}-x") is None
    db.close()


def test_a_clock_aligned_sample_outside_a_transaction_names_its_evse(tmp_path: Path) -> None:
    station = Station201(tmp_path)
    station.journal.outside(2, SAMPLE, MEASURANDS[:1], T0)
    assert station.sent == [
        (
            "MeterValues",
            {
                "evseId": 1,
                "meterValue": [
                    {
                        "timestamp": "2030-01-02T03:04:05.000Z",
                        "sampledValue": [
                            {
                                "value": 1235.0,
                                "context": "Sample.Clock",
                                "measurand": "Energy.Active.Import.Register",
                                "location": "Outlet",
                                "unitOfMeasure": {"unit": "Wh"},
                            }
                        ],
                    }
                ],
            },
        )
    ]
    station.db.close()


def test_conversions() -> None:
    assert sampled_value(
        {
            "value": "3.5",
            "context": "Trigger",
            "format": "Raw",
            "measurand": "SoC",
            "unit": "Percent",
        }
    ) == {
        "value": 3.5,
        "context": "Trigger",
        "measurand": "SoC",
        "unitOfMeasure": {"unit": "Percent"},
    }
    info = id_token_info(
        {
            "status": "NoCredit",
            "cacheExpiryDateTime": "2030-01-01T00:00:00Z",
            "groupIdToken": {"idToken": "FLEET", "type": "Central"},
        }
    )
    assert (info.status, info.parent_id_tag, info.accepted) == ("NoCredit", "FLEET", False)
    assert info.expiry_date == datetime(2030, 1, 1, tzinfo=UTC)
    assert id_token_info(None).accepted
