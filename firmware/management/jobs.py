"""The persisted firmware job (migrations 0006, 0007): at most one at a time.

States, in order: Scheduled (waiting for retrieveDate), Downloading,
Downloaded (verified and installed once installDateTime has come and sessions
have ended), Installing, Rebooting (installed, restart under way), then
Finished with ``result`` the final status until the CSMS has it. Every change
is a durable commit: it must survive the power cut it exists for.

``kind`` is ``plain`` for UpdateFirmware and ``signed`` for SignedUpdateFirmware
(with its requestId, installDateTime, signing certificate and signature).
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
PLAIN = "plain"
SIGNED = "signed"


@dataclass(frozen=True, slots=True)
class FirmwareJob:
    location: str
    retrieve_at: datetime
    retries: int
    retry_interval_s: int
    file: Path
    state: str = SCHEDULED
    result: str | None = None  # the final FirmwareStatus, once Finished
    kind: str = PLAIN
    request_id: int | None = None
    install_at: datetime | None = None
    signing_certificate: str | None = None
    signature: str | None = None

    @property
    def signed(self) -> bool:
        return self.kind == SIGNED


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
                " retry_interval_s, file, state, result, updated_at, kind, request_id,"
                " install_at, signing_certificate, signature)"
                " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET location = excluded.location,"
                " retrieve_at = excluded.retrieve_at, retries = excluded.retries,"
                " retry_interval_s = excluded.retry_interval_s, file = excluded.file,"
                " state = excluded.state, result = excluded.result,"
                " updated_at = excluded.updated_at, kind = excluded.kind,"
                " request_id = excluded.request_id, install_at = excluded.install_at,"
                " signing_certificate = excluded.signing_certificate,"
                " signature = excluded.signature",
                (
                    job.location,
                    iso(job.retrieve_at),
                    job.retries,
                    job.retry_interval_s,
                    str(job.file),
                    job.state,
                    job.result,
                    iso(self._now()),
                    job.kind,
                    job.request_id,
                    None if job.install_at is None else iso(job.install_at),
                    job.signing_certificate,
                    job.signature,
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
        kind=str(row["kind"]),
        request_id=None if row["request_id"] is None else int(row["request_id"]),
        install_at=None if row["install_at"] is None else parse_iso(str(row["install_at"])),
        signing_certificate=_text(row["signing_certificate"]),
        signature=_text(row["signature"]),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
