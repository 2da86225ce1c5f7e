"""`make demo`: one tap-to-charge session on simulated hardware against the bench CSMS.

`make demo OCPP=2.0.1` (``python -m hil.demo --ocpp 2.0.1``) runs the same session
over OCPP 2.0.1.

Starts the bench CSMS in this process, the charge point daemon as a child
process (exactly as `chargepoint run` would run on a board), plays a driver
through the local API, and prints the OCPP exchange as it happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from hil.csms import BenchCsms

TAG = "04A1B2C3"
MEASURANDS = ("Energy.Active.Import.Register", "Power.Active.Import", "SoC")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(text: str) -> None:
    print(f"\n\033[1m▶ {text}\033[0m", flush=True)


class Driver:
    """Plays the driver and the vehicle through the local API."""

    def __init__(self, api: str) -> None:
        self.api = api

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as s, s.post(self.api + path, json=body) as r:
            if r.status != 200:
                raise RuntimeError(f"{path}: {r.status} {await r.text()}")

    async def status(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, s.get(self.api + "/status") as r:
            data: dict[str, Any] = await r.json()
            return data

    async def connector(self) -> dict[str, Any]:
        found: dict[str, Any] = (await self.status())["connectors"][0]
        return found

    async def plug(self, state: str) -> None:
        await self._post("/sim/connectors/1", {"cp_state": state})

    async def tap(self, uid: str) -> None:
        await self._post("/sim/rfid", {"uid": uid})

    async def wait(self, what: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError, KeyError):
                c = await self.connector()
                if predicate(c):
                    return c
            await asyncio.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")


class Exchange:
    """What the session looks like on the wire in one OCPP version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.v201 = version == "2.0.1"

    def ocpp(self) -> dict[str, Any]:
        if self.v201:
            return {"version": "2.0.1"}
        return {
            "config": {
                "MeterValueSampleInterval": 2,
                "MeterValuesSampledData": ",".join(MEASURANDS),
            }
        }

    def device_model(self) -> dict[str, Any]:
        if not self.v201:
            return {}
        return {
            "device_model": {
                "SampledDataCtrlr": {
                    "TxUpdatedInterval": 2,
                    "TxUpdatedMeasurands": ",".join(MEASURANDS),
                }
            }
        }

    def status(self, status: str) -> Any:
        """A predicate on StatusNotification: 1.6 ``status`` on connector 1 (2.0.1: its
        connectorStatus on EVSE 1, where Preparing is Occupied); ``*``: any status."""
        if self.v201:
            wanted = "Occupied" if status == "Preparing" else status
            return lambda p: p["evseId"] == 1 and wanted in ("*", p["connectorStatus"])
        return lambda p: p["connectorId"] == 1 and (status == "*" or p["status"] == status)

    def started(self) -> tuple[str, Any]:
        if self.v201:
            return "TransactionEvent", lambda p: p["eventType"] == "Started"
        return "StartTransaction", None

    def sampled(self) -> tuple[str, Any]:
        if self.v201:
            return "TransactionEvent", lambda p: p["eventType"] == "Updated"
        return "MeterValues", None

    def ended(self) -> tuple[str, Any]:
        if self.v201:
            return "TransactionEvent", lambda p: p["eventType"] == "Ended"
        return "StopTransaction", None

    def summary(self, start: dict[str, Any], stop: dict[str, Any]) -> str:
        if self.v201:
            begin = start["meterValue"][0]["sampledValue"][0]["value"]
            end = stop["meterValue"][-1]["sampledValue"][0]["value"]
            info = stop["transactionInfo"]
            return (
                f"session done: transaction {info['transactionId']}, "
                f"{end - begin:.0f} Wh delivered, reason {info['stoppedReason']}"
            )
        delivered = stop["meterStop"] - start["meterStart"]
        return (
            f"session done: transaction {stop['transactionId']}, {delivered} Wh delivered, "
            f"reason {stop['reason']}"
        )


async def demo(workdir: Path, version: str = "1.6") -> int:
    wire = Exchange(version)
    async with BenchCsms(
        heartbeat_interval=30, printer=lambda line: print(line, flush=True), versions=[version]
    ) as csms:
        api_port = _free_port()
        config = {
            "ocpp": {
                "csms_url": csms.url,
                "charge_point_id": "DEMO-CP-1",
                "reconnect_min_s": 0.5,
                "reconnect_max_s": 5,
                "response_timeout_s": 10,
                **wire.ocpp(),
            },
            **wire.device_model(),
            "identity": {"vendor": "OpenChargeFW", "model": "Demo", "serial_number": "DEMO-0001"},
            "connectors": 1,
            "hal": {"backend": "simulated", "tick_s": 0.1},
            "state_dir": str(workdir / "state"),
            "api": {"host": "127.0.0.1", "port": api_port},
            "log_level": "WARNING",
        }
        config_path = workdir / "demo.yaml"
        config_path.write_text(yaml.safe_dump(config))
        _say(f"bench CSMS listening on {csms.url} (OCPP {version}); starting the charge point")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "firmware",
            "run",
            "--config",
            str(config_path),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        driver = Driver(f"http://127.0.0.1:{api_port}/api/v1")
        try:
            log = await csms.wait_connected("DEMO-CP-1", timeout=20)
            await log.wait_for("StatusNotification", wire.status("*"), timeout=20)
            _say("the driver plugs the vehicle in (control pilot A → B)")
            await driver.plug("B")
            await log.wait_for("StatusNotification", wire.status("Preparing"))
            _say(f"the driver taps card {TAG}")
            await driver.tap(TAG)
            start = await log.wait_for(*wire.started())
            _say("the vehicle asks for energy (B → C); the contactor closes")
            await driver.plug("C")
            await driver.wait("charging", lambda c: c["status"] == "Charging")
            await log.wait_for(*wire.sampled(), timeout=10)
            await asyncio.sleep(3)
            c = await driver.connector()
            print(
                f"   charging at {c['power_w'] / 1000:.1f} kW, "
                f"{c['offered_current_a']:.0f} A offered",
                flush=True,
            )
            _say(f"the driver taps card {TAG} again to stop")
            await driver.tap(TAG)
            stop = await log.wait_for(*wire.ended())
            _say("the driver unplugs (C → A)")
            mark = log.mark()
            await driver.plug("A")
            await log.wait_for("StatusNotification", wire.status("Available"), since=mark)
            _say(wire.summary(start, stop))
            return 0
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(12):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.demo", description=__doc__)
    parser.add_argument("--ocpp", choices=("1.6", "2.0.1"), default="1.6", help="OCPP version")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chargepoint-demo-") as tmp:
        try:
            return asyncio.run(demo(Path(tmp), args.ocpp))
        except (RuntimeError, TimeoutError) as err:
            print(f"demo failed: {err}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
