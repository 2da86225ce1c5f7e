"""The Local Authorization List: idTagInfo the CSMS sets with SendLocalList, in SQLite.

Rules (OCPP 1.6 SendLocalList / GetLocalListVersion):

- Full replaces the whole list (no entries: the list is emptied); every entry
  of a Full update needs an idTagInfo.
- Differential adds or replaces the entries that carry an idTagInfo and
  removes those that do not; its listVersion must be above the current one,
  otherwise VersionMismatch.
- An update that fails (duplicate idTags, too many entries for one request or
  for the list, a listVersion the rules below refuse, a storage error) changes
  nothing: it is one durable SQLite transaction.
- The version of an empty list is 0 (GetLocalListVersion: 0 means empty), so:
  a Full update that leaves the list empty is Accepted at any listVersion of
  0 or more and the version becomes 0 (Full, version 0, no entries is how
  other stacks clear the list); a Full update with entries needs listVersion 1
  or more (Failed otherwise: version 0 would claim the list is empty); a
  Differential update needs a listVersion above the current one, which is
  never 0 or below (VersionMismatch); a negative listVersion in a Full update
  is Failed.

Entries are kept as sent; ``IdTagInfo.effective`` turns an Accepted entry past
its expiryDate into Expired when it is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from firmware.auth.cache import IdTagInfo
from firmware.clock import iso, parse_iso
from firmware.errors import StorageError
from firmware.storage.db import Database
from hal.tokens import Tag

log = logging.getLogger("firmware.auth.local_list")


class UpdateStatus(StrEnum):
    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_SUPPORTED = "NotSupported"
    VERSION_MISMATCH = "VersionMismatch"


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One localAuthorizationList item; ``info`` None removes the id (Differential)."""

    id_tag: str
    info: IdTagInfo | None = None

    @classmethod
    def from_payload(cls, item: dict[str, Any]) -> ListEntry:
        info = item.get("idTagInfo")
        return cls(str(item["idTag"]), IdTagInfo.from_payload(info) if info is not None else None)


class _Refused(Exception):
    """Raised inside the update transaction to roll it back."""


class LocalAuthList:
    """The list, its version and the limits the configuration sets on it."""

    def __init__(
        self,
        db: Database,
        *,
        enabled: Callable[[], bool],
        max_length: Callable[[], int],
        send_max_length: Callable[[], int],
    ) -> None:
        self.db = db
        self._enabled = enabled
        self._max_length = max_length
        self._send_max_length = send_max_length

    @property
    def enabled(self) -> bool:
        """LocalAuthListEnabled: the list is used and may be updated."""
        return self._enabled()

    @property
    def version(self) -> int:
        row = self.db.query_one("SELECT version FROM local_auth_list_version WHERE id = 1")
        return int(row["version"]) if row is not None else 0

    def get(self, id_tag: str) -> IdTagInfo | None:
        """The entry as sent by the CSMS (not adjusted for expiry), None if absent."""
        row = self.db.query_one(
            "SELECT status, expiry_date, parent_id_tag FROM local_auth_list WHERE id_tag = ?",
            (id_tag,),
        )
        if row is None:
            return None
        expiry = parse_iso(row["expiry_date"]) if row["expiry_date"] else None
        return IdTagInfo(str(row["status"]), expiry, row["parent_id_tag"])

    def __len__(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM local_auth_list")
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------ SendLocalList

    def update(self, version: int, *, full: bool, entries: Sequence[ListEntry]) -> UpdateStatus:
        """Apply one SendLocalList; the list is unchanged unless Accepted."""
        if not self.enabled:
            return UpdateStatus.NOT_SUPPORTED
        kind = "Full" if full else "Differential"
        if not full and version <= self.version:
            log.info(
                "SendLocalList %s version %d refused: the list is at version %d",
                kind,
                version,
                self.version,
            )
            return UpdateStatus.VERSION_MISMATCH
        problem = self._check(version, full, entries)
        if problem is not None:
            log.warning("SendLocalList %s version %d failed: %s", kind, version, problem)
            return UpdateStatus.FAILED
        try:
            size = self._apply(version, full, entries)
        except _Refused as err:
            log.warning("SendLocalList %s version %d failed: %s", kind, version, err)
            return UpdateStatus.FAILED
        except StorageError as err:
            log.error("SendLocalList %s version %d not stored: %s", kind, version, err)
            return UpdateStatus.FAILED
        log.info(
            "local authorization list updated (%s, version %d, %d entries)",
            kind,
            self.version,
            size,
        )
        return UpdateStatus.ACCEPTED

    def _check(self, version: int, full: bool, entries: Sequence[ListEntry]) -> str | None:
        if version < 0:
            return "listVersion must not be negative"
        if version == 0 and full and entries:
            return "listVersion 0 is the version of an empty list; a list needs 1 or more"
        limit = self._send_max_length()
        if len(entries) > limit:
            return f"{len(entries)} entries, SendLocalListMaxLength is {limit}"
        seen: set[str] = set()
        for entry in entries:
            key = entry.id_tag.casefold()
            if key in seen:
                return f"idTag {Tag(entry.id_tag)} is listed twice"
            seen.add(key)
            if full and entry.info is None:
                return f"idTag {Tag(entry.id_tag)} has no idTagInfo in a Full update"
        return None

    def _apply(self, version: int, full: bool, entries: Sequence[ListEntry]) -> int:
        with self.db.transaction():  # durable: fsync'd at commit, rolled back on any error
            if full:
                self.db.execute("DELETE FROM local_auth_list")
            for entry in entries:
                if entry.info is None:
                    self.db.execute("DELETE FROM local_auth_list WHERE id_tag = ?", (entry.id_tag,))
                    continue
                info = entry.info
                self.db.execute(
                    "INSERT INTO local_auth_list (id_tag, status, expiry_date, parent_id_tag) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (id_tag) DO UPDATE SET "
                    "id_tag = excluded.id_tag, status = excluded.status, "
                    "expiry_date = excluded.expiry_date, parent_id_tag = excluded.parent_id_tag",
                    (
                        entry.id_tag,
                        info.status,
                        iso(info.expiry_date) if info.expiry_date else None,
                        info.parent_id_tag,
                    ),
                )
            size = len(self)
            limit = self._max_length()
            if size > limit:
                raise _Refused(
                    f"the list would hold {size} entries, LocalAuthListMaxLength is {limit}"
                )
            self.db.execute(
                "INSERT INTO local_auth_list_version (id, version) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (version if size else 0,),
            )
        return size
