"""The persisted UpdateFirmware job (migration 0006): at most one at a time.

States, in order: Scheduled (waiting for retrieveDate), Downloading,
Downloaded (waiting for sessions to end), Installing, Rebooting (installed,
restart under way), then Finished with ``result`` the final FirmwareStatus
until the CSMS has it. Every change is a durable commit: it must survive the
power cut it exists for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from firmware.clock import iso, parse_iso
from firmware.storage.db import Database

SCHEDULED = "Scheduled"
DOWNLOADING = "Downloading"
DOWNLOADED = "Downloaded"
INSTALLING = "Installing"
REBOOTING = "Rebooting"
FINISHED = "Finished"
STATES = (SCHEDULED, DOWNLOADING, DOWNLOADED, INSTALLING, REBOOTING, FINISHED)


@dataclass(frozen=True, slots=True)
class FirmwareJob:
    location: str
    retrieve_at: datetime
    retries: int
    retry_interval_s: int
    file: Path
    state: str = SCHEDULED
    result: str | None = None  # the final FirmwareStatus, once Finished


class FirmwareJobStore:
    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self.db = db
        self._now = now

    def get(self) -> FirmwareJob | None:
        row = self.db.query_one("SELECT * FROM firmware_update WHERE id = 1")
        return None if row is None else _job(row)

    def put(self, job: FirmwareJob) -> FirmwareJob:
        """Store ``job`` in place of any other."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO firmware_update (id, location, retrieve_at, retries,"
                " retry_interval_s, file, state, result, updated_at)"
                " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET location = excluded.location,"
                " retrieve_at = excluded.retrieve_at, retries = excluded.retries,"
                " retry_interval_s = excluded.retry_interval_s, file = excluded.file,"
                " state = excluded.state, result = excluded.result,"
                " updated_at = excluded.updated_at",
                (
                    job.location,
                    iso(job.retrieve_at),
                    job.retries,
                    job.retry_interval_s,
                    str(job.file),
                    job.state,
                    job.result,
                    iso(self._now()),
                ),
            )
        return job

    def advance(self, job: FirmwareJob, state: str, result: str | None = None) -> FirmwareJob:
        return self.put(replace(job, state=state, result=result))

    def delete(self) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM firmware_update WHERE id = 1")


def _job(row: sqlite3.Row) -> FirmwareJob:
    return FirmwareJob(
        location=str(row["location"]),
        retrieve_at=parse_iso(str(row["retrieve_at"])),
        retries=int(row["retries"]),
        retry_interval_s=int(row["retry_interval_s"]),
        file=Path(str(row["file"])),
        state=str(row["state"]),
        result=None if row["result"] is None else str(row["result"]),
    )
