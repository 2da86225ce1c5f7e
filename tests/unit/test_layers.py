"""The station's rules import nothing from the protocol front-ends (firmware/ocpp/)
nor the queue their messages wait in (firmware/queue.py).

Arrows point from a front-end to the core: the core reads its settings from
``firmware.settings``, announces what happened to a transaction through its
journal and asks the CSMS through what the front-end hands it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
CORE = ["connector", "auth", "smart_charging", "reservations", "management"]
CORE_MODULES = ["station.py", "settings.py", "metering.py"]
FRONT_END = ("firmware.ocpp", "firmware.queue")


def _core_files() -> list[Path]:
    files = [path for name in CORE for path in sorted((FIRMWARE / name).rglob("*.py"))]
    return files + [FIRMWARE / name for name in CORE_MODULES]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_core_is_where_it_is_expected() -> None:
    files = _core_files()
    assert len(files) > 30 and all(path.is_file() for path in files)


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_core_module_imports_no_front_end(path: Path) -> None:
    front_end = sorted(
        name
        for name in _imports(path)
        if any(name == top or name.startswith(top + ".") for top in FRONT_END)
    )
    assert front_end == [], f"{path.relative_to(FIRMWARE)} imports {front_end}"


def test_the_check_sees_a_front_end_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from firmware.ocpp.rpc import Rpc\nimport firmware.ocpp.errors\n")
    assert {"firmware.ocpp.rpc", "firmware.ocpp.errors"} <= _imports(bad)
    bad.write_text("from firmware import queue\n")
    assert "firmware.queue" in _imports(bad)


def test_the_app_reaches_the_1_6_protocol_only_through_its_front_end() -> None:
    """app.py wires the core to a front-end object; the 1.6 handlers are the front-end's."""
    v16 = sorted(
        name
        for name in _imports(FIRMWARE / "app.py")
        if name.startswith("firmware.ocpp.v16")
        and not name.startswith("firmware.ocpp.v16.front_end")
    )
    assert v16 == []
    assert "firmware.ocpp.v16.front_end.V16FrontEnd" in _imports(FIRMWARE / "app.py")
