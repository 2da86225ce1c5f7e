"""The default installer on a board: a new release under the state directory, /opt read-only.

The firmware runs from ``<root>/opt/chargepoint/venv``, built as scripts/install.sh builds
it (no pip in the venv), in a mount namespace where ``<root>/opt`` is a read-only bind
mount, as ``ProtectSystem=strict`` makes it for the service. The test plays systemd: it
starts that command and, when the process dies, starts it again (``Restart=on-failure``).

1. SignedUpdateFirmware with a wheel of version 0.1.1: the release is built under
   ``<state>/releases``, the daemon re-executes into it (same PID), the CSMS accepts its
   BootNotification (firmwareVersion 0.1.1), the release is confirmed, Installed.
2. UpdateFirmware (``require_signature``, detached signature) with a wheel of 0.1.2 that
   migrates the database and then dies at start: the restart rolls back to 0.1.1, puts
   the database back as it was, and reports InstallationFailed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from firmware.clock import iso
from hil.csms import BenchCsms
from hil.station_log import StationLog
from tests.deploy.conftest import build_wheel, clean_env, copy_source
from tests.firmware_pki import ManufacturerPki
from tests.integration.file_servers import Http, http_server

CP_ID = "CP-OTA"
SIGNED = "SignedFirmwareStatusNotification"
PLAIN = "FirmwareStatusNotification"
BROKEN = "\n\nasync def _broken_run(self):\n    raise RuntimeError('this release is broken')\n"
BROKEN += "\n\nApp.run = _broken_run\n"


def firmware_source(target: Path, version: str, *, broken: bool = False) -> Path:
    """The checkout as version ``version``; a broken one migrates the database, then dies."""
    src = copy_source(target)
    for path, pattern in (
        (src / "pyproject.toml", r'^version = "[^"]+"'),
        (src / "firmware/__init__.py", r'^__version__ = "[^"]+"'),
    ):
        text = path.read_text()
        new = pattern.split(" = ")[0][1:] + f' = "{version}"'
        replaced = re.sub(pattern, new, text, count=1, flags=re.M)
        assert replaced != text
        path.write_text(replaced)
    if broken:
        migrations = src / "firmware/storage/migrations"
        number = len(list(migrations.glob("*.sql"))) + 1
        (migrations / f"{number:04d}_trial_probe.sql").write_text("CREATE TABLE trial_probe (x);\n")
        with (src / "firmware/app.py").open("a") as app:
            app.write(BROKEN)
    return src


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    built = {}
    for version, broken in (("0.1.1", False), ("0.1.2", True)):
        src = firmware_source(tmp_path_factory.mktemp(f"src-{version}"), version, broken=broken)
        built[version] = build_wheel(src, out / version)
    return built


@pytest.fixture
async def csms() -> AsyncIterator[BenchCsms]:
    async with BenchCsms(heartbeat_interval=300) as server:
        yield server


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Http]:
    async with http_server(tmp_path / "www") as server:
        yield server


def sandboxed(opt: Path, *command: str) -> list[str]:
    """``command`` with ``opt`` read-only, as ProtectSystem=strict has /opt for the service."""
    script = f'mount --bind "{opt}" "{opt}" && mount -o remount,bind,ro "{opt}" && exec "$@"'
    namespaces = ["--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespaces = ["--user", "--map-root-user", *namespaces]
    return ["unshare", *namespaces, "sh", "-c", script, "sh", *command]


@dataclass
class Board:
    """The daemon of a board, started as its unit starts it, and what it left behind."""

    venv: Path
    config: Path
    state: Path
    log: StationLog
    log_path: Path
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        since = self.log.mark()
        command = [str(self.venv / "bin/chargepoint"), "run", "--config", str(self.config)]
        with self.log_path.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *sandboxed(self.venv.parent, *command),
                env=clean_env(),
                cwd=str(self.state.parent),
                stdout=out,
                stderr=out,
            )
        await self.log.wait_for("BootNotification", timeout=60, since=since)

    def versions(self) -> list[str]:
        return [p["firmwareVersion"] for p in self.log.calls("BootNotification")]

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(20):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def statuses(log: StationLog, action: str) -> list[str]:
    return [p["status"] for p in log.calls(action)]


def schema_version(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_the_sandbox_makes_opt_read_only(board_venv: Path) -> None:
    probe = board_venv.parent / "probe"
    result = subprocess.run(
        sandboxed(board_venv.parent, "touch", str(probe)), capture_output=True, text=True
    )
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    assert not probe.exists()


async def test_a_release_is_installed_confirmed_and_a_broken_one_rolled_back(
    board_venv: Path,
    wheels: dict[str, Path],
    csms: BenchCsms,
    http: Http,
    tmp_path: Path,
) -> None:
    pki = ManufacturerPki()
    root = board_venv.parents[2]
    state = root / "var/lib/chargepoint"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    etc = root / "etc/chargepoint"
    etc.mkdir(parents=True, exist_ok=True)
    roots = pki.write_roots(etc / "manufacturer-roots.pem")
    settings: dict[str, Any] = {
        "ocpp": {"csms_url": csms.url, "charge_point_id": CP_ID, "reconnect_max_s": 1},
        "hal": {"backend": "simulated"},
        "state_dir": str(state),
        "api": {"host": "127.0.0.1", "port": 0},
        "security": {"manufacturer_root_ca": str(roots)},
        "firmware_update": {"require_signature": True, "stall_timeout_s": 10},
    }
    config = etc / "chargepoint.yaml"
    config.write_text(yaml.safe_dump(settings))
    board = Board(board_venv, config, state, csms.station(CP_ID), tmp_path / "daemon.log")
    opt_before = sorted(str(p.relative_to(root)) for p in (root / "opt").rglob("*"))
    await board.start()
    try:
        assert board.versions() == ["0.1.0"]

        # 1. A signed release that works.
        good = wheels["0.1.1"]
        (http.root / good.name).write_bytes(good.read_bytes())
        request = {
            "requestId": 11,
            "firmware": {
                "location": f"{http.base}/files/{good.name}",
                "retrieveDateTime": iso(datetime.now(UTC) - timedelta(seconds=1)),  # already due
                "signingCertificate": pki.signer.pem,
                "signature": pki.signer.sign(good.read_bytes()),
            },
        }
        assert await board.log.call("SignedUpdateFirmware", request) == {"status": "Accepted"}
        await board.log.wait_for(SIGNED, lambda p: p["status"] == "Installed", timeout=180)
        assert statuses(board.log, SIGNED) == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]
        assert board.versions() == ["0.1.0", "0.1.1"]
        assert board.proc is not None and board.proc.returncode is None  # same process
        current = os.readlink(state / "releases/current")
        assert current.startswith("0.1.1-")
        assert "security event FirmwareUpdated: firmware 0.1.1" in board.text()

        # 2. A release that migrates the database, then dies at start.
        broken = wheels["0.1.2"]
        (http.root / broken.name).write_bytes(broken.read_bytes())
        (http.root / (broken.name + ".sig")).write_text(
            pki.signer.pem + pki.signer.sign(broken.read_bytes()) + "\n"
        )
        before = schema_version(state / "state.db")
        location = f"{http.base}/files/{broken.name}"
        await board.log.call(
            "UpdateFirmware", {"location": location, "retrieveDate": iso(datetime.now(UTC))}
        )
        await board.log.wait_for(PLAIN, lambda p: p["status"] == "Installing", timeout=120)
        async with asyncio.timeout(180):
            code = await board.proc.wait()
        assert code != 0 and "this release is broken" in board.text()
        assert schema_version(state / "state.db") == before + 1  # the trial migrated it
        await board.start()  # as systemd would: Restart=on-failure
        await board.log.wait_for(PLAIN, lambda p: p["status"] == "InstallationFailed", timeout=60)
        assert board.versions() == ["0.1.0", "0.1.1", "0.1.1"]
        assert statuses(board.log, PLAIN) == [
            "Downloading",
            "Downloaded",
            "Installing",
            "InstallationFailed",
        ]
        assert f"did not come up: rolling back to {current}" in board.text()
        assert os.readlink(state / "releases/current") == current
        assert not any(p.name.startswith("0.1.2") for p in (state / "releases").iterdir())
        assert schema_version(state / "state.db") == before  # put back
    finally:
        await board.stop()
    # The installed firmware was never touched.
    assert sorted(str(p.relative_to(root)) for p in (root / "opt").rglob("*")) == opt_before
    assert board.log.violations == []
