"""Authorization cache: idTagInfo learned from the CSMS, persisted in SQLite."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from firmware.clock import Clock, iso, parse_iso
from firmware.storage.db import Database


@dataclass(frozen=True, slots=True)
class IdTagInfo:
    """OCPP idTagInfo: status, optional expiry and parent (group) tag."""

    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None

    @classmethod
    def from_payload(cls, info: dict[str, Any]) -> IdTagInfo:
        expiry: datetime | None = None
        raw = info.get("expiryDate")
        if isinstance(raw, str):
            try:
                expiry = parse_iso(raw)
            except ValueError:
                expiry = None
        parent = info.get("parentIdTag")
        return cls(str(info["status"]), expiry, parent if isinstance(parent, str) else None)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"status": self.status}
        if self.expiry_date is not None:
            payload["expiryDate"] = iso(self.expiry_date)
        if self.parent_id_tag is not None:
            payload["parentIdTag"] = self.parent_id_tag
        return payload

    def effective(self, now: datetime) -> IdTagInfo:
        """This info as of ``now``: an Accepted entry past its expiry is Expired."""
        if self.status == "Accepted" and self.expiry_date is not None and self.expiry_date <= now:
            return replace(self, status="Expired")
        return self

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"


def _key(id_tag: str) -> str:
    """The cache's row key: idTags match case-insensitively (CiString20).

    Upper case, so the upper-case hex UIDs cached before tags kept their case
    are still found.
    """
    return id_tag.upper()


class AuthCache:
    """The Authorization Cache (AuthorizationCacheEnabled)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def get(self, id_tag: str) -> IdTagInfo | None:
        row = self.db.query_one(
            "SELECT status, expiry_date, parent_id_tag FROM auth_cache WHERE id_tag = ?",
            (_key(id_tag),),
        )
        if row is None:
            return None
        expiry = parse_iso(row["expiry_date"]) if row["expiry_date"] else None
        info = IdTagInfo(str(row["status"]), expiry, row["parent_id_tag"])
        return info.effective(self.clock.now())

    def put(self, id_tag: str, info: IdTagInfo) -> None:
        self.db.execute(
            "INSERT INTO auth_cache (id_tag, status, expiry_date, parent_id_tag, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id_tag) DO UPDATE SET status = excluded.status, "
            "expiry_date = excluded.expiry_date, parent_id_tag = excluded.parent_id_tag, "
            "updated_at = excluded.updated_at",
            (
                _key(id_tag),
                info.status,
                iso(info.expiry_date) if info.expiry_date else None,
                info.parent_id_tag,
                iso(self.clock.now()),
            ),
        )

    def clear(self) -> None:
        self.db.execute("DELETE FROM auth_cache")

    def __len__(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM auth_cache")
        return int(row["n"]) if row else 0
