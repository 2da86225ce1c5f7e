"""What the deployment tests share: the board's dependency tree as wheels, installed offline."""

from __future__ import annotations

import hashlib
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
