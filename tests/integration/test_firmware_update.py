"""Firmware Management, UpdateFirmware: download, install, restart, status notifications."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware.clock import iso, parse_iso
from hil.station_log import CallErrorReceived
from tests.integration.file_servers import Http, build_wheel, http_server
from tests.integration.harness import (
    Daemon,
    call_frames,
    charge_session_start,
    free_port,
    wait_until,
)
from tests.unit.test_transfer_ftp import Ftp
from tests.unit.test_transfer_ftp import _serve as ftp_serve

MakeDaemon = Callable[..., Awaitable[Daemon]]

FIRMWARE = bytes(range(256)) * 1000  # 256 KB image for the command installer


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Http]:
    async with http_server(tmp_path / "www") as server:
        (server.root / "image.bin").write_bytes(FIRMWARE)
        yield server


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[Ftp]:
    yield from ftp_serve(tmp_path)


def _now(seconds: float = 0) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=seconds))


def _command_installer(target: Path, command: str | None = None) -> dict[str, Any]:
    return {
        "firmware_update": {
            "installer": "command",
            "command": command or f"cp {{file}} {target}",
            "stall_timeout_s": 5,
            "transfer_timeout_s": 60,
        }
    }


def firmware_statuses(d: Daemon) -> list[str]:
    return [p["status"] for p in d.log.calls("FirmwareStatusNotification")]


def sequence(d: Daemon) -> list[str]:
    """BootNotification and FirmwareStatusNotification statuses in the order sent."""
    out = []
    for frame in call_frames(d.log, "BootNotification", "FirmwareStatusNotification"):
        action, payload = frame.message[2], frame.message[3]
        out.append("Boot" if action == "BootNotification" else payload["status"])
    return out


async def wait_firmware(d: Daemon, status: str, timeout: float = 20) -> dict[str, Any]:
    return await d.log.wait_for(
        "FirmwareStatusNotification", lambda p: p["status"] == status, timeout=timeout
    )


async def test_update_over_http_installs_restarts_and_reports_installed(
    make_daemon: MakeDaemon, http: Http, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**_command_installer(target))
    assert d.proc is not None
    pid = d.proc.pid
    answer = await d.log.call(
        "UpdateFirmware", {"location": f"{http.base}/files/image.bin", "retrieveDate": _now()}
    )
    assert answer == {}
    await wait_firmware(d, "Installed")
    assert sequence(d) == ["Boot", "Downloading", "Downloaded", "Installing", "Boot", "Installed"]
    assert target.read_bytes() == FIRMWARE
    assert d.proc.returncode is None and d.proc.pid == pid  # restarted in place
    await d.wait_api()
    status = await d.get("/status")
    assert status["firmware"]["status"] == "Installed"
    assert status["firmware"]["location"] == f"{http.base}/files/image.bin"
    # Nothing left in the download directory.
    assert list((d.state_dir / "firmware").iterdir()) == []


async def test_ftp_download_waits_for_the_retrieve_date(
    make_daemon: MakeDaemon, ftp: Ftp, tmp_path: Path
) -> None:
    (ftp.home / "image.bin").write_bytes(FIRMWARE)
    target = tmp_path / "installed.bin"
    d = await make_daemon(**_command_installer(target))
    retrieve = _now(3)
    await d.log.call("UpdateFirmware", {"location": ftp.url("image.bin"), "retrieveDate": retrieve})
    status = await d.get("/status")
    assert status["firmware"]["status"] == "Scheduled"
    assert status["firmware"]["retrieve_date"] == retrieve
    assert "pa%3Ass" not in str(status) and "***" in status["firmware"]["location"]
    almost = parse_iso(retrieve) - timedelta(seconds=0.5)
    await wait_until(lambda: datetime.now(UTC) >= almost, 10, "just before retrieveDate")
    assert firmware_statuses(d) == [] and not any(c.startswith("RETR") for c in ftp.commands)
    await wait_firmware(d, "Downloading")
    assert datetime.now(UTC) >= parse_iso(retrieve)
    await wait_firmware(d, "Installed")
    assert sequence(d) == ["Boot", "Downloading", "Downloaded", "Installing", "Boot", "Installed"]
    assert target.read_bytes() == FIRMWARE
    assert any(c.startswith("RETR") for c in ftp.commands)


async def test_retries_with_retry_interval_then_installation_failed(
    make_daemon: MakeDaemon, http: Http, tmp_path: Path
) -> None:
    http.flaky = 2
    d = await make_daemon(**_command_installer(tmp_path / "x", "sh -c 'exit 3'"))
    await d.log.call(
        "UpdateFirmware",
        {
            "location": f"{http.base}/flaky/image.bin",
            "retrieveDate": _now(),
            "retries": 2,
            "retryInterval": 1,
        },
    )
    await wait_firmware(d, "InstallationFailed")
    assert http.flaky_seen == 3  # two refusals, then the file
    assert sequence(d) == ["Boot", "Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert len(d.log.calls("BootNotification")) == 1  # no restart after a failed install
    assert (await d.connector())["status"] == "Available"  # sessions allowed again
    assert (await d.get("/status"))["firmware"]["status"] == "InstallationFailed"


async def test_download_failed_for_404_and_unreachable_locations(
    make_daemon: MakeDaemon, http: Http, tmp_path: Path
) -> None:
    d = await make_daemon(**_command_installer(tmp_path / "x"))
    location = f"{http.base}/status/404"
    await d.log.call(
        "UpdateFirmware",
        {"location": location, "retrieveDate": _now(), "retries": 1, "retryInterval": 1},
    )
    await wait_firmware(d, "DownloadFailed")
    assert [m for m, p, _ in http.seen.requests if p == "/status/404"] == ["GET", "GET"]
    mark = d.log.mark()
    unreachable = f"http://127.0.0.1:{free_port()}/image.bin"
    await d.log.call(
        "UpdateFirmware", {"location": unreachable, "retrieveDate": _now(), "retries": 0}
    )
    await d.log.wait_for(
        "FirmwareStatusNotification", lambda p: p["status"] == "DownloadFailed", since=mark
    )
    # An unusable scheme fails at once, without Downloading.
    mark = d.log.mark()
    await d.log.call("UpdateFirmware", {"location": "sftp://host/fw.bin", "retrieveDate": _now()})
    await d.log.wait_for(
        "FirmwareStatusNotification", lambda p: p["status"] == "DownloadFailed", since=mark
    )
    assert sequence(d) == [
        "Boot",
        "Downloading",
        "DownloadFailed",
        "Downloading",
        "DownloadFailed",
        "DownloadFailed",
    ]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"location": "http://h/f", "retrieveDate": "tomorrow"},
        {"location": "http://h/f", "retrieveDate": "2026-01-01T00:00:00Z", "retries": -1},
        {"retrieveDate": "2026-01-01T00:00:00Z"},
    ],
)
async def test_bad_update_firmware_requests_get_a_callerror(
    daemon: Daemon, payload: dict[str, Any]
) -> None:
    with pytest.raises(CallErrorReceived) as caught:
        await daemon.log.call("UpdateFirmware", payload)
    assert caught.value.code in (
        "TypeConstraintViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "FormationViolation",
    )
    assert daemon.log.calls("FirmwareStatusNotification") == []


async def test_installing_waits_for_the_running_transaction(
    make_daemon: MakeDaemon, http: Http, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**_command_installer(target))
    await charge_session_start(d)
    await d.log.call(
        "UpdateFirmware", {"location": f"{http.base}/files/image.bin", "retrieveDate": _now()}
    )
    await wait_firmware(d, "Downloaded")
    d.mark()
    # The session goes on; nothing is installed meanwhile.
    await d.wait_connector(lambda c: c["status"] == "Charging")
    assert "Installing" not in firmware_statuses(d) and not target.exists()
    answer = await d.log.call("RemoteStartTransaction", {"idTag": "AABBCC01", "connectorId": 1})
    assert answer["status"] == "Rejected"
    await d.tap("AABBCCDD")  # the driver ends the session
    stop = await d.log.wait_for("StopTransaction", timeout=20)
    await d.wait_status("Unavailable", timeout=20)  # no new session before the restart
    installing = await wait_firmware(d, "Installing")
    frames = d.log.calls()
    assert frames.index(stop) < frames.index(installing)
    await wait_firmware(d, "Installed")
    assert target.read_bytes() == FIRMWARE
    await d.wait_status("Available", timeout=20)  # after the restart


async def test_power_cut_during_download_resumes_after_restart(
    make_daemon: MakeDaemon, http: Http, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**_command_installer(target))
    await d.log.call(
        "UpdateFirmware", {"location": f"{http.base}/slow/image.bin", "retrieveDate": _now()}
    )
    await wait_firmware(d, "Downloading")
    await wait_until(lambda: http.slow_sent >= len(FIRMWARE) // 3, 15, "a third of the image")
    shown = await d.get("/status")
    assert shown["firmware"]["status"] == "Downloading"
    assert shown["firmware"]["total"] == len(FIRMWARE)
    await d.kill()  # power cut
    assert not target.exists()
    http.slow_pause_s = 0.0
    await d.start()
    await wait_firmware(d, "Installed")
    ranges = http.ranges("/slow/image.bin")
    assert ranges[0] is None and ranges[1] is not None
    assert int(ranges[1].removeprefix("bytes=").rstrip("-")) > 0  # continued, not restarted
    assert target.read_bytes() == FIRMWARE
    seen = sequence(d)
    assert seen[:3] == ["Boot", "Downloading", "Boot"]  # then the power cut
    # Until the CSMS accepts the new BootNotification only the newest status is
    # kept: a quick resumed download may show as Downloaded or Installing first.
    assert seen[-3:] == ["Installing", "Boot", "Installed"]
    assert set(seen[3:-3]) <= {"Downloading", "Downloaded"}


async def test_wheel_installer_installs_into_the_daemons_environment(
    make_daemon: MakeDaemon, http: Http
) -> None:
    distribution = f"cpfw_probe_{uuid.uuid4().hex[:8]}"
    wheel = build_wheel(http.root, distribution, "1.0", "VERSION = '1.0'\n")
    d = await make_daemon(firmware_update={"installer": "wheel", "stall_timeout_s": 5})
    try:
        await d.log.call(
            "UpdateFirmware",
            {"location": f"{http.base}/files/{wheel.name}", "retrieveDate": _now()},
        )
        await wait_firmware(d, "Installed", timeout=60)
        assert sequence(d) == [
            "Boot",
            "Downloading",
            "Downloaded",
            "Installing",
            "Boot",
            "Installed",
        ]
        out = await _python("-c", f"import {distribution}; print({distribution}.VERSION)")
        assert out.strip() == "1.0", out
    finally:
        await _python("-m", "pip", "uninstall", "-y", "-q", distribution)


async def _python(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return out.decode()


async def test_a_wheel_installer_refuses_a_file_that_is_no_wheel(
    make_daemon: MakeDaemon, http: Http
) -> None:
    d = await make_daemon(firmware_update={"installer": "wheel"})
    await d.log.call(
        "UpdateFirmware", {"location": f"{http.base}/files/image.bin", "retrieveDate": _now()}
    )
    await wait_firmware(d, "InstallationFailed")
    assert len(d.log.calls("BootNotification")) == 1


async def test_the_profile_is_announced(daemon: Daemon) -> None:
    answer = await daemon.log.call(
        "GetConfiguration", {"key": ["SupportedFeatureProfiles", "SupportedFileTransferProtocols"]}
    )
    values = {k["key"]: k["value"] for k in answer["configurationKey"]}
    assert "FirmwareManagement" in values["SupportedFeatureProfiles"].split(",")
    assert values["SupportedFileTransferProtocols"] == "FTP,FTPS,HTTP,HTTPS"
    status = await daemon.get("/status")
    assert status["firmware"]["status"] == "Idle" and status["diagnostics"]["status"] == "Idle"


async def test_power_cut_while_installing_reports_installation_failed(
    make_daemon: MakeDaemon, http: Http, tmp_path: Path
) -> None:
    pid_file = tmp_path / "installer.pid"
    command = f"echo $$ > {pid_file}; exec sleep 60 #"
    d = await make_daemon(**_command_installer(tmp_path / "x", command))
    await d.log.call(
        "UpdateFirmware", {"location": f"{http.base}/files/image.bin", "retrieveDate": _now()}
    )
    await wait_firmware(d, "Installing")
    await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "", 10, "pid")
    try:
        await d.kill()  # power cut in the middle of the installation
        await d.start()
        await wait_firmware(d, "InstallationFailed")
    finally:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the orphaned installer
    assert sequence(d) == [
        "Boot",
        "Downloading",
        "Downloaded",
        "Installing",
        "Boot",
        "InstallationFailed",
    ]
    assert (await d.get("/status"))["firmware"]["status"] == "InstallationFailed"
    assert (await d.connector())["status"] == "Available"


async def test_a_new_request_replaces_a_running_download(
    make_daemon: MakeDaemon, http: Http, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**_command_installer(target))
    (http.root / "other.bin").write_bytes(FIRMWARE[::-1])
    await d.log.call(
        "UpdateFirmware", {"location": f"{http.base}/slow/image.bin", "retrieveDate": _now()}
    )
    await wait_firmware(d, "Downloading")
    await wait_until(lambda: http.slow_sent > 0, 10, "the slow download under way")
    await d.log.call(
        "UpdateFirmware", {"location": f"{http.base}/files/other.bin", "retrieveDate": _now()}
    )
    await wait_firmware(d, "Installed")
    assert target.read_bytes() == FIRMWARE[::-1]
    assert sequence(d) == [
        "Boot",
        "Downloading",
        "Downloading",
        "Downloaded",
        "Installing",
        "Boot",
        "Installed",
    ]
    assert list((d.state_dir / "firmware").iterdir()) == []  # the first .part is gone
