"""systemd/chargepoint.service: `systemd-analyze verify` and what the firmware relies on."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from firmware.config import Config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "chargepoint.service"
SYSUSERS = ROOT / "systemd" / "chargepoint.sysusers"
UDEV_RULE = ROOT / "systemd" / "60-chargepoint-gpio.rules"
EXEC = "/opt/chargepoint/venv/bin/chargepoint"
HOST_UNITS = [Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")]


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze not found: install the systemd package (apt-get install systemd)"
    return found


def verify_root(tmp_path: Path, unit_text: str, *, with_exec: bool = True) -> Path:
    """A root for ``--root=``: the host's own units (the targets ours refers to),
    ours in /etc/systemd/system, and an executable at ExecStart's path."""
    units = next((d for d in HOST_UNITS if (d / "sysinit.target").exists()), None)
    assert units is not None, f"no systemd units in {HOST_UNITS}: install the systemd package"
    root = tmp_path / "root"
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    if with_exec:
        exe = root / EXEC.lstrip("/")
        exe.parent.mkdir(parents=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    target = root / "etc/systemd/system/chargepoint.service"
    target.parent.mkdir(parents=True)
    target.write_text(unit_text)
    return root


def verify(root: Path) -> tuple[int, list[str]]:
    """Exit code and every line systemd-analyze printed about our unit."""
    result = subprocess.run(
        [systemd_analyze(), "verify", f"--root={root}", "/etc/systemd/system/chargepoint.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = (result.stdout + result.stderr).splitlines()
    return result.returncode, [line for line in lines if "chargepoint" in line]


def test_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    code, about_unit = verify(verify_root(tmp_path, UNIT.read_text()))
    assert (code, about_unit) == (0, [])


@pytest.mark.parametrize(
    ("change", "with_exec", "expected"),
    [
        (None, False, f"Command {EXEC} is not executable"),
        ("ProtectSystem=strict\nProtectEverything=yes", True, "Unknown key 'ProtectEverything'"),
    ],
)
def test_the_verification_catches_mistakes(
    tmp_path: Path, change: str | None, with_exec: bool, expected: str
) -> None:
    """The --root set-up keeps the checks: a missing ExecStart or a bad key is reported."""
    text = UNIT.read_text()
    if change is not None:
        text = text.replace("ProtectSystem=strict", change)
    _code, about_unit = verify(verify_root(tmp_path, text, with_exec=with_exec))
    assert any(expected in line for line in about_unit), about_unit


def _service() -> dict[str, list[str]]:
    """[Service] settings; keys that may repeat (DeviceAllow=) keep every value."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == "Service":
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match[1]) * (60 if match[2] == "min" else 1)


def test_unit_matches_what_the_daemon_does() -> None:
    service = _service()
    # sd_notify: READY=1 and the rest come from the main process itself.
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["ExecStart"][0].split()[0] == EXEC  # where scripts/install.sh puts it
    # SIGTERM drains within shutdown_timeout_s; systemd must not SIGKILL before.
    assert service["KillSignal"] == ["SIGTERM"]
    drain = next(f.default for f in dataclasses.fields(Config) if f.name == "shutdown_timeout_s")
    assert isinstance(drain, float)
    assert _seconds(service["TimeoutStopSec"][0]) >= drain + 5
    # The watchdog pings every half interval: leave room for a slow board.
    assert _seconds(service["WatchdogSec"][0]) >= 10
    assert service["User"] == ["chargepoint"]
    # The groups come with the user (systemd-sysusers), not SupplementaryGroups=: a board
    # without one of them would fail to start the service with 216/GROUP.
    assert "SupplementaryGroups" not in service
    sysusers = [line.split() for line in SYSUSERS.read_text().splitlines() if line[:1].isalpha()]
    assert ["m", "chargepoint", "gpio"] in sysusers and ["m", "chargepoint", "dialout"] in sysusers
    assert ["g", "gpio", "-"] in sysusers  # created where the board has none ...
    rule = UDEV_RULE.read_text()  # ... and given the GPIO chips the unit allows
    assert 'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' in rule
    devices = {value.split()[0] for value in service["DeviceAllow"]}
    assert {"char-gpiochip", "char-ttyS", "char-ttyUSB", "char-ttyACM", "char-ttyAMA"} <= devices
    assert "AF_CAN" in service["RestrictAddressFamilies"][0].split()
