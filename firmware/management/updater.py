"""UpdateFirmware: download at retrieveDate, install when no session runs, restart.

FirmwareStatusNotification follows the job: Downloading → Downloaded →
Installing → (restart) → Installed once the BootNotification after the
restart is Accepted; DownloadFailed when every attempt failed or the location
is unusable; InstallationFailed when the installer failed or the station died
while it ran. Once downloaded, connectors take no new session (idle ones
report Unavailable) and installing waits until every running transaction has
ended; a failed installation gives them back.

A new UpdateFirmware replaces a job that has not started installing (its
download is cancelled); one that arrives while installing is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from yarl import URL

from firmware.clock import Clock, iso
from firmware.config import FirmwareUpdateSettings
from firmware.management.installers import Installer, InstallFailed
from firmware.management.jobs import (
    DOWNLOADED,
    DOWNLOADING,
    FINISHED,
    INSTALLING,
    REBOOTING,
    SCHEDULED,
    FirmwareJob,
    FirmwareJobStore,
)
from firmware.management.reporter import StatusReporter, TransferView
from firmware.transfer import TransferError, download, redact_url
from firmware.transfer.urls import parse

log = logging.getLogger("firmware.management.update")

TIMER_STEP_S = 30.0  # the clock may be corrected by the CSMS while waiting
SESSION_POLL_S = 0.5
FLUSH_BEFORE_RESTART_S = 5.0
PROGRESS_EVERY_S = 0.5  # the API's view; the log gets a line per tenth or per 10 s
DEFAULT_NAME = "firmware.bin"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")

Sleep = Callable[[float], Awaitable[None]]


class Sessions(Protocol):
    """The station as a firmware update sees it."""

    def running(self) -> int:
        """Transactions running now."""

    async def hold(self, held: bool) -> None:
        """Refuse (True) or accept again (False) new sessions."""


def file_name(location: str) -> str:
    """The downloaded file's name: the location's last path segment, made safe."""
    try:
        name = URL(location).name
    except (ValueError, TypeError):
        name = ""
    name = _UNSAFE.sub("_", name).lstrip(".")
    return name or DEFAULT_NAME


class FirmwareUpdater:
    def __init__(
        self,
        store: FirmwareJobStore,
        settings: FirmwareUpdateSettings,
        download_dir: Path,
        installer: Installer,
        sessions: Sessions,
        reporter: StatusReporter,
        clock: Clock,
        *,
        restart: Callable[[], None],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.download_dir = download_dir
        self.installer = installer
        self.sessions = sessions
        self.reporter = reporter
        self.clock = clock
        self._restart = restart
        self._sleep = sleep
        self.view = TransferView()
        self._held = False
        self._wake = asyncio.Event()
        self._replaced = asyncio.Event()
        self._progress_logged = (0.0, -1)
        reporter.on_delivered = self._delivered

    # ------------------------------------------------------------ queries

    def current_status(self) -> str:
        """The FirmwareStatus a triggered FirmwareStatusNotification reports."""
        job = self.store.get()
        if job is None or job.state == SCHEDULED:
            return "Idle"
        if job.state == FINISHED:
            return job.result or "Idle"
        if job.state == REBOOTING:
            return "Installing"
        return job.state

    def snapshot(self) -> dict[str, Any]:
        job = self.store.get()
        data = self.view.snapshot()
        data["retrieve_date"] = iso(job.retrieve_at) if job is not None else None
        return data

    # ------------------------------------------------------------ requests

    def request(
        self, location: str, retrieve_at: datetime, retries: int | None, interval: int | None
    ) -> bool:
        """A new UpdateFirmware; False when it is ignored (an installation runs)."""
        current = self.store.get()
        if current is not None and current.state in (INSTALLING, REBOOTING):
            log.warning("UpdateFirmware ignored: an installation is under way")
            return False
        if current is not None and current.state != FINISHED:
            log.warning("UpdateFirmware replaces the update of %s", redact_url(current.location))
        job = FirmwareJob(
            location=location,
            retrieve_at=retrieve_at,
            retries=self.settings.default_retries if retries is None else retries,
            retry_interval_s=(
                self.settings.default_retry_interval_s if interval is None else interval
            ),
            file=self.download_dir / file_name(location),
        )
        self.store.put(job)
        self.view = TransferView("Scheduled", redact_url(location))
        log.info(
            "firmware update from %s scheduled for %s (retries %d, interval %d s)",
            redact_url(location),
            iso(retrieve_at),
            job.retries,
            job.retry_interval_s,
        )
        self._replaced.set()
        self._wake.set()
        return True

    # ------------------------------------------------------------ the job

    async def run(self) -> None:
        await self._recover()
        while True:
            job = self.store.get()
            if job is None or job.state in (FINISHED, REBOOTING):
                self._wake.clear()
                await self._wake.wait()
                continue
            self._replaced.clear()
            async with asyncio.TaskGroup() as tg:
                work = tg.create_task(self._execute(job))
                replaced = tg.create_task(self._replaced.wait())
                await asyncio.wait({work, replaced}, return_when=asyncio.FIRST_COMPLETED)
                work.cancel()
                replaced.cancel()
            if self._replaced.is_set():
                await self._replaced_cleanup(job)

    async def _recover(self) -> None:
        job = self.store.get()
        if job is None:
            return
        self.view = TransferView(job.state, redact_url(job.location))
        if job.state == INSTALLING:
            log.error("the station stopped while installing firmware: InstallationFailed")
            await self._finish(job, "InstallationFailed")
        elif job.state == REBOOTING:
            log.warning("firmware from %s installed; running it now", redact_url(job.location))
            await self._finish(job, "Installed")
        elif job.state == FINISHED and job.result is not None:
            self.view.status = job.result
            self.reporter.report(job.result)
        elif job.state in (DOWNLOADING, DOWNLOADED):
            log.warning("resuming the firmware update interrupted while %s", job.state)

    async def _execute(self, job: FirmwareJob) -> None:
        try:
            if job.state == SCHEDULED:
                await self._wait_until(job.retrieve_at)
                job = self.store.advance(job, DOWNLOADING)
            if job.state == DOWNLOADING:
                downloaded = await self._download(job)
                if downloaded is None:
                    return
                job = downloaded
            if job.state == DOWNLOADED:
                await self._install(job)
        except Exception:
            log.exception("firmware update failed")
            failed = "DownloadFailed" if job.state in (SCHEDULED, DOWNLOADING) else None
            await self._finish(job, failed or "InstallationFailed")

    async def _wait_until(self, moment: datetime) -> None:
        self.view.status = "Scheduled"
        while True:
            left = (moment - self.clock.now()).total_seconds()
            if left <= 0:
                return
            await self._sleep(min(left, TIMER_STEP_S))

    async def _download(self, job: FirmwareJob) -> FirmwareJob | None:
        try:
            safe = parse(job.location).safe
        except TransferError as err:
            log.error("firmware location unusable: %s", err)
            await self._finish(job, "DownloadFailed")
            return None
        self.view = TransferView("Downloading", safe)
        self._progress_logged = (0.0, -1)
        self.reporter.report("Downloading")
        try:
            await download(
                job.location,
                job.file,
                retries=job.retries,
                retry_interval_s=job.retry_interval_s,
                progress=self._progress,
                timeout_s=self.settings.transfer_timeout_s,
                stall_timeout_s=self.settings.stall_timeout_s,
                progress_every_bytes=0,
                progress_every_s=PROGRESS_EVERY_S,
            )
        except TransferError as err:
            log.error("firmware download from %s failed: %s", safe, err)
            await self._finish(job, "DownloadFailed")
            return None
        job = self.store.advance(job, DOWNLOADED)
        self.view.status = "Downloaded"
        self.reporter.report("Downloaded")
        return job

    def _progress(self, done: int, total: int | None) -> None:
        self.view.progress(done, total)
        step = done * 10 // total if total else -1
        last_at, last_step = self._progress_logged
        now = time.monotonic()
        if step != last_step or now - last_at >= 10 or done == total:
            self._progress_logged = (now, step)
            shown = f"{done} of {total} bytes" if total else f"{done} bytes"
            log.info("firmware download: %s", shown)

    async def _install(self, job: FirmwareJob) -> None:
        await self._hold(True)
        running = self.sessions.running()
        if running:
            log.info("firmware downloaded; installing once %d transaction(s) ended", running)
            while self.sessions.running():
                await self._sleep(SESSION_POLL_S)
        job = self.store.advance(job, INSTALLING)
        self.view.status = "Installing"
        self.reporter.report("Installing")
        log.warning("installing %s with the %s installer", job.file.name, self.installer.name)
        try:
            await self.installer.install(job.file)
        except InstallFailed as err:
            log.error("firmware installation failed: %s", err)
            await self._finish(job, "InstallationFailed")
            return
        self.store.advance(job, REBOOTING)
        _remove(job.file)
        log.warning("firmware installed; restarting to run it")
        await self.reporter.flush(FLUSH_BEFORE_RESTART_S)
        self._restart()

    async def _finish(self, job: FirmwareJob, result: str) -> None:
        self.store.advance(job, FINISHED, result)
        self.view.status = result
        self.reporter.report(result)
        for path in _files_of(job.file):
            _remove(path)
        await self._hold(False)

    async def _hold(self, held: bool) -> None:
        if held != self._held:
            self._held = held
            await self.sessions.hold(held)

    async def _replaced_cleanup(self, old: FirmwareJob) -> None:
        await self._hold(False)
        new = self.store.get()
        if new is None or new.file != old.file:
            for path in _files_of(old.file):
                _remove(path)

    def _delivered(self, status: str) -> None:
        job = self.store.get()
        if job is not None and job.state == FINISHED and job.result == status:
            self.store.delete()


def _files_of(file: Path) -> list[Path]:
    return [file, file.with_name(file.name + ".part"), file.with_name(file.name + ".part.json")]


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
