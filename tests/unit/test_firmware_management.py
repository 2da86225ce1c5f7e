"""Firmware Management domain logic: job recovery, the retrieveDate timer, installers,
file names and upload targets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from firmware import logs
from firmware.config import DiagnosticsSettings, FirmwareUpdateSettings, parse_config
from firmware.errors import ConfigError
from firmware.management.diagnostics import DiagnosticsUploader, target_url
from firmware.management.installers import (
    CommandInstaller,
    InstallFailed,
    WheelInstaller,
    build_installer,
)
from firmware.management.jobs import FirmwareJob, FirmwareJobStore
from firmware.management.updater import FirmwareUpdater, file_name
from firmware.management.verification import ImageVerifier, signature_location
from firmware.security.events import LoggingSink, SecurityEvent
from firmware.security.firmware_signing import SignatureRefused
from firmware.storage.db import Database
from firmware.transfer.logwindow import line_time
from tests.firmware_pki import ManufacturerPki

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()


@dataclass
class FakeReporter:
    sent: list[str] = field(default_factory=list)
    request_ids: list[int | None] = field(default_factory=list)
    on_delivered: Any = None

    def report(self, status: str, request_id: int | None = None) -> None:
        self.sent.append(status)
        self.request_ids.append(request_id)

    async def flush(self, timeout: float) -> bool:
        return True


@dataclass
class FakeSessions:
    count: int = 0
    holds: list[bool] = field(default_factory=list)

    def running(self) -> int:
        return self.count

    async def hold(self, held: bool) -> None:
        self.holds.append(held)


@dataclass
class FakeInstaller:
    fail: bool = False
    installed: list[Path] = field(default_factory=list)
    name: str = "fake"

    async def install(self, file: Path) -> None:
        self.installed.append(file)
        if self.fail:
            raise InstallFailed("no")

    async def activated(self) -> bool:
        return not self.fail


@dataclass
class Rig:
    db: Database
    clock: FakeClock
    reporter: FakeReporter
    sessions: FakeSessions
    installer: FakeInstaller
    updater: FirmwareUpdater
    sleeps: list[float]
    restarts: list[bool]
    signed: FakeReporter
    events: LoggingSink
    roots: list[x509.Certificate]

    @property
    def store(self) -> FirmwareJobStore:
        return self.updater.store


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    db = Database(tmp_path / "state.db")
    clock = FakeClock()
    sleeps: list[float] = []
    restarts: list[bool] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.at += timedelta(seconds=seconds)
        await asyncio.sleep(0)

    reporter, sessions, installer = FakeReporter(), FakeSessions(), FakeInstaller()
    signed = FakeReporter()
    events = LoggingSink()
    updater = FirmwareUpdater(
        FirmwareJobStore(db, clock.now),
        FirmwareUpdateSettings(),
        tmp_path / "fw",
        installer,
        sessions,
        reporter,  # type: ignore[arg-type]
        clock,  # type: ignore[arg-type]
        signed_reporter=signed,  # type: ignore[arg-type]
        verifier=ImageVerifier(lambda: roots, [], clock),  # type: ignore[arg-type]
        events=events,
        restart=lambda: restarts.append(True),
        sleep=sleep,
    )
    roots: list[x509.Certificate] = []
    return Rig(
        db, clock, reporter, sessions, installer, updater, sleeps, restarts, signed, events, roots
    )


async def until(predicate: Callable[[], object]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def run_until(rig: Rig, predicate: Callable[[], object]) -> None:
    task = asyncio.create_task(rig.updater.run())
    try:
        await until(predicate)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def job(tmp_path: Path, state: str, result: str | None = None) -> FirmwareJob:
    return FirmwareJob("http://h/fw.whl", T0, 1, 1, tmp_path / "fw" / "fw.whl", state, result)


@pytest.mark.parametrize(
    ("state", "result", "reported"),
    [
        ("Installing", None, "InstallationFailed"),  # died mid-install
        ("Rebooting", None, "Installed"),  # reached the restart
        ("Finished", "DownloadFailed", "DownloadFailed"),  # not yet delivered
    ],
)
async def test_recovery_after_a_restart(
    rig: Rig, tmp_path: Path, state: str, result: str | None, reported: str
) -> None:
    rig.store.put(job(tmp_path, state, result))
    await run_until(rig, lambda: rig.reporter.sent)
    assert rig.reporter.sent == [reported]
    assert rig.updater.current_status() == reported
    rig.reporter.on_delivered(reported)
    assert rig.store.get() is None and rig.updater.current_status() == "Idle"


async def test_the_timer_waits_for_retrieve_date_in_steps(rig: Rig) -> None:
    assert rig.updater.request("sftp://h/fw.bin", T0 + timedelta(seconds=100), None, None)
    assert rig.updater.current_status() == "Idle"  # scheduled only
    await run_until(rig, lambda: rig.reporter.sent)
    assert rig.sleeps == [30, 30, 30, 10]
    assert rig.reporter.sent == ["DownloadFailed"]  # unusable scheme: no Downloading
    job = rig.store.get()
    assert job is not None and (job.retries, job.retry_interval_s) == (3, 60)  # defaults


async def test_a_request_while_installing_is_ignored(rig: Rig, tmp_path: Path) -> None:
    rig.store.put(job(tmp_path, "Installing"))
    assert not rig.updater.request("http://h/other.whl", T0, 0, 0)
    current = rig.store.get()
    assert current is not None and current.location == "http://h/fw.whl"


async def test_install_waits_for_sessions_and_restarts(rig: Rig, tmp_path: Path) -> None:
    stored = job(tmp_path, "Downloaded")
    stored.file.parent.mkdir(parents=True)
    stored.file.write_bytes(b"wheel")
    rig.store.put(stored)
    rig.sessions.count = 1
    task = asyncio.create_task(rig.updater.run())
    await until(lambda: rig.sleeps)
    assert rig.sessions.holds == [True] and rig.installer.installed == []
    rig.sessions.count = 0
    await until(lambda: rig.restarts)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rig.reporter.sent == ["Installing"]
    assert rig.installer.installed == [stored.file] and not stored.file.exists()
    rebooting = rig.store.get()
    assert rebooting is not None and rebooting.state == "Rebooting"


async def test_failed_install_releases_the_connectors(rig: Rig, tmp_path: Path) -> None:
    rig.installer.fail = True
    rig.store.put(job(tmp_path, "Downloaded"))
    await run_until(rig, lambda: "InstallationFailed" in rig.reporter.sent)
    assert rig.sessions.holds == [True, False] and rig.restarts == []


@pytest.mark.parametrize(
    ("location", "name"),
    [
        ("http://h/path/cp-2.0-py3-none-any.whl", "cp-2.0-py3-none-any.whl"),
        ("ftp://u:p@h/dir/image.raucb", "image.raucb"),
        ("https://h/dl?file=x", "dl"),
        ("https://h/", "firmware.bin"),
        ("http://h/..", "firmware.bin"),
        ("http://h/a%20b;rm -rf.bin", "a_b_rm_-rf.bin"),
        ("not a url at all", "not_a_url_at_all"),
    ],
)
def test_file_name(location: str, name: str) -> None:
    assert file_name(location) == name


@pytest.mark.parametrize(
    ("location", "method", "url"),
    [
        ("http://h/upload", "POST", "http://h/upload"),
        ("http://h/upload", "PUT", "http://h/upload/d.tar.gz"),
        ("https://h/upload/", "PUT", "https://h/upload/d.tar.gz"),
        ("https://h/up?sig=1", "PUT", "https://h/up/d.tar.gz?sig=1"),
        ("ftp://u:p@h/incoming", "POST", "ftp://u:p@h/incoming/d.tar.gz"),
        ("ftp://h/", "PUT", "ftp://h/d.tar.gz"),
    ],
)
def test_upload_target(location: str, method: str, url: str) -> None:
    assert target_url(location, "d.tar.gz", method) == url


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("rauc install {file}", "rauc install '/tmp/a b.img'"),
        ("swupdate -i", "swupdate -i '/tmp/a b.img'"),
    ],
)
def test_command_gets_the_quoted_path(command: str, expected: str) -> None:
    assert CommandInstaller(command, 1).command_for(Path("/tmp/a b.img")) == expected


async def test_command_installer_exit_codes_and_timeout(tmp_path: Path) -> None:
    image = tmp_path / "img"
    image.write_bytes(b"x")
    await CommandInstaller(f"cp {{file}} {tmp_path / 'out'}", 5).install(image)
    assert (tmp_path / "out").read_bytes() == b"x"
    with pytest.raises(InstallFailed, match="exited with code 3"):
        await CommandInstaller("sh -c 'exit 3'", 5).install(image)
    with pytest.raises(InstallFailed, match="did not finish within"):
        await CommandInstaller("sleep 5 #", 0.2).install(image)


async def test_wheel_installer_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(InstallFailed, match="not a wheel"):
        await WheelInstaller(5).install(tmp_path / "image.bin")
    ready = asyncio.Event()
    assert build_installer(FirmwareUpdateSettings(), tmp_path, ready).name == "release"
    assert build_installer(FirmwareUpdateSettings("wheel"), tmp_path, ready).name == "wheel"
    command = FirmwareUpdateSettings("command", "true")
    assert build_installer(command, tmp_path, ready).name == "command"


def test_diagnostics_one_upload_at_a_time_and_unusable_locations(tmp_path: Path) -> None:
    uploader = DiagnosticsUploader(
        DiagnosticsSettings(),
        "CP-1",
        tmp_path,
        dict,
        FakeReporter(),  # type: ignore[arg-type]
        FakeClock(),  # type: ignore[arg-type]
    )
    assert uploader.request("gopher://h/x", None, None, None, None) is None
    accepted = uploader.request("http://h/up", None, None, None, None)
    assert accepted is not None and accepted[0] == "diagnostics-CP-1-20260301T120000Z.tar.gz"
    assert uploader.current_status() == "Uploading"
    assert uploader.request("http://h/up", None, None, None, None) is None
    accepted[1]().close()  # never run


MINIMAL = {"ocpp": {"csms_url": "ws://127.0.0.1:9000/ocpp", "charge_point_id": "CP-1"}}


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"firmware_update": {"installer": "rpm"}}, "firmware_update.installer: must be one of"),
        ({"firmware_update": {"installer": "command"}}, "firmware_update.command: required"),
        ({"firmware_update": {"command": "x {file}"}}, "firmware_update.command: only used"),
        ({"firmware_update": {"install_timeout_s": 0}}, "install_timeout_s: must be a number"),
        ({"firmware_update": {"default_retries": -1}}, "default_retries: must be an integer"),
        ({"firmware_update": {"downlod_dir": "/x"}}, "did you mean 'download_dir'"),
        ({"diagnostics": {"upload_method": "GET"}}, "diagnostics.upload_method: must be POST"),
        ({"diagnostics": {"log_file": ""}}, "diagnostics.log_file: must be a non-empty"),
        ({"diagnostics": {"log_max_bytes": 10}}, "log_max_bytes: must be an integer of at least"),
    ],
)
def test_config_errors(sections: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config({**MINIMAL, **sections}, "cp.yaml")


def test_config_sections(tmp_path: Path) -> None:
    config = parse_config(
        {
            **MINIMAL,
            "firmware_update": {"installer": "command", "command": "rauc install {file}"},
            "diagnostics": {"log_file": "logs/cp.log", "upload_method": "put"},
        },
        base_dir=tmp_path,
    )
    assert config.firmware_update.command == "rauc install {file}"
    assert config.diagnostics.log_file == tmp_path / "logs" / "cp.log"
    assert config.diagnostics.upload_method == "PUT"
    assert parse_config(MINIMAL).diagnostics.log_file is None


def test_log_file_gets_stamped_redacted_rotated_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "cp.log"
    handler = logs.add_file(path, max_bytes=4096, backups=2)
    try:
        logger = logging.getLogger("firmware.test")
        logger.setLevel(logging.INFO)
        for n in range(200):
            logger.info("line %d to ftp://u:secret@h/x", n)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["cp.log", "cp.log.1", "cp.log.2"]
    last = path.read_text().splitlines()[-1]
    assert line_time(last) is not None and "line 199" in last and "secret" not in last


# ---------------------------------------------------------------- signed firmware


@pytest.fixture(scope="module")
def manufacturer() -> ManufacturerPki:
    return ManufacturerPki()


@pytest.fixture
def now_rig(rig: Rig) -> Rig:
    """The rig at the real time: the test certificates are valid now, not at T0."""
    rig.clock.at = datetime.now(UTC).replace(microsecond=0)  # stored to the millisecond
    return rig


def signed_job(tmp_path: Path, state: str, pki: ManufacturerPki, **changes: Any) -> FirmwareJob:
    fields: dict[str, Any] = {
        "kind": "signed",
        "request_id": 42,
        "signing_certificate": pki.signer.pem,
        "signature": pki.signer.sign(b"wheel"),
    }
    fields.update(changes)
    return replace(job(tmp_path, state), **fields)


def test_a_signed_request_is_answered_by_its_certificate_and_what_runs(
    now_rig: Rig, tmp_path: Path, manufacturer: ManufacturerPki
) -> None:
    rig = now_rig

    def ask(pem: str, request_id: int = 1) -> str:
        return rig.updater.request_signed(
            request_id, "http://h/fw.whl", T0, None, pem, "AA==", 1, 1
        )

    assert ask(manufacturer.signer.pem) == "InvalidCertificate"  # no root installed yet
    assert rig.events.raised[-1][0] == SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE
    assert "no ManufacturerRootCertificate is installed" in str(rig.events.raised[-1][1])
    assert rig.store.get() is None
    rig.roots.append(manufacturer.root.cert)
    assert ask(manufacturer.untrusted.pem) == "InvalidCertificate"
    assert ask(manufacturer.signer.pem, 1) == "Accepted"
    stored = rig.store.get()
    assert stored is not None and (stored.kind, stored.request_id) == ("signed", 1)
    assert ask(manufacturer.signer.pem, 2) == "AcceptedCanceled"  # the first had not finished
    rig.store.put(signed_job(tmp_path, "Installing", manufacturer))
    assert ask(manufacturer.signer.pem, 3) == "Rejected"
    # Nothing signed about a plain request: it is ignored while installing too.
    assert not rig.updater.request("http://h/other.whl", T0, 0, 0)
    assert [e for e, _ in rig.events.raised].count(
        SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE
    ) == 2


@pytest.mark.parametrize(
    ("activated", "final"), [(True, "Installed"), (False, "InstallationFailed")]
)
async def test_a_signed_job_after_its_restart(
    now_rig: Rig, tmp_path: Path, manufacturer: ManufacturerPki, activated: bool, final: str
) -> None:
    rig = now_rig
    rig.installer.fail = not activated
    rig.store.put(signed_job(tmp_path, "Rebooting", manufacturer))
    await run_until(rig, lambda: rig.signed.sent)
    assert (rig.signed.sent, rig.signed.request_ids) == ([final], [42])
    assert rig.reporter.sent == []  # nothing of it in FirmwareStatusNotification
    updated = [e for e, _ in rig.events.raised] == [SecurityEvent.FIRMWARE_UPDATED]
    assert updated is activated
    # ExtendedTriggerMessage: Idle once Installed was the last; else the last with its id.
    expected = {"status": "Idle"} if activated else {"status": final, "requestId": 42}
    assert rig.updater.current_signed_status() == expected
    assert rig.updater.current_status() == "Idle"
    rig.signed.on_delivered(final)
    assert rig.store.get() is None


async def test_a_signed_download_verifies_and_reports_with_its_request_id(
    now_rig: Rig, tmp_path: Path, manufacturer: ManufacturerPki
) -> None:
    rig = now_rig
    rig.roots.append(manufacturer.root.cert)
    stored = signed_job(
        tmp_path, "Downloaded", manufacturer, install_at=rig.clock.at + timedelta(seconds=45)
    )
    stored.file.parent.mkdir(parents=True)
    stored.file.write_bytes(b"wheel")
    rig.store.put(stored)
    await run_until(rig, lambda: rig.restarts)
    assert rig.signed.sent == [
        "SignatureVerified",
        "InstallScheduled",
        "Installing",
        "InstallRebooting",
    ]
    assert set(rig.signed.request_ids) == {42}
    assert rig.sleeps == [30, 15]  # until installDateTime
    assert rig.installer.installed == [stored.file]
    assert rig.updater.current_signed_status() == {"status": "InstallRebooting", "requestId": 42}


async def test_a_bad_signature_refuses_the_file(
    now_rig: Rig, tmp_path: Path, manufacturer: ManufacturerPki
) -> None:
    rig = now_rig
    rig.roots.append(manufacturer.root.cert)
    stored = signed_job(
        tmp_path, "Downloaded", manufacturer, signature=manufacturer.signer.sign(b"x")
    )
    stored.file.parent.mkdir(parents=True)
    stored.file.write_bytes(b"wheel")
    rig.store.put(stored)
    await run_until(rig, lambda: rig.signed.sent)
    assert rig.signed.sent == ["InvalidSignature"]
    assert [e for e, _ in rig.events.raised] == [SecurityEvent.INVALID_FIRMWARE_SIGNATURE]
    assert rig.installer.installed == [] and not stored.file.exists()
    assert rig.sessions.holds == []  # never held: nothing to install


async def test_a_root_deleted_after_the_request_refuses_the_file(
    now_rig: Rig, tmp_path: Path, manufacturer: ManufacturerPki
) -> None:
    rig = now_rig
    stored = signed_job(tmp_path, "Downloaded", manufacturer)
    stored.file.parent.mkdir(parents=True)
    stored.file.write_bytes(b"wheel")
    rig.store.put(stored)  # no root any more
    await run_until(rig, lambda: rig.signed.sent)
    assert rig.signed.sent == ["InvalidSignature"]
    (event, info) = rig.events.raised[0]
    assert event == SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE
    assert info is not None and "no ManufacturerRootCertificate" in info


@pytest.mark.parametrize(
    ("location", "suffix", "expected"),
    [
        ("http://h/fw/cp-1.0.whl", ".sig", "http://h/fw/cp-1.0.whl.sig"),
        ("https://h/dl/image.bin?token=a%2Fb", ".sig", "https://h/dl/image.bin.sig?token=a%2Fb"),
        ("ftp://u:p@h/dir/a%20b.raucb", ".p7s", "ftp://u:p@h/dir/a%20b.raucb.p7s"),
    ],
)
def test_the_detached_signature_sits_next_to_the_image(
    location: str, suffix: str, expected: str
) -> None:
    assert signature_location(location, suffix) == expected


async def test_detached_signatures(tmp_path: Path, manufacturer: ManufacturerPki) -> None:
    image = tmp_path / "image.bin"
    image.write_bytes(b"firmware image")
    detached = tmp_path / "image.bin.sig"
    good = manufacturer.signer.sign(b"firmware image")
    roots: list[x509.Certificate] = [manufacturer.root.cert]
    trusting = ImageVerifier(lambda: roots, [], FakeClock(datetime.now(UTC)))  # type: ignore[arg-type]
    pinned = ImageVerifier(lambda: [], [manufacturer.signer.cert], FakeClock(datetime.now(UTC)))  # type: ignore[arg-type]

    async def refusal(verifier: ImageVerifier, content: bytes) -> str:
        detached.write_bytes(content)
        with pytest.raises(SignatureRefused) as caught:
            await verifier.verify_detached(image, detached)
        return str(caught.value)

    detached.write_text(manufacturer.signer.pem + good)
    assert await trusting.verify_detached(image, detached) == manufacturer.signer.cert
    detached.write_text(good)
    assert await pinned.verify_detached(image, detached) == manufacturer.signer.cert
    assert "carries no certificate and none is configured" in await refusal(trusting, good.encode())
    assert "detached signature file is empty" in await refusal(trusting, b" \n")
    assert "larger than" in await refusal(trusting, b"A" * (64 * 1024 + 1))
    bad = manufacturer.signer.sign(b"other image").encode()
    assert "does not match the file" in await refusal(pinned, bad)
    untrusted = (manufacturer.untrusted.pem + good).encode()
    assert "not issued by an installed" in await refusal(trusting, untrusted)
    # A configured certificate out of its dates is no trust either.
    expired = ImageVerifier(lambda: [], [manufacturer.expired.cert], FakeClock(datetime.now(UTC)))  # type: ignore[arg-type]
    assert "signing_certificate: signing certificate" in await refusal(expired, good.encode())
