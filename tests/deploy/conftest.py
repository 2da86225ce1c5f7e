"""What the deployment tests share: the board's dependency tree as wheels, installed offline."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
# The build backend: pip builds the package from the checkout in isolation.
BUILD_REQUIREMENTS = ("setuptools>=68", "wheel")


def wheelhouse_requirements() -> str:
    pins = [
        line.strip()
        for line in CONSTRAINTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return "\n".join(sorted({*pins, *BUILD_REQUIREMENTS})) + "\n"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """constraints.txt and the build backend as wheels, so each venv build installs offline.

    Kept in the test venv, by content: PyPI is asked again only when they change.
    """
    requirements = wheelhouse_requirements()
    digest = hashlib.sha256(requirements.encode()).hexdigest()[:16]
    wheels = Path(sys.prefix) / "test-wheelhouse" / digest
    if (wheels / "complete").exists():
        return wheels
    download = tmp_path_factory.mktemp("wheels")
    (download / "requirements.txt").write_text(requirements)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    pip += ["--no-deps", "--only-binary=:all:", "-d", str(download)]
    result = subprocess.run(
        [*pip, "-r", str(download / "requirements.txt")],
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


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def copy_source(target: Path) -> Path:
    """What a release holds of the checkout: enough to build the wheel."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        f"tar -C {ROOT} --exclude=__pycache__ -cf - pyproject.toml README.md firmware hal "
        f"config | tar -C {target} -xf -",
        shell=True,
        check=True,
    )
    return target


def build_board_venv(venv: Path, wheelhouse: Path, src: Path) -> Path:
    """A venv as scripts/install.sh builds it: no pip of its own, the package from ``src``
    with every dependency at the version constraints.txt pins, offline from the wheelhouse."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install"]
    pip += ["--quiet", "--no-index", "--find-links", str(wheelhouse)]
    result = subprocess.run(
        [*pip, "--constraint", str(CONSTRAINTS), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


def build_wheel(src: Path, out: Path) -> Path:
    """The wheel of the source tree at ``src``, built with this environment's setuptools."""
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"]
    result = subprocess.run(
        [*pip, "--no-build-isolation", "--wheel-dir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("chargepoint_firmware-*.whl")
    return wheel


@pytest.fixture(scope="session")
def board_venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """The firmware installed as on a board, at the board's path under a temporary root:
    ``<root>/opt/chargepoint/venv`` (its parent read-only to the daemon in the tests that
    need /opt as the service sees it)."""
    # Built once per run: pytest-xdist workers share the run's temporary directory
    # (the parent of their own) and take turns on a lock; the first one builds.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    root = shared / "board"
    venv = root / "opt" / "chargepoint" / "venv"
    root.mkdir(exist_ok=True)
    with (shared / "board.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "built").exists():
            shutil.rmtree(root / "opt", ignore_errors=True)
            src = copy_source(tmp_path_factory.mktemp("src"))
            build_board_venv(venv, wheelhouse, src)
            (root / "built").touch()
    return venv
