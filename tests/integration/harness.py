"""Runs the daemon as a real subprocess against the bench CSMS."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil import process
from hil.csms import BenchCsms, Frame, StationLog
from hil.plant import LocalApiPlant
from hil.process import ROOT, StationProcess, deep_merge, free_port, inherited_env

__all__ = [
    "HAL_BACKEND",
    "HAL_OPTIONS",
    "ROOT",
    "Daemon",
    "base_config",
    "call_frames",
    "charge_session_start",
    "deep_merge",
    "free_port",
    "inherited_env",
    "wait_until",
]

# The end-to-end suite runs against every backend with a plant behind the
# local API: `HAL_BACKEND=emulated pytest tests/integration` for the real drivers.
HAL_BACKEND = os.environ.get("HAL_BACKEND", "simulated")
HAL_OPTIONS = process.HAL_OPTIONS


def base_config(csms: BenchCsms, state_dir: Path, api_port: int) -> dict[str, Any]:
    return process.base_config(csms.url, state_dir, api_port, HAL_BACKEND)


@dataclass
class Daemon(StationProcess):
    """One charge point process (see hil.process) and the means to drive it."""

    backend: str = HAL_BACKEND

    @property
    def plant(self) -> LocalApiPlant:
        return LocalApiPlant(self.api)

    async def sim(self, connector: int = 1, **body: Any) -> None:
        await self.plant.sim(connector, **body)

    async def tap(self, uid: str, connector: int | None = None) -> None:
        await self.plant.tap(uid, connector)

    async def fault(self, fault: str, active: bool = True, connector: int = 1) -> None:
        await self.plant.set_fault(fault, active, connector)

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

    async def wait_link(self, connected: bool, timeout: float = 10) -> None:
        """Wait until the station itself reports its CSMS link up (or down)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await self.get("/status"))["ocpp"]["connected"] is connected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"link never {'up' if connected else 'down'}\n{self.tail()}")

    async def wait_queue_empty(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await self.get("/status"))["ocpp"]["queued"] == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("transaction messages still queued")


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
