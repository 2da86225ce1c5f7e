"""The bench runner (``python -m hil``) end to end, as CI and a test engineer run it."""

from __future__ import annotations

import asyncio
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hil.csms import BenchCsms
from hil.process import deep_merge, free_port, version_overrides
from tests.integration.harness import ROOT, Daemon, inherited_env
from tests.unit.test_hil_scenarios import EXPECTED


async def run_hil(*args: str, timeout: float = 240) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hil",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=str(ROOT),
        env=inherited_env(),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def table(stdout: str) -> dict[str, str]:
    """scenario → result, from the table the runner prints."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["scenario", "result"])
    return {line.split()[0]: line.split()[1] for line in lines[header + 2 : -1]}


def junit_cases(path: Path) -> tuple[ET.Element, dict[str, ET.Element]]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    return suite, {c.get("name", ""): c for c in suite.findall("testcase")}


@pytest.mark.timeout(300)
async def test_all_scenarios_on_emulated_hardware(tmp_path: Path) -> None:
    report = tmp_path / "hil.xml"
    code, out, err = await run_hil("--backend", "emulated", "--junit", str(report))
    assert code == 0, out + err
    assert table(out) == dict.fromkeys(EXPECTED, "PASS")
    assert out.splitlines()[-1] == f"{len(EXPECTED)} scenarios: {len(EXPECTED)} passed, " + (
        "0 failed, 0 errors, 0 not applicable"
    )
    suite, cases = junit_cases(report)
    assert list(cases) == EXPECTED
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        str(len(EXPECTED)),
        "0",
        "0",
    )
    assert suite.get("skipped") == "0"
    assert all(list(case) == [] for case in cases.values())
    assert float(cases["tap_plug_first"].get("time", "")) > 0
    props = suite.find("properties")
    assert props is not None
    assert {p.get("name"): p.get("value") for p in props}["station"] == (
        "emulated (started by the runner)"
    )
    assert "kept the station's files" not in err  # a clean run leaves nothing behind


@pytest.mark.timeout(300)
async def test_all_scenarios_in_2_0_1(tmp_path: Path) -> None:
    """The same scenarios over OCPP 2.0.1, on the simulated plant; the one about the
    station-wide status (connector 0) does not apply."""
    report = tmp_path / "hil.xml"
    code, out, err = await run_hil("--ocpp", "2.0.1", "--junit", str(report))
    assert code == 0, out + err
    assert table(out) == dict.fromkeys(EXPECTED, "PASS") | {"fault_reader_offline": "N/A"}
    assert "starting the firmware (simulated, OCPP 2.0.1)" in err
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert "(reason PowerUp): booted at start, 1 EVSE(s)" in rows["boot"]
    assert re.search(r"transaction [0-9a-f]{8}-\d+, \d+ Wh, stopped Local", rows["tap_plug_first"])
    suite, cases = junit_cases(report)
    assert list(cases) == EXPECTED
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("0", "0", "1")
    skipped = cases["fault_reader_offline"].find("skipped")
    assert skipped is not None
    assert (skipped.get("message") or "").startswith(
        "N/A: OCPP 2.0.1 has no status of the station as a whole"
    )
    props = suite.find("properties")
    assert props is not None
    assert {p.get("name"): p.get("value") for p in props}["ocpp"] == "2.0.1"


async def running_station(
    workdir: Path, csms_port: int, version: str = "1.6", **overrides: object
) -> Daemon:
    """A station started on its own (HAL_BACKEND), pointed at a CSMS that is not up yet."""
    csms = BenchCsms(port=csms_port)  # only for the address: the runner brings its own
    config = deep_merge(
        {"ocpp": {"charge_point_id": "EXT-CP-1", **overrides}}, version_overrides(version)
    )
    daemon = Daemon(csms, workdir, config)
    await daemon.start(wait_boot=False)
    return daemon


@pytest.mark.timeout(300)
async def test_a_running_station_and_power_cut_not_applicable(tmp_path: Path) -> None:
    port = free_port()
    daemon = await running_station(tmp_path, port)
    report = tmp_path / "hil.xml"
    try:
        code, out, err = await run_hil(
            "--station",
            daemon.api,
            "--csms-host",
            "127.0.0.1",
            "--csms-port",
            str(port),
            "--junit",
            str(report),
        )
    finally:
        await daemon.stop()
    assert code == 0, out + err
    expected = dict.fromkeys(EXPECTED, "PASS") | {"power_cut": "N/A"}
    assert table(out) == expected
    assert "1 not applicable" in out.splitlines()[-1]
    suite, cases = junit_cases(report)
    assert list(cases) == EXPECTED
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("0", "0", "1")
    skipped = cases["power_cut"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "N/A: the runner does not own the station's process"
    assert all(not list(c) for name, c in cases.items() if name != "power_cut")


async def test_a_misbehaving_station_fails_and_the_run_goes_on(tmp_path: Path) -> None:
    port = free_port()
    # Unplugging no longer ends the session: tap_first expects StopTransaction EVDisconnected.
    daemon = await running_station(
        tmp_path, port, config={"StopTransactionOnEVSideDisconnect": False}
    )
    report = tmp_path / "hil.xml"
    try:
        code, out, err = await run_hil(
            "--station",
            daemon.api,
            "--csms-host",
            "127.0.0.1",
            "--csms-port",
            str(port),
            "--only",
            "tap_first,remote_start_stop",
            "--timeout",
            "5",
            "--junit",
            str(report),
        )
    finally:
        await daemon.stop()
    assert code == 1, out + err
    assert table(out) == {"tap_first": "FAIL", "remote_start_stop": "PASS"}
    suite, cases = junit_cases(report)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    failure = cases["tap_first"].find("failure")
    assert failure is not None
    assert "StopTransaction" in (failure.get("message") or "")
    frames = cases["tap_first"].find("system-out")
    assert frames is not None and "EXT-CP-1 → CSMS  CALL StartTransaction" in (frames.text or "")
    assert list(cases["remote_start_stop"]) == []


async def test_a_running_2_0_1_station_boots_on_a_reset_and_another_version_is_refused(
    tmp_path: Path,
) -> None:
    port = free_port()
    daemon = await running_station(tmp_path, port, "2.0.1")
    where = ("--station", daemon.api, "--csms-host", "127.0.0.1", "--csms-port", str(port))
    try:
        # Registered with another CSMS at that address first: the runner's finds it booted.
        async with BenchCsms(port=port, versions=["2.0.1"]) as earlier:
            await earlier.wait_connected("EXT-CP-1", timeout=15)
            await earlier.station("EXT-CP-1").wait_for("StatusNotification", timeout=15)
        code, out, err = await run_hil(*where, "--ocpp", "2.0.1", "--only", "boot")
        refused = await run_hil(*where, "--only", "boot", "--connect-timeout", "30")
    finally:
        await daemon.stop()
    assert code == 0, out + err
    assert "(reason RemoteReset): booted after Reset Immediate, 1 EVSE(s)" in out
    code, out, err = refused
    assert code == 1
    assert table(out) == {"boot": "ERROR"}
    assert (
        "EXT-CP-1 offered ocpp2.0.1; the bench speaks ocpp1.6 (--ocpp 1.6): "
        "run with --ocpp 2.0.1" in err
    )


async def test_usage_errors(tmp_path: Path) -> None:
    code, _out, err = await run_hil("--only", "boot,nonsense")
    assert code == 2 and "unknown scenario(s): nonsense" in err
    code, _out, err = await run_hil("--operator")
    assert code == 2 and "--operator needs a running station" in err
    code, _out, err = await run_hil("--backend", "emulated", "--station", "http://x")
    assert code == 2 and "--backend starts a station" in err
    code, out, _err = await run_hil("--list")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == EXPECTED


async def test_an_unreachable_station_is_reported_as_errors(tmp_path: Path) -> None:
    report = tmp_path / "hil.xml"
    dead = f"http://127.0.0.1:{free_port()}/api/v1"
    # Any free port on loopback: the runner's defaults (0.0.0.0:9000) are for a real bench.
    code, out, err = await run_hil(
        "--station",
        dead,
        "--csms-host",
        "127.0.0.1",
        "--csms-port",
        "0",
        "--only",
        "boot,power_cut",
        "--junit",
        str(report),
    )
    assert code == 1
    assert table(out) == {"boot": "ERROR", "power_cut": "ERROR"}
    assert "cannot read the charge point id" in err
    suite, cases = junit_cases(report)
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("2", "2", "0")
    error = cases["boot"].find("error")
    assert error is not None and "bench setup failed" in (error.get("message") or "")
