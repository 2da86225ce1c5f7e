"""UpdateFirmware and SignedUpdateFirmware: download at retrieveDate, verify, install, restart.

One job at a time, of either kind. FirmwareStatusNotification (UpdateFirmware)
follows it: Downloading → Downloaded → Installing → (restart) → Installed once
the BootNotification after the restart is Accepted; DownloadFailed when every
attempt failed or the location is unusable; InstallationFailed when the
installer failed, the station died while it ran, or the image was refused
(``firmware_update.require_signature`` and no valid detached signature).

SignedFirmwareStatusNotification (SignedUpdateFirmware, OCPP 1.6 Security
Whitepaper L01), every one with the request's requestId: DownloadScheduled
(retrieveDateTime ahead) → Downloading → Downloaded → SignatureVerified or
InvalidSignature (nothing installed) → InstallScheduled (installDateTime
ahead) → Installing → InstallRebooting → (restart) → Installed; DownloadFailed
and InstallationFailed as above. The signing certificate is checked when the
request arrives (InvalidCertificate: no job at all) and again with the file.

Once the file is verified and its install time has come, connectors take no
new session (idle ones report Unavailable) and installing waits until every
running transaction has ended; a failed installation gives them back.

A new request replaces a job that has not started installing (its download is
cancelled; SignedUpdateFirmware then answers AcceptedCanceled); one that
arrives while installing is ignored (Rejected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from yarl import URL

from firmware import __version__
from firmware.clock import Clock, iso
from firmware.config import FirmwareUpdateSettings
from firmware.management.firmware_status import FirmwareStatuses, final_result
from firmware.management.installers import Installer, InstallFailed
from firmware.management.jobs import (
    DOWNLOADED,
    DOWNLOADING,
    FINISHED,
    INSTALLING,
    REBOOTING,
    SCHEDULED,
    SIGNED,
    FirmwareJob,
    FirmwareJobStore,
)
from firmware.management.reporter import Reporter, TransferView
from firmware.management.verification import ImageVerifier, detached_path, signature_location
from firmware.security.events import TECH_INFO_MAX, SecurityEvent, SecurityEventSink
from firmware.security.firmware_signing import (
    SigningCertificateRefused,
    describe,
)
from firmware.transfer import EmptyFile, NotFound, TransferError, download, redact_url
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
        reporter: Reporter,
        clock: Clock,
        *,
        signed_reporter: Reporter,
        verifier: ImageVerifier,
        events: SecurityEventSink,
        restart: Callable[[], None],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.download_dir = download_dir
        self.installer = installer
        self.sessions = sessions
        self.statuses = FirmwareStatuses(reporter, signed_reporter, self._delivered)
        self.verifier = verifier
        self.events = events
        self.clock = clock
        self._restart = restart
        self._sleep = sleep
        self.view = TransferView()
        self._held = False
        self._wake = asyncio.Event()
        self._replaced = asyncio.Event()
        self._progress_logged = (0.0, -1)

    # ------------------------------------------------------------ queries

    def current_status(self) -> str:
        """The FirmwareStatus a triggered FirmwareStatusNotification reports (plain jobs)."""
        job = self.store.get()
        if job is None or job.signed or job.state == SCHEDULED:
            return "Idle"
        if job.state == FINISHED:
            return job.result or "Idle"
        if job.state == REBOOTING:
            return "Installing"
        return job.state

    def current_signed_status(self) -> dict[str, Any]:
        """The SignedFirmwareStatusNotification payload an ExtendedTriggerMessage sends:
        the last status reported with its requestId, Idle when none or Installed."""
        return self.statuses.signed_payload()

    def snapshot(self) -> dict[str, Any]:
        job = self.store.get()
        data = self.view.snapshot()
        data["retrieve_date"] = iso(job.retrieve_at) if job is not None else None
        data["request_id"] = job.request_id if job is not None else None
        return data

    # ------------------------------------------------------------ requests

    def request(
        self, location: str, retrieve_at: datetime, retries: int | None, interval: int | None
    ) -> bool:
        """A new UpdateFirmware; False when it is ignored (an installation runs)."""
        if self._installing("UpdateFirmware"):
            return False
        self._start(self._job(location, retrieve_at, retries, interval))
        return True

    def request_signed(
        self,
        request_id: int,
        location: str,
        retrieve_at: datetime,
        install_at: datetime | None,
        signing_certificate: str,
        signature: str,
        retries: int | None,
        interval: int | None,
    ) -> str:
        """A new SignedUpdateFirmware: the status of its answer."""
        try:
            cert = self.verifier.signing_certificate(signing_certificate)
        except SigningCertificateRefused as err:
            log.error("SignedUpdateFirmware %d refused: %s", request_id, err)
            self._event(SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE, str(err))
            return "InvalidCertificate"
        if self._installing("SignedUpdateFirmware"):
            return "Rejected"
        current = self.store.get()
        cancels = current is not None and current.state != FINISHED
        job = replace(
            self._job(location, retrieve_at, retries, interval),
            kind=SIGNED,
            request_id=request_id,
            install_at=install_at,
            signing_certificate=signing_certificate,
            signature=signature,
        )
        self._start(job)
        log.info("SignedUpdateFirmware %d: signing certificate %s", request_id, describe(cert))
        return "AcceptedCanceled" if cancels else "Accepted"

    def _installing(self, action: str) -> bool:
        current = self.store.get()
        if current is not None and current.state in (INSTALLING, REBOOTING):
            log.warning("%s ignored: an installation is under way", action)
            return True
        if current is not None and current.state != FINISHED:
            log.warning("%s replaces the update of %s", action, redact_url(current.location))
        return False

    def _job(
        self, location: str, retrieve_at: datetime, retries: int | None, interval: int | None
    ) -> FirmwareJob:
        return FirmwareJob(
            location=location,
            retrieve_at=retrieve_at,
            retries=self.settings.default_retries if retries is None else retries,
            retry_interval_s=(
                self.settings.default_retry_interval_s if interval is None else interval
            ),
            file=self.download_dir / file_name(location),
        )

    def _start(self, job: FirmwareJob) -> None:
        self.store.put(job)
        self.view = TransferView("Scheduled", redact_url(job.location))
        log.info(
            "firmware update from %s scheduled for %s (retries %d, interval %d s)",
            redact_url(job.location),
            iso(job.retrieve_at),
            job.retries,
            job.retry_interval_s,
        )
        self._replaced.set()
        self._wake.set()

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
        self.statuses.recovered(job)
        if job.state == INSTALLING:
            log.error("the station stopped while installing firmware: InstallationFailed")
            await self._finish(job, "InstallationFailed")
        elif job.state == REBOOTING:
            if await self.installer.activated():
                log.warning("firmware from %s installed; running it now", redact_url(job.location))
                self._event(
                    SecurityEvent.FIRMWARE_UPDATED,
                    f"firmware {__version__} from {redact_url(job.location)}",
                )
                await self._finish(job, "Installed")
            else:
                log.error(
                    "the firmware from %s is not running: InstallationFailed",
                    redact_url(job.location),
                )
                await self._finish(job, "InstallationFailed")
        elif job.state == FINISHED and job.result is not None:
            self.view.status = job.result
            self.statuses.resend(job, job.result)
        elif job.state in (DOWNLOADING, DOWNLOADED):
            log.warning("resuming the firmware update interrupted while %s", job.state)

    async def _execute(self, job: FirmwareJob) -> None:
        try:
            if job.state == SCHEDULED:
                if job.signed and job.retrieve_at > self.clock.now():
                    self._report(job, "DownloadScheduled")
                await self._wait_until(job.retrieve_at, "Scheduled")
                job = self.store.advance(job, DOWNLOADING)
            if job.state == DOWNLOADING:
                downloaded = await self._download(job)
                if downloaded is None:
                    return
                job = downloaded
            if job.state == DOWNLOADED and await self._verify(job):
                await self._install(job)
        except Exception:
            log.exception("firmware update failed")
            failed = "DownloadFailed" if job.state in (SCHEDULED, DOWNLOADING) else None
            await self._finish(job, failed or "InstallationFailed")

    async def _wait_until(self, moment: datetime, shown: str) -> None:
        self.view.status = shown
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
        self._report(job, "Downloading")
        try:
            await self._fetch(job.location, job.file, job)
            if self._needs_detached(job):
                await self._fetch_detached(job)
        except TransferError as err:
            log.error("firmware download from %s failed: %s", safe, err)
            await self._finish(job, "DownloadFailed")
            return None
        job = self.store.advance(job, DOWNLOADED)
        self._report(job, "Downloaded")
        return job

    async def _fetch(self, location: str, target: Path, job: FirmwareJob) -> None:
        await download(
            location,
            target,
            retries=job.retries,
            retry_interval_s=job.retry_interval_s,
            progress=self._progress if target == job.file else None,
            timeout_s=self.settings.transfer_timeout_s,
            stall_timeout_s=self.settings.stall_timeout_s,
            progress_every_bytes=0,
            progress_every_s=PROGRESS_EVERY_S,
        )

    def _needs_detached(self, job: FirmwareJob) -> bool:
        return not job.signed and self.settings.require_signature

    async def _fetch_detached(self, job: FirmwareJob) -> None:
        """The detached signature next to a plain image; none there is no failure here
        (the image is refused once downloaded), any other transfer error is."""
        location = signature_location(job.location, self.settings.signature_suffix)
        target = detached_path(job.file)
        _remove(target)
        try:
            await self._fetch(location, target, job)
        except (NotFound, EmptyFile) as err:
            log.warning("no detached signature at %s: %s", redact_url(location), err)

    def _progress(self, done: int, total: int | None) -> None:
        self.view.progress(done, total)
        step = done * 10 // total if total else -1
        last_at, last_step = self._progress_logged
        now = time.monotonic()
        if step != last_step or now - last_at >= 10 or done == total:
            self._progress_logged = (now, step)
            shown = f"{done} of {total} bytes" if total else f"{done} bytes"
            log.info("firmware download: %s", shown)

    async def _verify(self, job: FirmwareJob) -> bool:
        """Whether the downloaded file may be installed; a refusal finishes the job."""
        refusal = await self.verifier.check(
            job,
            require_signature=self.settings.require_signature,
            suffix=self.settings.signature_suffix,
        )
        if refusal is not None:
            log.error("firmware from %s refused: %s", redact_url(job.location), refusal.reason)
            self._event(refusal.event, refusal.reason)
            await self._finish(job, "InvalidSignature")
            return False
        if job.signed:
            self._report(job, "SignatureVerified")
        return True

    async def _install(self, job: FirmwareJob) -> None:
        if job.install_at is not None and job.install_at > self.clock.now():
            log.info("firmware verified; installing at %s", iso(job.install_at))
            self._report(job, "InstallScheduled")
            await self._wait_until(job.install_at, "InstallScheduled")
        await self._hold(True)
        running = self.sessions.running()
        if running:
            log.info("firmware ready; installing once %d transaction(s) ended", running)
            while self.sessions.running():
                await self._sleep(SESSION_POLL_S)
        job = self.store.advance(job, INSTALLING)
        self._report(job, "Installing")
        log.warning("installing %s with the %s installer", job.file.name, self.installer.name)
        try:
            await self.installer.install(job.file)
        except InstallFailed as err:
            log.error("firmware installation failed: %s", err)
            await self._finish(job, "InstallationFailed")
            return
        job = self.store.advance(job, REBOOTING)
        for path in _files_of(job.file):
            _remove(path)
        self._report(job, "InstallRebooting")
        log.warning("firmware installed; restarting to run it")
        await self.statuses.reporter(job).flush(FLUSH_BEFORE_RESTART_S)
        self._restart()

    async def _finish(self, job: FirmwareJob, result: str) -> None:
        self.store.advance(job, FINISHED, final_result(job, result))
        self._report(job, result)
        for path in _files_of(job.file):
            _remove(path)
        await self._hold(False)

    def _report(self, job: FirmwareJob, status: str) -> None:
        """``status`` in the whitepaper's words (firmware_status.py says how it is sent)."""
        shown = self.statuses.report(job, status)
        if shown is not None:
            self.view.status = shown

    def _event(self, event: SecurityEvent, tech_info: str) -> None:
        self.events.raise_event(event, tech_info[:TECH_INFO_MAX])

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

    def _delivered(self, kind: str, status: str) -> None:
        job = self.store.get()
        if job is not None and job.kind == kind and job.state == FINISHED and job.result == status:
            self.store.delete()


def _files_of(file: Path) -> list[Path]:
    names = [file.name, file.name + ".part", file.name + ".part.json"]
    detached = detached_path(file).name
    names += [detached, detached + ".part", detached + ".part.json"]
    return [file.with_name(name) for name in names]


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
