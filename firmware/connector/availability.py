"""Persisted availability (ChangeAvailability) per connector; 0 is the station."""

from __future__ import annotations

from firmware.storage.db import Database


class AvailabilityStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[int, bool] = {
            int(r["connector_id"]): bool(r["operative"])
            for r in db.query("SELECT connector_id, operative FROM availability")
        }

    def get(self, connector_id: int) -> bool:
        return self._cache.get(connector_id, True)

    def station_operative(self) -> bool:
        return self.get(0)

    def set(self, connector_id: int, operative: bool) -> None:
        if self._cache.get(connector_id) == operative:
            return
        self.db.execute(
            "INSERT INTO availability (connector_id, operative) VALUES (?, ?) "
            "ON CONFLICT (connector_id) DO UPDATE SET operative = excluded.operative",
            (connector_id, int(operative)),
        )
        self._cache[connector_id] = operative
