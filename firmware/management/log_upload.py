"""GetLog (OCPP 1.6 Security Whitepaper): upload the security log or the diagnostics log.

- ``SecurityLog``: the security log as a CSV file (RFC 4180, UTF-8, CRLF), one
  header line ``id,timestamp,type,critical,techInfo,delivery,sentAt`` and one
  line per entry with ``oldestTimestamp`` <= timestamp <= ``latestTimestamp``,
  oldest first; named ``securitylog-<chargeBoxId>-<UTC time>.csv``.
- ``DiagnosticsLog``: the archive GetDiagnostics makes
  (``firmware.transfer.diagnostics``: the log lines of the window and the
  state summary, idTags masked unless ``diagnostics.include_id_tags``).

The file goes where GetDiagnostics sends its archive (``target_url``, over
http(s) or ftp(s), ``diagnostics.upload_method``), with ``retries`` more
attempts ``retryInterval`` apart (the diagnostics defaults when absent).
LogStatusNotification carries the GetLog's requestId: Uploading, then
Uploaded, or PermissionDenied (credentials refused, the server would not
store the file), NotSupportedOperation (the server does not take this kind of
upload), BadMessage (it found the request malformed) or UploadFailure
(anything else, after the retries).

One upload at a time: a new GetLog cancels the running one (answered
AcceptedCanceled; the cancelled upload reports UploadFailure with its own
requestId). A GetLog naming an unusable location is Rejected and leaves a
running upload alone. Not persisted: a restart ends an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firmware.clock import Clock, iso
from firmware.config import DiagnosticsSettings
from firmware.management.diagnostics import StateSummary, target_url
from firmware.management.reporter import Reporter
from firmware.security.security_log import SecurityLog, csv_text
from firmware.transfer import (
    AuthenticationFailed,
    TransferError,
    build_archive_async,
    redact_url,
    rotated_logs,
    upload,
)
from firmware.transfer.diagnostics import archive_name
from firmware.transfer.urls import parse

log = logging.getLogger("firmware.management.logs")

SECURITY_LOG = "SecurityLog"
DIAGNOSTICS_LOG = "DiagnosticsLog"

Job = Callable[[], Coroutine[Any, Any, None]]


def security_log_name(charge_box_id: str, now: datetime) -> str:
    stem = archive_name(charge_box_id, now).removesuffix(".tar.gz")  # the same id and stamp
    return "securitylog-" + stem.removeprefix("diagnostics-") + ".csv"


def failure_status(err: BaseException, scheme: str) -> str:
    """The UploadLogStatus for an upload that failed with ``err``."""
    if isinstance(err, AuthenticationFailed):
        return "PermissionDenied"
    status = getattr(err, "status", None)
    if scheme.startswith("ftp"):
        if status in (502, 504):  # command not implemented (for that parameter)
            return "NotSupportedOperation"
        if status in (500, 501):  # syntax error
            return "BadMessage"
        if status in (550, 553):  # the server refused to store the file
            return "PermissionDenied"
    else:
        if status in (405, 501):
            return "NotSupportedOperation"
        if status == 400:
            return "BadMessage"
    return "UploadFailure"


@dataclass(eq=False)
class _Upload:
    request_id: int
    log_type: str
    name: str
    url: str
    retries: int
    interval: int
    oldest: datetime | None
    latest: datetime | None
    now: datetime
    cancelled: bool = False
    task: asyncio.Task[Any] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class LogUploads:
    def __init__(
        self,
        settings: DiagnosticsSettings,
        charge_box_id: str,
        work_dir: Path,
        security_log: SecurityLog,
        state: StateSummary,
        reporter: Reporter,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.charge_box_id = charge_box_id
        self.work_dir = work_dir
        self.security_log = security_log
        self.state = state
        self.reporter = reporter
        self.clock = clock
        self._current: _Upload | None = None

    def current_status(self) -> dict[str, Any]:
        """The LogStatusNotification a trigger asks for: the running upload, else Idle."""
        upload_ = self._current
        if upload_ is None:
            return {"status": "Idle"}
        return {"status": "Uploading", "requestId": upload_.request_id}

    def request(
        self,
        log_type: str,
        request_id: int,
        location: str,
        retries: int | None,
        interval: int | None,
        oldest: datetime | None,
        latest: datetime | None,
    ) -> tuple[str, str | None, Job | None]:
        """(GetLog status, fileName, the upload to run once the answer is sent)."""
        now = self.clock.now()
        if log_type == SECURITY_LOG:
            name = security_log_name(self.charge_box_id, now)
        else:
            name = archive_name(self.charge_box_id, now)
        try:
            url = target_url(location, name, self.settings.upload_method)
            parse(url)
        except (TransferError, ValueError, TypeError) as err:
            where = redact_url(location)
            log.warning("GetLog %d: location %s unusable: %s", request_id, where, err)
            return "Rejected", None, None
        new = _Upload(
            request_id,
            log_type,
            name,
            url,
            self.settings.default_retries if retries is None else retries,
            self.settings.default_retry_interval_s if interval is None else interval,
            oldest,
            latest,
            now,
        )
        previous, self._current = self._current, new
        status = "Accepted"
        if previous is not None:
            previous.cancelled = True
            status = "AcceptedCanceled"
            log.warning(
                "GetLog %d cancels the upload of GetLog %d", request_id, previous.request_id
            )
        log.info("GetLog %d: %s to %s as %s", request_id, log_type, redact_url(url), name)

        async def job() -> None:
            if previous is not None:
                await self._cancel(previous)
            await self._run(new)

        return status, name, job

    async def _cancel(self, previous: _Upload) -> None:
        if previous.task is not None and not previous.task.done():
            previous.task.cancel()
        if previous.task is not None:
            await previous.done.wait()

    async def _run(self, job: _Upload) -> None:
        job.task = asyncio.current_task()
        try:
            if job.cancelled:
                self.reporter.report("UploadFailure", job.request_id)
                return
            await self._upload(job)
        except asyncio.CancelledError:
            if job.cancelled:  # by a newer GetLog: say so; a shutdown says nothing
                self.reporter.report("UploadFailure", job.request_id)
            raise
        finally:
            job.done.set()
            if self._current is job:
                self._current = None

    async def _upload(self, job: _Upload) -> None:
        self.reporter.report("Uploading", job.request_id)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        out_dir = Path(tempfile.mkdtemp(prefix="getlog-", dir=self.work_dir))
        scheme = parse(job.url).scheme
        try:
            if job.log_type == SECURITY_LOG:
                path = await self._write_security_log(job, out_dir)
            else:
                path = await self._write_diagnostics(job, out_dir)
            await upload(
                job.url,
                path,
                method="PUT" if self.settings.upload_method == "PUT" else "POST",
                retries=job.retries,
                retry_interval_s=job.interval,
                timeout_s=self.settings.transfer_timeout_s,
                stall_timeout_s=self.settings.stall_timeout_s,
            )
        except (TransferError, OSError) as err:
            status = failure_status(err, scheme)
            log.error(
                "GetLog %d: upload to %s failed (%s): %s",
                job.request_id,
                redact_url(job.url),
                status,
                err,
            )
            self.reporter.report(status, job.request_id)
            return
        except Exception:
            log.exception("GetLog %d: upload to %s failed", job.request_id, redact_url(job.url))
            self.reporter.report("UploadFailure", job.request_id)
            return
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        log.info("GetLog %d: %s uploaded to %s", job.request_id, job.name, redact_url(job.url))
        self.reporter.report("Uploaded", job.request_id)

    async def _write_security_log(self, job: _Upload, out_dir: Path) -> Path:
        path = out_dir / job.name
        oldest = iso(job.oldest) if job.oldest else None
        latest = iso(job.latest) if job.latest else None
        with path.open("w", encoding="utf-8", newline="") as out:
            await asyncio.to_thread(out.write, csv_text([], header=True))
            for chunk in self.security_log.entries(oldest, latest):
                await asyncio.to_thread(out.write, csv_text(chunk, header=False))
        return path

    async def _write_diagnostics(self, job: _Upload, out_dir: Path) -> Path:
        logs = await asyncio.to_thread(_log_files, self.settings.log_file)
        return await build_archive_async(
            self.charge_box_id,
            logs,
            self.state(),
            start=job.oldest,
            stop=job.latest,
            out_dir=out_dir,
            now=job.now.astimezone(UTC),
            id_tags=self.settings.include_id_tags,
        )


def _log_files(log_file: Path | None) -> list[Path]:
    if log_file is None:
        return []
    with contextlib.suppress(OSError):
        return rotated_logs(log_file.parent, log_file.name)
    return []
