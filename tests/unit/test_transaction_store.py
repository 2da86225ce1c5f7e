"""Transaction records: the group (parentIdTag) a transaction runs under."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware.connector.transactions import TransactionStore
from firmware.storage.db import Database

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


def test_start_transaction_conf_gives_the_group(db: Database) -> None:
    store = TransactionStore(db)
    record = store.open(1, "AB01", None, 100, T0)
    store.confirm(record.local_id, 41, "Accepted", "GROUP1")
    got = store.get(record.local_id)
    assert got is not None and (got.csms_id, got.parent_id_tag) == (41, "GROUP1")


def test_it_replaces_the_group_of_the_authorization(db: Database) -> None:
    store = TransactionStore(db)
    record = store.open(1, "AB01", "FROM-AUTHORIZE", 100, T0)
    store.confirm(record.local_id, 42, "Accepted", "GROUP1")
    assert [r.parent_id_tag for r in store.open_transactions()] == ["GROUP1"]


def test_an_answer_without_a_group_keeps_the_one_known(db: Database) -> None:
    store = TransactionStore(db)
    record = store.open(1, "AB01", "FROM-AUTHORIZE", 100, T0)
    store.confirm(record.local_id, 43, "Accepted")
    store.confirm(record.local_id, 43, "Accepted", None)
    got = store.get(record.local_id)
    assert got is not None and got.parent_id_tag == "FROM-AUTHORIZE"
    # The record is what a restart reads back.
    assert TransactionStore(db).open_transactions()[0].parent_id_tag == "FROM-AUTHORIZE"
