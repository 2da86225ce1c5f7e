"""A board install: the wheel and constraints.txt alone, without the bench or the emulators.

The venv (``board_venv``, tests/deploy/conftest.py) is built as scripts/install.sh builds
it (pip install of the checkout with the lock file, offline from the wheelhouse) and used
from outside the checkout, so nothing of the source tree can be imported by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tty
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hil.csms import BenchCsms
from tests.deploy.conftest import ROOT, clean_env


def run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin/chargepoint"), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def ptys() -> Iterator[list[str]]:
    """Two serial lines with nothing on the far side: a meter and a reader that are not there."""
    pairs = [os.openpty() for _ in range(2)]
    for master, _ in pairs:
        tty.setraw(master)
    yield [os.ttyname(slave) for _, slave in pairs]
    for pair in pairs:
        for fd in pair:
            os.close(fd)


def board_config(csms: BenchCsms, tmp_path: Path, ports: list[str]) -> dict[str, Any]:
    """The hardware backend on a machine without the hardware: mock pins, a virtual
    CAN bus, serial lines nobody answers. The station boots and reports its faults."""
    return {
        "ocpp": {"csms_url": csms.url, "charge_point_id": "CP-BOARD", "reconnect_max_s": 1},
        "hal": {
            "backend": "hardware",
            "gpio": {"factory": "mock"},
            "can": {"interface": "virtual", "channel": f"board-{os.getpid()}"},
            "relay": {"driver": "gpio", "pin": 17, "feedback_pin": 27},
            "lock": {"driver": "none"},
            "evse": {"driver": "can"},
            "meter": {"driver": "modbus", "port": ports[0], "device_id": 1, "map": "sdm630"},
            "rfid": [{"driver": "lines", "port": ports[1]}],
        },
        "board": {"has_lock": False, "has_bms": False},
        "state_dir": str(tmp_path / "state"),
        "api": {"host": "127.0.0.1", "port": 0},
    }


@pytest.fixture
async def csms() -> AsyncIterator[BenchCsms]:
    async with BenchCsms(heartbeat_interval=300) as server:
        yield server


def test_board_venv_holds_no_bench_and_checks_the_example_config(
    board_venv: Path, tmp_path: Path
) -> None:
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('hil', 'hal.emulators', 'hal.emulated', 'tests') if u.find_spec(m)])"
    )
    found = subprocess.run(
        [str(board_venv / "bin/python"), "-c", probe],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "[]"
    # The Raspberry Pi example passes every check this machine can make: the pin library
    # loads and the file is valid; it stops at the first device only the board has
    # (check-config refuses what run refuses, devices included).
    checked = run(
        board_venv, tmp_path, "check-config", "--config", str(ROOT / "config/raspberry-pi.yaml")
    )
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert checked.stderr.startswith("chargepoint: configuration error: hal.can.channel: ")
    assert "no network interface 'can0'" in checked.stderr


async def test_board_install_runs_the_hardware_backend_without_the_bench(
    board_venv: Path, csms: BenchCsms, tmp_path: Path, ptys: list[str]
) -> None:
    config = tmp_path / "board.yaml"
    config.write_text(yaml.safe_dump(board_config(csms, tmp_path, ptys)))
    assert run(board_venv, tmp_path, "check-config", "--config", str(config)).returncode == 0
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            str(board_venv / "bin/chargepoint"),
            "run",
            "--config",
            str(config),
            cwd=tmp_path,
            env=clean_env(),
            stdout=log_file,
            stderr=log_file,
        )
    try:
        station = csms.station("CP-BOARD")
        await station.wait_for("BootNotification", timeout=20)
        # No reader, no EVSE controller answering: the station says so over OCPP.
        await station.wait_for(
            "StatusNotification",
            lambda p: p["connectorId"] == 1 and p["status"] == "Faulted",
            timeout=20,
        )
        port = next(
            line.rsplit(":", 1)[1]
            for line in log_path.read_text().splitlines()
            if "local API on http://" in line
        )
        async with aiohttp.ClientSession() as session:
            api = f"http://127.0.0.1:{port}/api/v1"
            async with session.get(f"{api}/status") as response:
                assert response.status == 200
                assert (await response.json())["charge_point_id"] == "CP-BOARD"
            # No plant on a board: the sim routes are not there.
            async with session.post(f"{api}/sim/rfid", json={"uid": "04A1B2C3"}) as response:
                assert response.status == 404
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    assert station.violations == []


def test_board_install_names_a_missing_backend(board_venv: Path, tmp_path: Path) -> None:
    """hal.backend: emulated needs the source tree: one clear line, exit code 2."""
    config = tmp_path / "emulated.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ocpp": {"csms_url": "ws://127.0.0.1:9/ocpp", "charge_point_id": "CP-1"},
                "hal": {"backend": "emulated"},
                "state_dir": str(tmp_path / "state"),
                "api": {"port": 0},
            }
        )
    )
    result = run(board_venv, tmp_path, "run", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert "HAL backend 'emulated' cannot be loaded: No module named 'hal.emulated'" in (
        result.stderr
    )
