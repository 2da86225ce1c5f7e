"""Firmware Management domain logic: job recovery, the retrieveDate timer, installers,
file names and upload targets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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
from firmware.management.reporter import StatusReporter
from firmware.management.updater import FirmwareUpdater, file_name
from firmware.ocpp.errors import CallTimeout
from firmware.storage.db import Database
from firmware.transfer.logwindow import line_time

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
    on_delivered: Any = None

    def report(self, status: str) -> None:
        self.sent.append(status)

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
    updater = FirmwareUpdater(
        FirmwareJobStore(db, clock.now),
        FirmwareUpdateSettings(),
        tmp_path / "fw",
        installer,
        sessions,
        reporter,  # type: ignore[arg-type]
        clock,  # type: ignore[arg-type]
        restart=lambda: restarts.append(True),
        sleep=sleep,
    )
    return Rig(db, clock, reporter, sessions, installer, updater, sleeps, restarts)


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
    assert build_installer(FirmwareUpdateSettings()).name == "wheel"
    assert build_installer(FirmwareUpdateSettings("command", "true")).name == "command"


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


class FakeRpc:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.connected_event = asyncio.Event()
        self.connected_event.set()
        self.fail_next: Exception | None = None

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err
        self.sent.append(payload["status"])
        return {}


async def test_reporter_sends_in_order_online_and_only_the_newest_offline() -> None:
    rpc, ready = FakeRpc(), asyncio.Event()
    delivered: list[str] = []
    reporter = StatusReporter(
        rpc,  # type: ignore[arg-type]
        "FirmwareStatusNotification",
        ready,
        on_delivered=delivered.append,
        retry_s=0.01,
    )
    task = asyncio.create_task(reporter.run())
    try:
        reporter.report("Downloading")  # offline: stale once the next one comes
        reporter.report("Downloaded")
        ready.set()
        reporter.report("Installing")  # online: every one, in order
        reporter.report("InstallationFailed")
        assert await reporter.flush(5)
        assert rpc.sent == ["Downloaded", "Installing", "InstallationFailed"]
        assert delivered == rpc.sent
        rpc.fail_next = CallTimeout("no answer")  # retried while it is news
        reporter.report("Downloading")
        assert await reporter.flush(5)
        assert rpc.sent[-1] == "Downloading"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
