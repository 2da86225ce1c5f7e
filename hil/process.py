"""The charge point firmware as a child process, on a configuration generated for the bench.

Used by the bench runner (``python -m hil --backend ...``) and by the end-to-end tests: the
daemon runs exactly as ``chargepoint run`` does on a board, pointed at a :class:`BenchCsms`,
with its local API on a free port and its state in a work directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from hil.csms import BenchCsms, StationLog
from hil.versions import V16, V201

__all__ = [
    "HAL_OPTIONS",
    "ROOT",
    "StationProcess",
    "StationProcessError",
    "base_config",
    "deep_merge",
    "free_port",
    "inherited_env",
    "version_overrides",
]

ROOT = Path(__file__).resolve().parents[1]
# A local API that does not answer within this is stuck, not slow.
API_TIMEOUT = aiohttp.ClientTimeout(total=10)

# Backends with a plant behind the local API, and the options that make them quick.
HAL_OPTIONS: dict[str, dict[str, Any]] = {"simulated": {"tick_s": 0.05}, "emulated": {}}

# A run started by systemd must not hand the daemons its service manager.
SERVICE_MANAGER_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class StationProcessError(RuntimeError):
    """The daemon did not start, answer or stop as expected (the message has its log's tail)."""


def inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SERVICE_MANAGER_VARS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


API_PORT_TRIES = 3  # starts of a daemon whose API port was taken meanwhile


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def base_config(csms_url: str, state_dir: Path, api_port: int, backend: str) -> dict[str, Any]:
    """A station configuration with short intervals, for ``backend`` (see :data:`HAL_OPTIONS`)."""
    return {
        "ocpp": {
            "csms_url": csms_url,
            "charge_point_id": "CP-1",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
            "response_timeout_s": 3,
            "boot_retry_s": 1,
            # CSMS restarts in the tests: reconnect within a fraction of a second.
            "reconnect_spread_s": 0.2,
            "backoff_reset_after_s": 0.5,
            "authorize_timeout_s": 3,
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
        "hal": {"backend": backend, **HAL_OPTIONS.get(backend, {})},
        "state_dir": str(state_dir),
        "api": {"host": "127.0.0.1", "port": api_port},
        "log_level": "DEBUG",
        "meter_poll_s": 0.2,
        "shutdown_timeout_s": 8,
        "safety": {"overcurrent_time_s": 0.5},
    }


def version_overrides(version: str) -> dict[str, Any]:
    """What :func:`base_config` needs on top to speak OCPP ``version`` with the same short
    intervals (its ``ocpp.config`` keys are 1.6's; 2.0.1 keeps them in the device model)."""
    if version == V16:
        return {}
    if version != V201:
        raise ValueError(f"OCPP version must be {V16!r} or {V201!r}, not {version!r}")
    return {
        "ocpp": {"version": V201},
        "device_model": {
            "OCPPCommCtrlr": {
                "WebSocketPingInterval": 0,
                "MessageAttemptInterval[TransactionEvent]": 1,
            }
        },
    }


@dataclass
class StationProcess:
    """One charge point process: its configuration file, its log file, its local API."""

    csms: BenchCsms
    workdir: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # on top of this process's environment
    proc: asyncio.subprocess.Process | None = None
    api_port: int = 0
    starts: int = 0
    backend: str = "simulated"

    def __post_init__(self) -> None:
        self.api_port = free_port()
        self.state_dir = self.workdir / "state"
        self.config_path = self.workdir / "cp.yaml"
        self.log_path = self.workdir / "daemon.log"
        self.write_config()

    @property
    def config(self) -> dict[str, Any]:
        base = base_config(self.csms.url, self.state_dir, self.api_port, self.backend)
        return deep_merge(base, self.overrides)

    @property
    def cp_id(self) -> str:
        return str(self.config["ocpp"]["charge_point_id"])

    @property
    def log(self) -> StationLog:
        return self.csms.station(self.cp_id)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        """The API token (``api.token``), when the configuration sets one."""
        token = self.config.get("api", {}).get("token")
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def write_config(self, extra: dict[str, Any] | None = None) -> None:
        if extra:
            self.overrides = deep_merge(self.overrides, extra)
        self.config_path.write_text(yaml.safe_dump(self.config))

    async def start(self, *, wait_boot: bool = True, boot_timeout: float = 15) -> None:
        self.starts += 1
        mark = len(self.log.calls("BootNotification"))
        for attempt in range(API_PORT_TRIES):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            await self._spawn()
            try:
                await self.wait_api()
                break
            except StationProcessError:
                # The API port came from free_port(); another process may have taken it
                # before the daemon bound it. Only that failure is retried, on a new port.
                if attempt + 1 == API_PORT_TRIES or not self._port_taken(logged):
                    raise
                self.api_port = free_port()
                self.write_config()
        if wait_boot:
            deadline = time.monotonic() + boot_timeout
            while len(self.log.calls("BootNotification")) <= mark:
                if time.monotonic() > deadline:
                    raise StationProcessError(
                        f"no BootNotification within {boot_timeout} s of the start:\n{self.tail()}"
                    )
                await asyncio.sleep(0.02)
            await self._wait_boot_answer(deadline)

    async def _wait_boot_answer(self, deadline: float) -> None:
        """Until the station has applied the CSMS's answer to its BootNotification when
        that answer was Accepted: a token presented before is decided offline."""
        boots = [
            f.message[1]
            for f in self.log.frames
            if f.direction == "in"
            and f.message
            and f.message[:1] == [2]
            and f.message[2] == "BootNotification"
        ]
        while time.monotonic() < deadline:
            answer = next(
                (
                    f.message
                    for f in self.log.frames
                    if f.direction == "out"
                    and f.message
                    and f.message[0] in (3, 4)
                    and f.message[1] == boots[-1]
                ),
                None,
            )
            if answer is not None:
                if answer[0] != 3 or answer[2].get("status") != "Accepted":
                    return
                if (await self.get("/status"))["ocpp"]["registration"] == "Accepted":
                    return
            await asyncio.sleep(0.02)
        raise StationProcessError(f"BootNotification not answered and applied:\n{self.tail()}")

    async def _spawn(self) -> None:
        with self.log_path.open("ab") as logfile:
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

    def _port_taken(self, since: int) -> bool:
        """Whether the daemon's log after byte ``since`` says its API port was in use."""
        with self.log_path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        return f"{self.api_port}): address already in use" in text

    async def wait_api(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise StationProcessError(f"daemon exited {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                await self.get("/status")
                return
            await asyncio.sleep(0.05)
        raise StationProcessError(f"API not up after {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_lines(self) -> list[str]:
        """The daemon's log so far, one record per line (every start appends)."""
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()

    async def wait_log(self, pattern: str, *, since: int = 0, timeout: float = 10) -> int:
        """Index of the first log line from ``since`` on that matches the regex ``pattern``.

        The daemon logs each decision it takes (a refused tag, a relay closed): waiting
        for that line proves the decision was made, where a sleep only hopes so.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines()
            for index in range(since, len(lines)):
                if regex.search(lines[index]):
                    return index
            if time.monotonic() > deadline:
                raise StationProcessError(
                    f"no log line matching {pattern!r} within {timeout} s:\n{self.tail()}"
                )
            await asyncio.sleep(0.02)

    async def get(self, path: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(timeout=API_TIMEOUT, headers=self.headers) as session,
            session.get(self.api + path) as r,
        ):
            r.raise_for_status()
            data: dict[str, Any] = await r.json()
            return data

    async def post(
        self, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> tuple[int, Any]:
        async with aiohttp.ClientSession(timeout=API_TIMEOUT, headers=self.headers) as session:
            kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
            async with session.post(self.api + path, **kwargs) as r:
                return r.status, await r.json(content_type=None)

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
            raise StationProcessError(
                f"daemon did not stop within {timeout} s:\n{self.tail()}"
            ) from None

    async def kill(self) -> None:
        """SIGKILL, as a power cut would end it."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
