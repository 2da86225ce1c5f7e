"""`make demo`: one tap-to-charge session on simulated hardware against the bench CSMS.

Starts the bench CSMS in this process, the charge point daemon as a child
process (exactly as `chargepoint run` would run on a board), plays a driver
through the local API, and prints the OCPP exchange as it happens.
"""

from __future__ import annotations

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


async def demo(workdir: Path) -> int:
    async with BenchCsms(
        heartbeat_interval=30, printer=lambda line: print(line, flush=True)
    ) as csms:
        api_port = _free_port()
        config = {
            "ocpp": {
                "csms_url": csms.url,
                "charge_point_id": "DEMO-CP-1",
                "reconnect_min_s": 0.5,
                "reconnect_max_s": 5,
                "response_timeout_s": 10,
                "config": {
                    "MeterValueSampleInterval": 2,
                    "MeterValuesSampledData": ",".join(MEASURANDS),
                },
            },
            "identity": {"vendor": "OpenChargeFW", "model": "Demo", "serial_number": "DEMO-0001"},
            "connectors": 1,
            "hal": {"backend": "simulated", "tick_s": 0.1},
            "state_dir": str(workdir / "state"),
            "api": {"host": "127.0.0.1", "port": api_port},
            "log_level": "WARNING",
        }
        config_path = workdir / "demo.yaml"
        config_path.write_text(yaml.safe_dump(config))
        _say(f"bench CSMS listening on {csms.url}; starting the charge point")
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
            await log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1, timeout=20)
            _say("the driver plugs the vehicle in (control pilot A → B)")
            await driver.plug("B")
            await log.wait_for("StatusNotification", lambda p: p["status"] == "Preparing")
            _say(f"the driver taps card {TAG}")
            await driver.tap(TAG)
            await log.wait_for("StartTransaction")
            _say("the vehicle asks for energy (B → C); the contactor closes")
            await driver.plug("C")
            await driver.wait("charging", lambda c: c["status"] == "Charging")
            await log.wait_for("MeterValues", timeout=10)
            await asyncio.sleep(3)
            c = await driver.connector()
            print(
                f"   charging at {c['power_w'] / 1000:.1f} kW, "
                f"{c['offered_current_a']:.0f} A offered",
                flush=True,
            )
            _say(f"the driver taps card {TAG} again to stop")
            await driver.tap(TAG)
            stop = await log.wait_for("StopTransaction")
            start = log.calls("StartTransaction")[0]
            _say("the driver unplugs (C → A)")
            mark = log.mark()
            await driver.plug("A")
            await log.wait_for(
                "StatusNotification", lambda p: p["status"] == "Available", since=mark
            )
            delivered = stop["meterStop"] - start["meterStart"]
            _say(
                f"session done: transaction {stop['transactionId']}, {delivered} Wh delivered, "
                f"reason {stop['reason']}"
            )
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


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="chargepoint-demo-") as tmp:
        try:
            return asyncio.run(demo(Path(tmp)))
        except (RuntimeError, TimeoutError) as err:
            print(f"demo failed: {err}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
