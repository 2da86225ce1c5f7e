"""`chargepoint check-config` refuses exactly what `chargepoint run` refuses because of the file.

Each bad file goes to both commands as real subprocesses: the same one line on
stderr, exit code 2, and check-config starts nothing (no state database, no log
file). A good file passes both: check-config says OK and run registers.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hil.pki import Authority, write_pem
from tests.integration.harness import ROOT, Daemon

MakeDaemon = Callable[..., Awaitable[Daemon]]

# A board wired as on a Raspberry Pi, on gpiozero's mock pins and a virtual CAN bus,
# so `run` gets as far as the hardware without a board.
HARDWARE: dict[str, Any] = {
    "backend": "hardware",
    "gpio": {"factory": "mock"},
    "can": {"interface": "virtual", "channel": "check-config"},
    "relay": {"pin": 17, "feedback_pin": 27},
    "lock": {"lock_pin": 22, "unlock_pin": 23, "feedback_pin": 24},
    "meter": {"port": "/dev/null"},
    "rfid": [{"driver": "lines", "port": "/dev/null"}],
}


def hardware(**changes: Any) -> dict[str, Any]:
    """HARDWARE with sections replaced (a value of None removes the section)."""
    hal = {**HARDWARE, **changes}
    return {k: v for k, v in hal.items() if v is not None}


def ocpp(**changes: Any) -> dict[str, Any]:
    return {"csms_url": "ws://127.0.0.1:1/ocpp", "charge_point_id": "CP-CHECK", **changes}


# name, file content (state_dir and, for run, nothing else added), what the line names
BAD: list[tuple[str, dict[str, Any] | str, str]] = [
    ("yaml", "ocpp: [\n", "not valid YAML"),
    ("top-level typo", {"ocpp": ocpp(), "conectors": 2}, "conectors: unknown key"),
    ("ocpp.config unknown", {"ocpp": ocpp(config={"Nope": 1})}, "ocpp.config.Nope: unknown"),
    (
        "ocpp.config value",
        {"ocpp": ocpp(config={"HeartbeatInterval": -5})},
        "ocpp.config.HeartbeatInterval: must be between 0",
    ),
    (
        "Core left out",
        {"ocpp": ocpp(config={"SupportedFeatureProfiles": "Reservation"})},
        "ocpp.config.SupportedFeatureProfiles: must list Core",
    ),
    (
        "vendor key without prefix",
        {"ocpp": ocpp(vendor_key_prefixes=["ACME"], config={"FanMode": "eco"})},
        "ocpp.config.FanMode: unknown OCPP configuration key (vendor keys start with 'ACME')",
    ),
    (
        "vendor prefix of a standard key",
        {"ocpp": ocpp(vendor_key_prefixes=["Local"])},
        "ocpp.vendor_key_prefixes: 'Local' begins the standard key",
    ),
    (
        "profile 1 without a password",
        {"ocpp": ocpp(config={"SecurityProfile": 1})},
        "ocpp.config.SecurityProfile: 1 needs ocpp.password",
    ),
    (
        "profile 2 over ws://",
        {"ocpp": ocpp(password="0123456789abcdef", config={"SecurityProfile": 2})},
        "ocpp.config.SecurityProfile: security profile 2 needs a wss:// CSMS URL",
    ),
    (
        "plug and charge",
        {"ocpp": ocpp(config={"ISO15118PnCEnabled": True})},
        "ocpp.config.ISO15118PnCEnabled: must be false",
    ),
    (
        "API off loopback without a token",
        {"ocpp": ocpp(), "api": {"host": "0.0.0.0", "port": 0}},
        "api.token: required when api.host is not a loopback address (got '0.0.0.0')",
    ),
    ("unknown backend", {"ocpp": ocpp(), "hal": {"backend": "quantum"}}, "quantum"),
    (
        "simulated option",
        {"ocpp": ocpp(), "hal": {"backend": "simulated", "tick": 1}},
        "hal.tick: unknown option of the simulated backend",
    ),
    (
        "emulated meter map",
        {"ocpp": ocpp(), "hal": {"backend": "emulated", "meter_map": "sdm999"}},
        "hal.meter_map: no built-in meters file 'sdm999'",
    ),
    (
        "emulated connectors",
        {"ocpp": ocpp(), "connectors": 5, "hal": {"backend": "emulated"}},
        "connectors: the emulated board has room for 1..4",
    ),
    (
        "unknown driver",
        {"ocpp": ocpp(), "hal": hardware(relay={"driver": "spi", "pin": 17})},
        "hal.relay.driver: unknown driver 'spi'",
    ),
    (
        "unknown setting",
        {"ocpp": ocpp(), "hal": hardware(relay={"pin": 17, "colour": "red"})},
        "hal.relay.colour: unknown setting",
    ),
    (
        "missing setting",
        {"ocpp": ocpp(), "hal": hardware(relay={"feedback_pin": 27})},
        "hal.relay: required setting(s) missing: pin",
    ),
    (
        "pin used twice",
        {
            "ocpp": ocpp(),
            "hal": hardware(lock={"lock_pin": 17, "unlock_pin": 23, "feedback_pin": 24}),
        },
        "hal.lock: lock of connector 1: lock: GPIO 17: pin GPIO17 is already in use",
    ),
    (
        "missing port",
        {"ocpp": ocpp(), "hal": hardware(meter={"port": "/dev/ttyNOPE9"})},
        "hal.meter.port: /dev/ttyNOPE9 does not exist",
    ),
    (
        "unknown pin factory",
        {"ocpp": ocpp(), "hal": hardware(gpio={"factory": "pigpio9"})},
        "hal.gpio.factory: unknown pin factory 'pigpio9'",
    ),
    (
        "unknown CAN interface",
        {"ocpp": ocpp(), "hal": hardware(can={"interface": "nosuchcan"})},
        "hal.can.interface: unknown CAN interface 'nosuchcan'",
    ),
    (
        "missing CAN network interface",
        {"ocpp": ocpp(), "hal": hardware(can={"interface": "socketcan", "channel": "can9"})},
        "hal.can.channel: no network interface 'can9'",
    ),
    (
        "missing manufacturer roots",
        {"ocpp": ocpp(), "security": {"manufacturer_root_ca": "/nonexistent/roots.pem"}},
        "security.manufacturer_root_ca: cannot read /nonexistent/roots.pem: No such file",
    ),
    (
        "signing certificate not PEM",
        {"ocpp": ocpp(), "firmware_update": {"signing_certificate": "/dev/null"}},
        "firmware_update.signing_certificate: /dev/null: no PEM certificate",
    ),
]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def write(tmp_path: Path, content: dict[str, Any] | str) -> Path:
    path = tmp_path / "cp.yaml"
    state = f"state_dir: {tmp_path / 'state'}\n"
    if isinstance(content, str):
        path.write_text(content + state)
    else:
        path.write_text(yaml.safe_dump(content) + state)
    return path


@pytest.mark.parametrize(("content", "needle"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_both_commands_refuse_a_bad_file_alike(
    tmp_path: Path, content: dict[str, Any] | str, needle: str
) -> None:
    path = write(tmp_path, content)
    checked = run_cli("check-config", "--config", str(path))
    ran = run_cli("run", "--config", str(path))
    for result in (checked, ran):
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
    assert checked.stderr == ran.stderr
    assert checked.stderr.startswith("chargepoint: configuration error: ")
    assert needle in checked.stderr
    assert checked.stdout == ""


def test_an_unusable_log_file_is_refused_alike(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log directory should be\n")
    log_file = blocker / "logs" / "chargepoint.log"
    path = write(tmp_path, {"ocpp": ocpp(), "diagnostics": {"log_file": str(log_file)}})
    checked = run_cli("check-config", "--config", str(path))
    ran = run_cli("run", "--config", str(path))
    assert checked.returncode == ran.returncode == 2
    assert (
        checked.stderr
        == ran.stderr
        == (
            f"chargepoint: configuration error: diagnostics.log_file: cannot open {log_file}: "
            "Not a directory\n"
        )
    )


def test_check_config_starts_nothing(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "chargepoint.log"
    content = {
        "ocpp": ocpp(password="0123456789abcdef", config={"SecurityProfile": 0}),
        "diagnostics": {"log_file": str(log_file)},
        "hal": hardware(),
    }
    path = write(tmp_path, content)
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{path}: notice: ocpp.password is kept unused while SecurityProfile is 0 (no Basic "
        "auth); it is used once the CSMS raises SecurityProfile to 1",
        f"{path}: notice: firmware_update.require_signature: no manufacturer root "
        "(security.manufacturer_root_ca) and no firmware_update.signing_certificate: firmware "
        "updates are refused until the CSMS installs a ManufacturerRootCertificate",
        f"{path}: OK",
    ]
    assert result.stderr == ""
    assert not (tmp_path / "state").exists()
    assert not log_file.parent.exists()


async def test_a_good_file_passes_both(make_daemon: MakeDaemon) -> None:
    d = await make_daemon()  # `run`: it starts and registers
    assert d.log.calls("BootNotification")
    result = await asyncio.to_thread(run_cli, "check-config", "--config", str(d.config_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{d.config_path}: OK\n"


# ---------------------------------------------------------------- security provisioning


def _security_case(tmp_path: Path, case: str) -> tuple[dict[str, Any], str]:
    root = Authority.root("Provisioning Root")
    root_file = str(write_pem(tmp_path / "root.pem", root.cert))
    wss = ocpp(csms_url="wss://127.0.0.1:1/ocpp", password="0123456789abcdef")
    client = root.client("CP-CHECK")
    assert client.key is not None
    cert_file, _ = client.write(tmp_path, "client")
    if case == "missing root file":
        missing = tmp_path / "none.pem"
        return {"ocpp": wss, "security": {"csms_root_ca": str(missing)}}, (
            f"security.csms_root_ca: cannot read {missing}: No such file or directory"
        )
    if case == "root not PEM":
        (tmp_path / "junk.pem").write_text("junk\n")
        junk = str(tmp_path / "junk.pem")
        return {"ocpp": wss, "security": {"csms_root_ca": junk}}, "is not a PEM certificate"
    if case == "root not a CA":
        leaf = str(write_pem(tmp_path / "leaf.pem", root.server("csms.example").cert))
        return {"ocpp": wss, "security": {"csms_root_ca": leaf}}, "is not a CA certificate"
    if case == "key of another certificate":
        other = root.client("CP-CHECK")
        assert other.key is not None
        stray = str(write_pem(tmp_path / "stray.key", other.key))
        security = {"charge_point_certificate": str(cert_file), "charge_point_key": stray}
        return {"ocpp": wss, "security": security}, "is not the key of the certificate"
    if case == "certificate without key":
        security = {"charge_point_certificate": str(cert_file)}
        return {"ocpp": wss, "security": security}, (
            "security.charge_point_key: required with the other"
        )
    if case == "profile 2 without a root":
        return {"ocpp": {**wss, "config": {"SecurityProfile": 2}}}, (
            "ocpp.config.SecurityProfile: security profile 2 needs a CSMS root certificate"
        )
    if case == "profile 3 without a certificate":
        security = {"csms_root_ca": root_file}
        return {"ocpp": {**wss, "config": {"SecurityProfile": 3}}, "security": security}, (
            "security profile 3 needs a valid charge point certificate"
        )
    raise AssertionError(case)


SECURITY_CASES = [
    "missing root file",
    "root not PEM",
    "root not a CA",
    "key of another certificate",
    "certificate without key",
    "profile 2 without a root",
    "profile 3 without a certificate",
]


@pytest.mark.parametrize("case", SECURITY_CASES)
def test_both_commands_refuse_bad_security_provisioning_alike(tmp_path: Path, case: str) -> None:
    content, needle = _security_case(tmp_path, case)
    path = write(tmp_path, content)
    checked = run_cli("check-config", "--config", str(path))
    ran = run_cli("run", "--config", str(path))
    for result in (checked, ran):
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
    assert checked.stderr == ran.stderr
    assert needle in checked.stderr
    assert not (tmp_path / "state").exists()


def test_check_config_names_doubtful_provisioning(tmp_path: Path) -> None:
    root = Authority.root("Provisioning Root")
    client = root.client("someone-else")
    cert_file, key_file = client.write(tmp_path, "client")
    key_file.chmod(0o644)
    content = {
        "ocpp": ocpp(csms_url="wss://127.0.0.1:1/ocpp"),
        "security": {"charge_point_certificate": str(cert_file), "charge_point_key": str(key_file)},
    }
    path = write(tmp_path, content)
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{path}: notice: security.charge_point_certificate: its common name 'someone-else' is "
        "not the charge point id 'CP-CHECK'; the CSMS may refuse it",
        f"{path}: notice: security.charge_point_key: {key_file} can be read by other users; "
        "make it 0600, or remove it once the station has started (it keeps a copy)",
        f"{path}: OK",
    ]
