"""The security log: every security event the station detected, in the state database.

Bounded and rolling, as the whitepaper recommends: at most ``max_entries``
entries and ``max_bytes`` bytes (the text of an entry plus ``ENTRY_OVERHEAD``);
a new entry that would pass either bound first pushes out the oldest ones,
and their number is kept (``rolled``). Rolling is the log's normal life, not
a clearing: the queued SecurityEventNotification of a critical event keeps its
own copy, so an entry rolled out before it was delivered is still delivered.

Times are OCPP date-times (``firmware.clock.iso``: UTC, milliseconds, ``Z``), so
they compare as strings.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from firmware.storage.db import Database

ENTRY_OVERHEAD = 48  # bytes an entry costs beside its text (row id, flags, index)
CSV_HEADER = ("id", "timestamp", "type", "critical", "techInfo", "delivery", "sentAt")
_COLUMNS = "id, occurred_at, type, tech_info, critical, delivery, sent_at"
_ROLLED = "security_log_rolled"


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    occurred_at: str
    type: str
    tech_info: str | None
    critical: bool
    delivery: str | None  # None: not sent (not critical); queued, sent or dropped
    sent_at: str | None

    def csv_row(self) -> tuple[str, ...]:
        return (
            str(self.id),
            self.occurred_at,
            self.type,
            "true" if self.critical else "false",
            self.tech_info or "",
            self.delivery or "",
            self.sent_at or "",
        )


def entry_size(occurred_at: str, event_type: str, tech_info: str | None) -> int:
    text = occurred_at + event_type + (tech_info or "")
    return len(text.encode("utf-8")) + ENTRY_OVERHEAD


def _entry(row: sqlite3.Row) -> LogEntry:
    return LogEntry(
        int(row["id"]),
        str(row["occurred_at"]),
        str(row["type"]),
        row["tech_info"],
        bool(row["critical"]),
        row["delivery"],
        row["sent_at"],
    )


class SecurityLog:
    def __init__(self, db: Database, *, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < ENTRY_OVERHEAD:
            raise ValueError("the security log needs room for at least one entry")
        self.db = db
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._count, self._bytes = self._measure()

    def _measure(self) -> tuple[int, int]:
        row = self.db.query_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM security_log"
        )
        return (int(row["n"]), int(row["b"])) if row else (0, 0)

    def resync(self) -> None:
        """Count again (after a transaction around an append was rolled back)."""
        self._count, self._bytes = self._measure()

    @property
    def count(self) -> int:
        return self._count

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def rolled(self) -> int:
        """Entries pushed out by the bounds since the log began."""
        return self.db.counter(_ROLLED)

    def append(
        self, occurred_at: str, event_type: str, tech_info: str | None, critical: bool
    ) -> int:
        """Store one entry (the oldest go first when the bounds are reached); its id."""
        size = entry_size(occurred_at, event_type, tech_info)
        with self.db.transaction():
            self._make_room(min(size, self.max_bytes))
            cursor = self.db.execute(
                "INSERT INTO security_log (occurred_at, type, tech_info, critical, size) "
                "VALUES (?, ?, ?, ?, ?)",
                (occurred_at, event_type, tech_info, int(critical), size),
            )
        self._count += 1
        self._bytes += size
        entry_id = cursor.lastrowid
        assert entry_id is not None
        return entry_id

    def _make_room(self, incoming: int) -> None:
        excess = max(0, self._count + 1 - self.max_entries)
        to_free = max(0, self._bytes + incoming - self.max_bytes)
        if not excess and not to_free:
            return
        last_id, removed, freed = 0, 0, 0
        while removed < excess or freed < to_free:
            rows = self.db.query(
                "SELECT id, size FROM security_log WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, max(excess - removed, 0) + 32),
            )
            if not rows:
                break
            for row in rows:
                if removed >= excess and freed >= to_free:
                    break
                last_id, removed, freed = int(row["id"]), removed + 1, freed + int(row["size"])
        if not removed:
            return
        self.db.execute("DELETE FROM security_log WHERE id <= ?", (last_id,))
        self.db.count_up(_ROLLED, removed)
        self._count -= removed
        self._bytes -= freed

    def queued(self, entry_id: int, seq: int) -> None:
        """The entry's SecurityEventNotification waits in the outbox as message ``seq``."""
        self.db.execute(
            "UPDATE security_log SET outbox_seq = ?, delivery = 'queued' WHERE id = ?",
            (seq, entry_id),
        )

    def settled(self, seq: int, delivered: bool, at: str) -> None:
        """Outbox message ``seq`` was acknowledged (``delivered``) or given up."""
        self.db.execute(
            "UPDATE security_log SET outbox_seq = NULL, delivery = ?, sent_at = ? "
            "WHERE outbox_seq = ?",
            ("sent" if delivered else "dropped", at if delivered else None, seq),
        )

    def unqueued_critical(self) -> list[LogEntry]:
        """Critical entries stored before there was an outbox to queue them in."""
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM security_log "
            "WHERE critical = 1 AND delivery IS NULL ORDER BY id"
        )
        return [_entry(row) for row in rows]

    def entries(
        self, oldest: str | None = None, latest: str | None = None, *, chunk: int = 500
    ) -> Iterator[list[LogEntry]]:
        """Entries with ``oldest`` <= time <= ``latest`` (either may be None), oldest
        first, ``chunk`` at a time: a large log is never held in memory at once."""
        after = 0
        while True:
            rows = self.db.query(
                f"SELECT {_COLUMNS} FROM security_log WHERE id > ? "
                "AND (? IS NULL OR occurred_at >= ?) AND (? IS NULL OR occurred_at <= ?) "
                "ORDER BY id LIMIT ?",
                (after, oldest, oldest, latest, latest, chunk),
            )
            if not rows:
                return
            batch = [_entry(row) for row in rows]
            after = batch[-1].id
            yield batch


def csv_text(entries: list[LogEntry], *, header: bool) -> str:
    """RFC 4180 CSV lines (CRLF) for ``entries``, with the header line first if asked."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_HEADER)
    writer.writerows(entry.csv_row() for entry in entries)
    return out.getvalue()
