"""``ocpp.version: auto``: what follows the version in use and what stays with a transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from firmware.connector.transactions import TxRecord
from firmware.metering import Sample
from firmware.ocpp.switchboard import RoutingJournal
from firmware.security.recorder import event_payload
from hal.interfaces import MeterReading

AT = datetime(2030, 1, 1, tzinfo=UTC)
SAMPLE = Sample(MeterReading(1.0, 0.0, (0.0,) * 3, (230.0,) * 3), 16.0, None, 3)


class Recording:
    """A journal that writes down what it was told (the version's messages are tested
    with each front-end)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.told: list[tuple[str, int]] = []

    def started(self, record: TxRecord) -> int:
        self.told.append(("started", record.local_id))
        return record.local_id * 10

    async def answered(self, handle: int) -> bool:
        self.told.append(("answered", handle))
        return True

    def sampled(self, record: TxRecord, *_: Any) -> None:
        self.told.append(("sampled", record.local_id))

    def kept(self, local_id: int, *_: Any) -> None:
        self.told.append(("kept", local_id))

    def ended(self, record: TxRecord, *_: Any) -> None:
        self.told.append(("ended", record.local_id))

    def outside(self, connector_id: int, *_: Any) -> None:
        self.told.append(("outside", connector_id))


def record(local_id: int) -> TxRecord:
    return TxRecord(local_id, 1, "TAG", None, None, None, 0, AT, 0.0, AT, None)


async def test_a_transaction_stays_in_the_version_it_started_in() -> None:
    v16, v201 = Recording("1.6"), Recording("2.0.1")
    version = ["1.6"]
    journal = RoutingJournal({"1.6": v16, "2.0.1": v201}, lambda: version[0], lambda _id: False)
    first = record(1)
    handle = journal.started(first)
    version[0] = "2.0.1"  # the next connection speaks 2.0.1
    journal.sampled(first, SAMPLE, [], "Sample.Periodic", AT)
    assert await journal.answered(handle)
    journal.kept(1, SAMPLE, [], "Sample.Periodic", AT)
    journal.ended(first, 5, AT, "Local", None)
    second = record(2)
    journal.started(second)
    journal.outside(1, SAMPLE, [], AT)
    assert v16.told == [("started", 1), ("sampled", 1), ("answered", 10), ("kept", 1), ("ended", 1)]
    assert v201.told == [("started", 2), ("outside", 1)]


def test_after_a_restart_the_2_0_1_record_says_which_version_a_transaction_is() -> None:
    v16, v201 = Recording("1.6"), Recording("2.0.1")
    journal = RoutingJournal({"1.6": v16, "2.0.1": v201}, lambda: "1.6", lambda i: i == 7)
    journal.ended(record(7), 5, AT, "PowerLoss", None)
    journal.ended(record(8), 5, AT, "PowerLoss", None)
    assert (v201.told, v16.told) == ([("ended", 7)], [("ended", 8)])


def test_a_queued_security_event_is_renamed_for_the_other_version() -> None:
    old = {"type": "InvalidCentralSystemCertificate", "timestamp": "2030-01-01T00:00:00Z"}
    new = event_payload("2.0.1", old)
    assert new == {**old, "type": "InvalidCsmsCertificate"}
    assert event_payload("1.6", new) == old
    same = {"type": "StartupOfTheDevice", "timestamp": "2030-01-01T00:00:00Z"}
    assert event_payload("2.0.1", same) == same == event_payload("1.6", same)
