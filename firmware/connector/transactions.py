"""Transaction records in the state database."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firmware.clock import iso, parse_iso
from firmware.metering import Sample, meter_value, sampled_values
from firmware.storage.db import Database


@dataclass(slots=True)
class TxRecord:
    local_id: int
    connector_id: int
    id_tag: str
    parent_id_tag: str | None
    csms_id: int | None
    reservation_id: int | None
    meter_start_wh: int
    started_at: datetime
    last_meter_wh: float
    last_seen_at: datetime
    id_tag_status: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TxRecord:
        return cls(
            local_id=int(row["local_id"]),
            connector_id=int(row["connector_id"]),
            id_tag=str(row["id_tag"]),
            parent_id_tag=row["parent_id_tag"],
            csms_id=row["csms_id"],
            reservation_id=row["reservation_id"],
            meter_start_wh=int(row["meter_start_wh"]),
            started_at=parse_iso(row["started_at"]),
            last_meter_wh=float(row["last_meter_wh"]),
            last_seen_at=parse_iso(row["last_seen_at"]),
            id_tag_status=row["id_tag_status"],
        )


class TransactionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def open(
        self,
        connector_id: int,
        id_tag: str,
        parent_id_tag: str | None,
        meter_start_wh: int,
        at: datetime,
        reservation_id: int | None = None,
    ) -> TxRecord:
        cursor = self.db.execute(
            "INSERT INTO transactions (connector_id, id_tag, parent_id_tag, reservation_id, "
            "meter_start_wh, started_at, last_meter_wh, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                connector_id,
                id_tag,
                parent_id_tag,
                reservation_id,
                meter_start_wh,
                iso(at),
                float(meter_start_wh),
                iso(at),
            ),
        )
        local_id = cursor.lastrowid
        assert local_id is not None
        record = self.get(local_id)
        assert record is not None
        return record

    def get(self, local_id: int) -> TxRecord | None:
        row = self.db.query_one("SELECT * FROM transactions WHERE local_id = ?", (local_id,))
        return TxRecord.from_row(row) if row else None

    def open_transactions(self) -> list[TxRecord]:
        rows = self.db.query(
            "SELECT * FROM transactions WHERE stopped_at IS NULL ORDER BY local_id"
        )
        return [TxRecord.from_row(r) for r in rows]

    def by_csms_id(self, csms_id: int) -> TxRecord | None:
        row = self.db.query_one(
            "SELECT * FROM transactions WHERE csms_id = ? AND stopped_at IS NULL", (csms_id,)
        )
        return TxRecord.from_row(row) if row else None

    def confirm(
        self, local_id: int, csms_id: int, id_tag_status: str, parent_id_tag: str | None = None
    ) -> None:
        """StartTransaction.conf: the CSMS's id, and the group it gives the idTag.

        A parentIdTag in the answer becomes the transaction's group; an answer
        without one keeps the group learned when the tag was authorized.
        """
        self.db.execute(
            "UPDATE transactions SET csms_id = ?, id_tag_status = ?, "
            "parent_id_tag = COALESCE(?, parent_id_tag) WHERE local_id = ?",
            (csms_id, id_tag_status, parent_id_tag, local_id),
        )

    def authorize(self, local_id: int, id_tag: str, parent_id_tag: str | None) -> None:
        """The token of a transaction that began without one (TxStartPoint EVConnected)."""
        self.db.execute(
            "UPDATE transactions SET id_tag = ?, parent_id_tag = ? WHERE local_id = ?",
            (id_tag, parent_id_tag, local_id),
        )

    def record_meter(self, local_id: int, energy_wh: float, at: datetime) -> None:
        self.db.execute(
            "UPDATE transactions SET last_meter_wh = MAX(last_meter_wh, ?), last_seen_at = ? "
            "WHERE local_id = ?",
            (energy_wh, iso(at), local_id),
        )

    def add_sample(self, local_id: int, meter_value: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO tx_samples (local_id, meter_value) VALUES (?, ?)",
            (local_id, json.dumps(meter_value, separators=(",", ":"))),
        )

    def keep_sample(
        self, local_id: int, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        """Keep the ``measurands`` of ``sample`` for the message that ends the transaction
        (in the station's 1.6-shaped meterValue; each version's journal converts them)."""
        values = sampled_values(sample, measurands, context)
        if values:
            self.add_sample(local_id, meter_value(at, values))

    def samples(self, local_id: int) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT meter_value FROM tx_samples WHERE local_id = ? ORDER BY id", (local_id,)
        )
        return [json.loads(r["meter_value"]) for r in rows]

    def close(
        self, local_id: int, meter_stop_wh: int, at: datetime, reason: str, id_tag: str | None
    ) -> None:
        self.db.execute(
            "UPDATE transactions SET stopped_at = ?, meter_stop_wh = ?, stop_reason = ?, "
            "stop_id_tag = ? WHERE local_id = ?",
            (iso(at), meter_stop_wh, reason, id_tag, local_id),
        )
        self.db.execute("DELETE FROM tx_samples WHERE local_id = ?", (local_id,))
