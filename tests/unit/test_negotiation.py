"""Subprotocol negotiation: a real ``Connection`` and ``Rpc`` against the bench CSMS.

The station offers the subprotocols of its versions; the bench (``BenchCsms.versions``)
selects one; the connection then speaks it, or is refused when nothing here speaks it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from firmware.ocpp.connection import Backoff, Connection, LinkState, VersionCheck
from firmware.ocpp.rpc import Rpc
from hil.csms import BenchCsms


@dataclass
class Station:
    connection: Connection
    rpc: Rpc
    states: list[LinkState] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_state(self, state: LinkState) -> None:
        self.states.append(state)
        self.changed.set()

    async def wait(self, predicate: Callable[[list[LinkState]], bool], timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.states):
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Bench:
    csms: BenchCsms
    tg: asyncio.TaskGroup
    stations: list[asyncio.Task[None]] = field(default_factory=list)

    def station(
        self, versions: Sequence[str], check_version: VersionCheck | None = None
    ) -> Station:
        rpc = Rpc(response_timeout_s=2, max_frame_bytes=65536, spawn=self._spawn)
        station: Station
        connection = Connection(
            rpc,
            csms_url=self.csms.url,
            charge_point_id="CP-1",
            ping_interval_s=lambda: 0,
            backoff=Backoff(0.05, 0.4, rng=lambda low, high: high),
            open_timeout_s=2,
            on_state=lambda state: station.on_state(state),
            versions=versions,
            check_version=check_version,
        )
        station = Station(connection, rpc)
        self.stations.append(self.tg.create_task(connection.run()))
        return station

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.stations.append(self.tg.create_task(coro))


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    async with BenchCsms() as csms, asyncio.TaskGroup() as tg:
        b = Bench(csms, tg)
        try:
            yield b
        finally:
            for task in b.stations:
                task.cancel()


async def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def connected(states: list[LinkState]) -> bool:
    return any(s.phase == "connected" for s in states)


async def test_auto_speaks_16_with_a_16_only_csms(bench: Bench) -> None:
    station = bench.station(("2.0.1", "1.6"))
    await station.wait(connected)
    assert station.states[-1] == LinkState("connected", station.connection.url, version="1.6")
    assert station.connection.version == station.rpc.version == "1.6"
    assert "currentTime" in await station.rpc.call("Heartbeat", {})
    log = bench.csms.station("CP-1")
    assert log.versions == ["1.6"] and log.violations == []


async def test_auto_speaks_201_when_the_csms_selects_it(bench: Bench) -> None:
    bench.csms.versions = ["2.0.1", "1.6"]
    station = bench.station(("2.0.1", "1.6"))
    await station.wait(connected)
    assert station.states[-1].version == "2.0.1" and station.rpc.version == "2.0.1"
    assert "currentTime" in await station.rpc.call("Heartbeat", {}, version="2.0.1")
    log = bench.csms.station("CP-1")
    assert log.versions == ["2.0.1"] and log.violations == []


async def test_a_version_nothing_here_speaks_is_closed_and_retried(bench: Bench) -> None:
    bench.csms.versions = ["2.0.1", "1.6"]
    refused: list[str] = []

    def check(version: str) -> str | None:
        refused.append(version)
        return f"no OCPP {version} here"

    station = bench.station(("2.0.1", "1.6"), check)
    await station.wait(lambda states: sum(s.phase == "offline" for s in states) >= 3)
    offline = [s for s in station.states if s.phase == "offline"]
    assert {s.detail for s in offline} == {"no OCPP 2.0.1 here"}
    assert [s.retry_s for s in offline[:3]] == [0.05, 0.1, 0.2]  # the backoff grows
    assert not connected(station.states) and not station.rpc.connected
    assert station.connection.version is None and refused[:3] == ["2.0.1"] * 3
    log = bench.csms.station("CP-1")
    await until(lambda: len(log.closes) >= 3)
    assert log.closes[0] == (1000, "OCPP 2.0.1 is not available")
    assert log.calls() == [] and log.violations == []


async def test_no_common_version_fails_the_handshake_and_backs_off(bench: Bench) -> None:
    station = bench.station(("2.0.1",))
    await station.wait(lambda states: sum(s.phase == "offline" for s in states) >= 3)
    offline = [s for s in station.states if s.phase == "offline"]
    assert offline[0].detail == (
        f"cannot connect to {station.connection.url}: the CSMS selected none of the "
        "subprotocols offered (ocpp2.0.1)"
    )
    assert [s.retry_s for s in offline[:3]] == [0.05, 0.1, 0.2]
    log = bench.csms.station("CP-1")
    assert log.unsupported_offers[:3] == [["ocpp2.0.1"]] * 3
    assert log.connections == 0 and log.violations == []
    # The CSMS learns 2.0.1: the next attempt gets through.
    bench.csms.versions = ["2.0.1"]
    started = time.monotonic()
    await station.wait(connected)
    assert station.states[-1].version == "2.0.1" and time.monotonic() - started < 2


def test_unknown_versions_are_refused() -> None:
    rpc = Rpc(response_timeout_s=1, max_frame_bytes=1024, spawn=lambda coro: coro.close())
    for versions in ((), ("2.1",), ("1.6", "ocpp2.0.1")):
        with pytest.raises(ValueError, match="unknown OCPP versions"):
            Connection(
                rpc,
                csms_url="ws://127.0.0.1:1/ocpp",
                charge_point_id="CP-1",
                ping_interval_s=lambda: 0,
                backoff=Backoff(1, 2),
                open_timeout_s=1,
                versions=versions,
            )
