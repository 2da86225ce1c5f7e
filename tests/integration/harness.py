"""Runs the daemon as a real subprocess against the bench CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from hil.csms import BenchCsms, Frame, StationLog

ROOT = Path(__file__).resolve().parents[2]

# The end-to-end suite runs against every backend with a plant behind the
# local API: `HAL_BACKEND=emulated pytest tests/integration` for the real drivers.
HAL_BACKEND = os.environ.get("HAL_BACKEND", "simulated")
HAL_OPTIONS: dict[str, dict[str, Any]] = {"simulated": {"tick_s": 0.05}, "emulated": {}}


# A test run started by systemd must not hand the daemons its service manager.
SERVICE_MANAGER_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SERVICE_MANAGER_VARS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def base_config(csms: BenchCsms, state_dir: Path, api_port: int) -> dict[str, Any]:
    return {
        "ocpp": {
            "csms_url": csms.url,
            "charge_point_id": "CP-1",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
            "response_timeout_s": 3,
            "boot_retry_s": 1,
            "config": {
                "HeartbeatInterval": 300,
                "MeterValueSampleInterval": 0,
                "WebSocketPingInterval": 0,
                "ConnectionTimeOut": 30,
                "TransactionMessageRetryInterval": 1,
            },
        },
        "identity": {
            "vendor": "TestVendor",
            "model": "TestModel",
            "serial_number": "SN-0001",
            "firmware_version": "9.9.9",
        },
        "connectors": 1,
        "hal": {"backend": HAL_BACKEND, **HAL_OPTIONS[HAL_BACKEND]},
        "state_dir": str(state_dir),
        "api": {"host": "127.0.0.1", "port": api_port},
        "log_level": "DEBUG",
        "meter_poll_s": 0.2,
        "shutdown_timeout_s": 8,
        "safety": {"overcurrent_time_s": 0.5},
    }


@dataclass
class Daemon:
    """One charge point process and the means to drive it."""

    csms: BenchCsms
    workdir: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # on top of the test's environment
    proc: asyncio.subprocess.Process | None = None
    api_port: int = 0
    starts: int = 0

    def __post_init__(self) -> None:
        self.api_port = free_port()
        self.state_dir = self.workdir / "state"
        self.config_path = self.workdir / "cp.yaml"
        self.log_path = self.workdir / "daemon.log"
        self.write_config()

    @property
    def config(self) -> dict[str, Any]:
        return deep_merge(base_config(self.csms, self.state_dir, self.api_port), self.overrides)

    @property
    def cp_id(self) -> str:
        return str(self.config["ocpp"]["charge_point_id"])

    @property
    def log(self) -> StationLog:
        return self.csms.station(self.cp_id)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    def write_config(self, extra: dict[str, Any] | None = None) -> None:
        if extra:
            self.overrides = deep_merge(self.overrides, extra)
        self.config_path.write_text(yaml.safe_dump(self.config))

    async def start(self, *, wait_boot: bool = True) -> None:
        self.starts += 1
        mark = len(self.log.calls("BootNotification"))
        logfile = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "firmware",
            "run",
            "--config",
            str(self.config_path),
            stdout=logfile,
            stderr=logfile,
            cwd=str(ROOT),
            env={**inherited_env(), "PYTHONUNBUFFERED": "1", **self.env},
        )
        logfile.close()
        await self.wait_api()
        if wait_boot:
            await wait_until(
                lambda: len(self.log.calls("BootNotification")) > mark,
                15,
                "BootNotification after start",
            )

    async def wait_api(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await self.get("/status")
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"API not up after {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def get(self, path: str) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(self.api + path) as r:
            r.raise_for_status()
            data: dict[str, Any] = await r.json()
            return data

    async def post(
        self, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
            async with session.post(self.api + path, **kwargs) as r:
                return r.status, await r.json(content_type=None)

    async def sim(self, connector: int = 1, **body: Any) -> None:
        status, data = await self.post(f"/sim/connectors/{connector}", body)
        assert status == 200, data

    async def tap(self, uid: str, connector: int | None = None) -> None:
        body: dict[str, Any] = {"uid": uid}
        if connector is not None:
            body["connector"] = connector
        status, data = await self.post("/sim/rfid", body)
        assert status == 200, data

    async def fault(self, fault: str, active: bool = True, connector: int = 1) -> None:
        status, data = await self.post(
            f"/sim/faults/{connector}", {"fault": fault, "active": active}
        )
        assert status == 200, data

    async def connector(self, connector: int = 1) -> dict[str, Any]:
        data = await self.get("/status")
        found: dict[str, Any] = data["connectors"][connector - 1]
        return found

    async def wait_connector(
        self, predicate: Callable[[dict[str, Any]], bool], connector: int = 1, timeout: float = 10
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = await self.connector(connector)
            if predicate(last):
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"connector {connector} never matched; last {last}\n{self.tail()}")

    async def wait_status(
        self, status: str, connector: int = 1, timeout: float = 10
    ) -> dict[str, Any]:
        """Wait for a StatusNotification with ``status`` seen by the CSMS.

        Waits consider only notifications after the previous match (or ``mark``),
        so a sequence of waits follows the order the statuses were reported in.
        """
        payload = await self.log.wait_for(
            "StatusNotification",
            lambda p: p["connectorId"] == connector and p["status"] == status,
            timeout=timeout,
            since=self._since,
        )
        calls = self.log.calls()
        self._since = next(i for i in range(len(calls) - 1, -1, -1) if calls[i] is payload) + 1
        return payload

    _since: int = 0

    def mark(self) -> int:
        """Later waits only consider CALLs after this point."""
        self._since = self.log.mark()
        return self._since

    async def wait_queue_empty(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await self.get("/status"))["ocpp"]["queued"] == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("transaction messages still queued")

    async def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self, timeout: float = 12) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(
                f"daemon did not stop within {timeout} s:\n{self.tail()}"
            ) from None

    async def kill(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


def call_frames(log: StationLog, *actions: str) -> list[Frame]:
    """CALL frames the station sent, in order (only those of ``actions`` if given)."""
    return [
        f
        for f in log.frames
        if f.direction == "in"
        and f.message
        and f.message[0] == 2
        and (not actions or f.message[2] in actions)
    ]


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def charge_session_start(d: Daemon, tag: str = "AABBCCDD") -> dict[str, Any]:
    """Plug in, tap, wait for Charging; returns the StartTransaction payload."""
    await d.sim(cp_state="B")
    await d.tap(tag)
    start = await d.log.wait_for("StartTransaction", lambda p: p["idTag"] == tag, since=d._since)
    await d.sim(cp_state="C")
    await d.wait_connector(lambda c: c["relay_closed"] and c["status"] == "Charging")
    return start
