"""How the previous run of the daemon ended, and whether the security log survived it.

The ``security_state`` row (migration 0007) is marked running at every start
and stopped, with the reason, at the end of a clean shutdown. Found still
running at a start, the previous run ended some other way: a power cut, a
crash, a SIGKILL, the watchdog.

The log's identity (a random id made with the log) is also kept in a file
beside the database, ``security-log.id``. A start that finds the file but a
database without the log (deleted, replaced, restored from an older copy
made before this firmware) knows the log it had is gone: SecurityLogWasCleared.
A start with neither is a first start. The file is written to a temporary
file, synced and renamed, so a power cut leaves the old file or the new one.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from firmware.errors import StorageError
from firmware.storage.db import Database

log = logging.getLogger("firmware.security.events")

MARKER_NAME = "security-log.id"


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """What a start learned about the run before it."""

    first_start: bool  # no earlier run with a security log is known
    clean: bool  # the previous run shut down in good order (False on a first start)
    stop_reason: str | None  # how it stopped (Reboot, SoftReset, ...), when clean
    started_at: str | None  # when it had started
    log_lost_since: str | None  # the creation time of a security log that is gone


class RunRecord:
    def __init__(self, db: Database, marker: Path) -> None:
        self.db = db
        self.marker = marker

    def begin(self, now: str) -> PreviousRun:
        """Note this start (at ``now``) and tell what the previous run left behind.

        A database that cannot be read or written here (a full disk) costs the
        record, not the start: the previous run is then reported as unknown."""
        try:
            return self._begin(now)
        except StorageError as err:
            log.error("cannot note the start in the state database: %s", err)
            return PreviousRun(False, True, f"unknown: {err}", None, None)

    def _begin(self, now: str) -> PreviousRun:
        row = self.db.query_one(
            "SELECT log_id, created_at, running, started_at, stop_reason "
            "FROM security_state WHERE id = 1"
        )
        on_file = self._read_marker()
        lost_since: str | None = None
        if row is None:
            if on_file is not None:
                lost_since = on_file[1] or "an unknown time"
            log_id, created_at = uuid.uuid4().hex, now
            with self.db.transaction():
                self.db.execute(
                    "INSERT INTO security_state (id, log_id, created_at, running, started_at) "
                    "VALUES (1, ?, ?, 1, ?)",
                    (log_id, created_at, now),
                )
            previous = PreviousRun(
                first_start=lost_since is None,
                clean=False,
                stop_reason=None,
                started_at=None,
                log_lost_since=lost_since,
            )
        else:
            log_id, created_at = str(row["log_id"]), str(row["created_at"])
            previous = PreviousRun(
                first_start=False,
                clean=not row["running"],
                stop_reason=row["stop_reason"],
                started_at=row["started_at"],
                log_lost_since=None,
            )
            with self.db.transaction():
                self.db.execute(
                    "UPDATE security_state SET running = 1, started_at = ?, stop_reason = NULL "
                    "WHERE id = 1",
                    (now,),
                )
        if on_file is None or on_file[0] != log_id:
            self._write_marker(log_id, created_at)
        return previous

    def end(self, reason: str) -> None:
        """A clean shutdown: the next start will know (unless the disk is full)."""
        try:
            with self.db.transaction():
                self.db.execute(
                    "UPDATE security_state SET running = 0, stop_reason = ? WHERE id = 1",
                    (reason,),
                )
        except StorageError as err:
            log.error("cannot note the clean stop in the state database: %s", err)

    def _read_marker(self) -> tuple[str, str | None] | None:
        try:
            data = json.loads(self.marker.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            # Unreadable: something was there, so a log existed before.
            log.warning("%s unreadable (%s): a security log existed", self.marker, err)
            return ("", None)
        if not isinstance(data, dict) or not isinstance(data.get("log_id"), str):
            return ("", None)
        created = data.get("created_at")
        return str(data["log_id"]), created if isinstance(created, str) else None

    def _write_marker(self, log_id: str, created_at: str) -> None:
        text = json.dumps({"log_id": log_id, "created_at": created_at}) + "\n"
        tmp = self.marker.with_name(self.marker.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.marker)
            directory = os.open(self.marker.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as err:
            # Only the detection of a wiped log depends on it: the station runs on.
            log.error("cannot write %s: %s", self.marker, err)
