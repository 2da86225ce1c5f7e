"""Items 7, 8, 10, 11: configuration errors, state, the local API and the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import ROOT, Daemon, charge_session_start

MakeDaemon = Callable[..., Awaitable[Daemon]]


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ocpp: {csms_url: http://x, charge_point_id: CP}\n", "ocpp.csms_url"),
        ("ocpp: {csms_url: ws://x}\n", "ocpp.charge_point_id"),
        ("ocpp: {csms_url: ws://x, charge_point_id: CP}\nconnectors: two\n", "connectors"),
        ("ocpp: {csms_url: ws://x, charge_point_id: CP, config: {Nope: 1}}\n", "ocpp.config.Nope"),
        (
            "ocpp: {csms_url: ws://x, charge_point_id: CP, config: {HeartbeatInterval: -5}}\n",
            "ocpp.config.HeartbeatInterval",
        ),
        ("ocpp: [\n", "YAML"),
        ("ocpp: {csms_url: ws://x, charge_point_id: CP}\napi: {host: 0.0.0.0}\n", "api.token"),
    ],
)
def test_bad_config_exits_2_with_one_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text + f"state_dir: {tmp_path}\n")
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("run", "--config", str(tmp_path / "none.yaml"))
    assert result.returncode == 2 and "none.yaml" in result.stderr


def test_unknown_hal_backend_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "cp.yaml"
    path.write_text(
        f"ocpp: {{csms_url: 'ws://127.0.0.1:1', charge_point_id: CP}}\n"
        f"hal: {{backend: quantum}}\nstate_dir: {tmp_path}\n"
    )
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 2 and "quantum" in result.stderr


@pytest.mark.parametrize(
    ("hal", "needle"),
    [
        (
            "{backend: hardware, gpio: {factory: mock}, relay: {pin: 17},"
            " lock: {driver: none}, can: {interface: virtual}, meter: {port: /dev/ttyNOPE7}}",
            "hal.meter.port: /dev/ttyNOPE7",
        ),
        (
            "{backend: hardware, gpio: {factory: mock}}",
            "hal.relay: required setting(s) missing: pin",
        ),
        ("{backend: hardware, relay: {driver: spi}}", "hal.relay.driver: unknown driver 'spi'"),
        ("{backend: emulated, relay_delay_s: soon}", "hal.relay_delay_s"),
    ],
)
def test_bad_hardware_settings_exit_2(tmp_path: Path, hal: str, needle: str) -> None:
    path = tmp_path / "cp.yaml"
    path.write_text(
        "ocpp: {csms_url: 'ws://127.0.0.1:1', charge_point_id: CP}\n"
        f"hal: {hal}\nstate_dir: {tmp_path}\n"
    )
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


async def test_status_api_contract(daemon: Daemon) -> None:
    await charge_session_start(daemon)
    data = await daemon.get("/status")
    assert set(data) >= {"charge_point_id", "ocpp", "connectors"}
    assert set(data["ocpp"]) >= {"connected", "registration", "queued"}
    c = data["connectors"][0]
    assert set(c) >= {
        "id",
        "status",
        "error_code",
        "transaction_id",
        "id_tag",
        "relay_closed",
        "locked",
        "offered_current_a",
        "power_w",
        "energy_wh",
    }
    assert c["id"] == 1 and c["status"] == "Charging" and c["id_tag"] == "AABBCCDD"


async def test_cli_status(daemon: Daemon) -> None:
    result = await asyncio.to_thread(
        run_cli, "status", "--api", f"http://127.0.0.1:{daemon.api_port}"
    )
    assert result.returncode == 0, result.stderr
    assert "CP-1" in result.stdout and "connector 1: Available" in result.stdout
    result = await asyncio.to_thread(
        run_cli, "status", "--config", str(daemon.config_path), "--json"
    )
    assert json.loads(result.stdout)["charge_point_id"] == "CP-1"
    result = await asyncio.to_thread(run_cli, "status", "--api", "http://127.0.0.1:1")
    assert result.returncode == 1 and "cannot reach" in result.stderr


@pytest.mark.parametrize(
    ("path", "body", "raw", "code"),
    [
        ("/sim/connectors/1", None, b"{not json", 400),
        ("/sim/connectors/1", [1, 2], None, 400),
        ("/sim/connectors/1", {}, None, 400),
        ("/sim/connectors/1", {"cp_state": "Z"}, None, 400),
        ("/sim/connectors/1", {"cp_state": 3}, None, 400),
        ("/sim/connectors/1", {"ev_max_current_a": "lots"}, None, 400),
        ("/sim/connectors/1", {"ev_max_current_a": 500}, None, 400),
        ("/sim/connectors/1", {"soc": 101}, None, 400),
        ("/sim/connectors/1", {"warp": 9}, None, 400),
        ("/sim/connectors/9", {"cp_state": "B"}, None, 404),
        ("/sim/connectors/x", {"cp_state": "B"}, None, 404),
        ("/sim/rfid", {}, None, 400),
        ("/sim/rfid", {"uid": "x" * 21}, None, 400),
        ("/sim/rfid", {"uid": "line\nbreak"}, None, 400),
        ("/sim/rfid", {"uid": 4242}, None, 400),
        ("/sim/rfid", {"uid": "04A1", "connector": 7}, None, 404),
        ("/sim/rfid", {"uid": "04A1", "connector": "1"}, None, 400),
        ("/sim/faults/1", {"fault": "gremlins", "active": True}, None, 400),
        ("/sim/faults/1", {"fault": "rcd_trip", "active": "yes"}, None, 400),
        ("/sim/faults/1", {"fault": "rcd_trip"}, None, 400),
        ("/sim/faults/9", {"fault": "rcd_trip", "active": True}, None, 404),
    ],
)
async def test_bad_api_bodies(
    daemon: Daemon, path: str, body: Any, raw: bytes | None, code: int
) -> None:
    status, data = await daemon.post(path, body, raw=raw)
    assert status == code
    assert isinstance(data, dict) and data["error"]
    assert (await daemon.get("/status"))["ocpp"]["connected"] is True


async def test_state_survives_sigkill(daemon: Daemon) -> None:
    await daemon.log.call("ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "77"})
    await daemon.log.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    await daemon.kill()
    await daemon.start()
    answer = await daemon.log.call("GetConfiguration", {"key": ["ConnectionTimeOut"]})
    assert answer["configurationKey"][0]["value"] == "77"
    assert (await daemon.connector())["status"] == "Unavailable"
