"""Active reservations, persisted in the state database."""

from __future__ import annotations

from datetime import datetime

from firmware.clock import iso, parse_iso
from firmware.reservations.rules import Reservation
from firmware.storage.db import Database


class ReservationStore:
    """Every write goes to SQLite at once (inside the caller's transaction, if any)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._by_id: dict[int, Reservation] = {
            int(row["reservation_id"]): Reservation(
                reservation_id=int(row["reservation_id"]),
                connector_id=int(row["connector_id"]),
                id_tag=str(row["id_tag"]),
                expiry=parse_iso(str(row["expiry_date"])),
                parent_id_tag=row["parent_id_tag"],
            )
            for row in db.query(
                "SELECT reservation_id, connector_id, id_tag, parent_id_tag, expiry_date "
                "FROM reservations"
            )
        }

    def all(self) -> list[Reservation]:
        return sorted(self._by_id.values(), key=lambda r: r.reservation_id)

    def get(self, reservation_id: int) -> Reservation | None:
        return self._by_id.get(reservation_id)

    def put(self, reservation: Reservation) -> None:
        """Add ``reservation``, replacing one with the same id."""
        self.db.execute(
            "INSERT INTO reservations "
            "(reservation_id, connector_id, id_tag, parent_id_tag, expiry_date) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (reservation_id) DO UPDATE SET "
            "connector_id = excluded.connector_id, id_tag = excluded.id_tag, "
            "parent_id_tag = excluded.parent_id_tag, expiry_date = excluded.expiry_date",
            (
                reservation.reservation_id,
                reservation.connector_id,
                reservation.id_tag,
                reservation.parent_id_tag,
                iso(reservation.expiry),
            ),
        )
        self._by_id[reservation.reservation_id] = reservation

    def remove(self, reservation_id: int) -> Reservation | None:
        gone = self._by_id.pop(reservation_id, None)
        if gone is not None:
            self.db.execute("DELETE FROM reservations WHERE reservation_id = ?", (reservation_id,))
        return gone

    def expired(self, now: datetime) -> list[Reservation]:
        return [r for r in self.all() if r.expired(now)]

    def next_expiry(self) -> datetime | None:
        return min((r.expiry for r in self._by_id.values()), default=None)
