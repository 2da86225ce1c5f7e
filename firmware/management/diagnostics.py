"""GetDiagnostics: build the archive, upload it, report Uploading → Uploaded / UploadFailed.

The location is a directory: over FTP, and over HTTP(S) with PUT, the file is
sent to ``<location>/<fileName>``; an HTTP POST goes to the location itself
with the file as the ``file`` field of a multipart form
(``diagnostics.upload_method``). The archive (firmware.transfer.diagnostics)
holds the log lines in [startTime, stopTime] of ``diagnostics.log_file`` and
its rotations, and a state summary, idTags masked unless
``diagnostics.include_id_tags``. One upload at a time: a GetDiagnostics
that comes while one runs, or names an unusable location, gets no fileName
(nothing will be uploaded for it). Not persisted: a restart ends an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from yarl import URL

from firmware.clock import Clock
from firmware.config import DiagnosticsSettings
from firmware.management.reporter import Reporter, TransferView
from firmware.transfer import (
    TransferError,
    build_archive_async,
    redact_url,
    rotated_logs,
    upload,
)
from firmware.transfer.diagnostics import archive_name
from firmware.transfer.urls import parse

log = logging.getLogger("firmware.management.diagnostics")

StateSummary = Callable[[], Mapping[str, Any]]


def target_url(location: str, name: str, method: str) -> str:
    """Where the file goes: the directory ``location`` itself for an HTTP POST,
    else ``location`` with ``name`` appended to its path (query kept)."""
    url = URL(location)
    if method == "POST" and url.scheme.lower() in ("http", "https"):
        return location
    path = url.raw_path if url.raw_path.endswith("/") else url.raw_path + "/"
    joined = url.with_path(path + name, encoded=True)
    if url.raw_query_string:
        joined = joined.with_query(url.raw_query_string)
    return str(joined)


class DiagnosticsUploader:
    def __init__(
        self,
        settings: DiagnosticsSettings,
        charge_box_id: str,
        work_dir: Path,
        state: StateSummary,
        reporter: Reporter,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.charge_box_id = charge_box_id
        self.work_dir = work_dir
        self.state = state
        self.reporter = reporter
        self.clock = clock
        self.view = TransferView()
        self._busy = False

    def current_status(self) -> str:
        """The DiagnosticsStatus a triggered DiagnosticsStatusNotification reports."""
        return "Uploading" if self._busy else "Idle"

    def snapshot(self) -> dict[str, Any]:
        return self.view.snapshot()

    def request(
        self,
        location: str,
        retries: int | None,
        interval: int | None,
        start: datetime | None,
        stop: datetime | None,
    ) -> tuple[str, Callable[[], Coroutine[Any, Any, None]]] | None:
        """(fileName, the upload to run once the answer is sent), or None."""
        if self._busy:
            log.warning("GetDiagnostics while an upload runs: nothing more will be uploaded")
            return None
        now = self.clock.now()
        name = archive_name(self.charge_box_id, now)
        try:
            url = target_url(location, name, self.settings.upload_method)
            parse(url)
        except (TransferError, ValueError, TypeError) as err:
            log.warning("GetDiagnostics location %s unusable: %s", redact_url(location), err)
            return None
        self._busy = True
        self.view = TransferView("Uploading", redact_url(url))

        async def job() -> None:
            try:
                await self._upload(
                    url,
                    now,
                    self.settings.default_retries if retries is None else retries,
                    self.settings.default_retry_interval_s if interval is None else interval,
                    start,
                    stop,
                )
            finally:
                self._busy = False

        return name, job

    async def _upload(
        self,
        url: str,
        now: datetime,
        retries: int,
        interval: int,
        start: datetime | None,
        stop: datetime | None,
    ) -> None:
        self.reporter.report("Uploading")
        log_file = self.settings.log_file
        self.work_dir.mkdir(parents=True, exist_ok=True)
        out_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=self.work_dir))
        try:
            logs = await asyncio.to_thread(_log_files, log_file)
            archive = await build_archive_async(
                self.charge_box_id,
                logs,
                self.state(),
                start=start,
                stop=stop,
                out_dir=out_dir,
                now=now,
                id_tags=self.settings.include_id_tags,
            )
            self.view.total = archive.stat().st_size
            await upload(
                url,
                archive,
                method="PUT" if self.settings.upload_method == "PUT" else "POST",
                retries=retries,
                retry_interval_s=interval,
                progress=self._progress,
                timeout_s=self.settings.transfer_timeout_s,
                stall_timeout_s=self.settings.stall_timeout_s,
                progress_every_bytes=0,
                progress_every_s=1.0,
            )
        except (TransferError, OSError) as err:
            log.error("diagnostics upload to %s failed: %s", redact_url(url), err)
            self._failed()
            return
        except Exception:
            log.exception("diagnostics upload to %s failed", redact_url(url))
            self._failed()
            return
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        log.info("diagnostics uploaded to %s", redact_url(url))
        self.view.status = "Uploaded"
        self.reporter.report("Uploaded")

    def _failed(self) -> None:
        self.view.status = "UploadFailed"
        self.reporter.report("UploadFailed")

    def _progress(self, done: int, total: int | None) -> None:
        self.view.progress(done, total)
        log.info("diagnostics upload: %d of %s bytes", done, total if total else "?")


def _log_files(log_file: Path | None) -> list[Path]:
    if log_file is None:
        return []
    with contextlib.suppress(OSError):
        return rotated_logs(log_file.parent, log_file.name)
    return []
