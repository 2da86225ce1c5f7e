"""The ``device_model`` section: `check-config` and `run` refuse the same bad files alike.

Each bad file goes to both commands as real subprocesses: the same one line on
stderr, exit code 2, nothing started. A good section passes both: check-config
says OK (after its notice) and run registers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from firmware import preflight
from tests.integration.harness import Daemon
from tests.integration.test_check_config import ocpp, run_cli, write

MakeDaemon = Callable[..., Awaitable[Daemon]]

PREFIX = "chargepoint: configuration error: "

# name, device_model section (with connectors: 2), the whole line after the prefix
BAD: list[tuple[str, Any, str]] = [
    (
        "unknown component",
        {"TxCtrl": {"EVConnectionTimeOut": 30}},
        "device_model.TxCtrl: unknown component, did you mean 'TxCtrlr'?",
    ),
    (
        "unknown variable",
        {"TxCtrlr": {"EVConnectionTimeout2": 30}},
        "device_model.TxCtrlr.EVConnectionTimeout2: unknown variable of TxCtrlr, "
        "did you mean 'EVConnectionTimeOut'?",
    ),
    (
        "not an integer",
        {"TxCtrlr": {"EVConnectionTimeOut": "x"}},
        "device_model.TxCtrlr.EVConnectionTimeOut: must be an integer of at least 0, got 'x'",
    ),
    (
        "above its limit",
        {"SampledDataCtrlr": {"TxUpdatedInterval": {"Actual": 10, "MaxSet": 90000}}},
        "device_model.SampledDataCtrlr.TxUpdatedInterval.MaxSet: must be an integer between 0 "
        "and 86400, got 90000",
    ),
    (
        "an EVSE the station does not have",
        {"EVSE.3": {"AvailabilityState": "Available"}},
        "device_model.EVSE.3: unknown component: this station has EVSE.1, EVSE.2",
    ),
]


@pytest.mark.parametrize(("section", "line"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_both_commands_refuse_a_bad_device_model_alike(
    tmp_path: Path, section: Any, line: str
) -> None:
    path = write(tmp_path, {"ocpp": ocpp(), "connectors": 2, "device_model": section})
    checked = run_cli("check-config", "--config", str(path))
    ran = run_cli("run", "--config", str(path))
    for result in (checked, ran):
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"{PREFIX}{line}\n"
        assert result.stdout == ""
    assert not (tmp_path / "state").exists()


async def test_a_good_device_model_passes_both(make_daemon: MakeDaemon) -> None:
    section: dict[str, Any] = {
        "TxCtrlr": {"EVConnectionTimeOut": 30, "StopTxOnInvalidId": True},
        "DeviceDataCtrlr": {"ItemsPerMessage[GetReport]": 4},
        "EVSE.1": {"AvailabilityState": "Available"},
        "Connector.1.1": {"ConnectorType": "cType2"},
        "SampledDataCtrlr": {"TxUpdatedInterval": {"Actual": 10, "MaxSet": 3600}},
    }
    d = await make_daemon(device_model=section)  # `run`: it starts and registers
    assert d.log.calls("BootNotification")
    result = await asyncio.to_thread(run_cli, "check-config", "--config", str(d.config_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{d.config_path}: notice: {preflight.DEVICE_MODEL_NOTICE}\n{d.config_path}: OK\n"
    )
