"""Real ``Connection`` objects against the bench CSMS over real websockets: when they reconnect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from firmware.ocpp.connection import Backoff, Connection, LinkState
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.rpc import Rpc
from hil.csms import BenchCsms


@dataclass
class Link:
    """One station's link: its Connection, and every state it reported, with when."""

    connection: Connection
    rpc: Rpc
    states: list[tuple[float, LinkState]] = field(default_factory=list)
    proven: asyncio.Event = field(default_factory=asyncio.Event)
    proofs: int = 0  # proofs that got the CSMS's answer and were judged

    def offline_delays(self) -> list[float]:
        return [s.retry_s for _, s in self.states if s.phase == "offline" and s.retry_s is not None]

    def connected_at(self) -> list[float]:
        return [at for at, s in self.states if s.phase == "connected"]


def make_link(
    csms: BenchCsms,
    cp_id: str,
    backoff: Backoff,
    spawn: Callable[[Coroutine[Any, Any, None]], None],
    *,
    stable_after_s: float,
    proof_ok: Callable[[], bool] = lambda: True,
) -> Link:
    rpc = Rpc(response_timeout_s=5, max_frame_bytes=65536, spawn=spawn)
    link: Link

    async def proof() -> bool:
        # What the station does: a Heartbeat the CSMS answers on this connection.
        try:
            await rpc.call("Heartbeat", {})
        except CallFailed:
            return False
        ok = proof_ok()
        link.proofs += 1
        if ok:
            link.proven.set()
        return ok

    connection = Connection(
        rpc,
        csms_url=csms.url,
        charge_point_id=cp_id,
        password=lambda: None,
        ping_interval_s=lambda: 0,
        backoff=backoff,
        open_timeout_s=5,
        on_state=lambda state: link.states.append((time.monotonic(), state)),
        stable_after_s=stable_after_s,
        proof=proof,
    )
    link = Link(connection, rpc)
    return link


class Runner:
    def __init__(self, tg: asyncio.TaskGroup) -> None:
        self.tg = tg
        self.tasks: list[asyncio.Task[None]] = []

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(self.tg.create_task(coro))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def csms() -> AsyncIterator[BenchCsms]:
    async with BenchCsms() as server:
        yield server


async def test_many_stations_spread_their_first_reconnect_after_a_csms_restart(
    csms: BenchCsms,
) -> None:
    stations, spread = 40, 1.0
    async with asyncio.TaskGroup() as tg:
        runner = Runner(tg)
        links = [
            make_link(
                csms,
                f"CP-{n:03d}",
                Backoff(0.5, 4.0, spread_s=spread),
                runner.spawn,
                stable_after_s=0.05,
            )
            for n in range(stations)
        ]
        for link in links:
            runner.spawn(link.connection.run())
        # Every link up and proved stable (a Heartbeat answered on it).
        await asyncio.wait_for(asyncio.gather(*(link.proven.wait() for link in links)), 30)
        await asyncio.sleep(0)  # the backoff is reset right after the proof
        # The CSMS restarts: every connection is closed at the same moment.
        restarted_at = time.monotonic()
        await csms.stop()
        await csms.start()
        await until(lambda: all(len(link.connected_at()) == 2 for link in links), 15, "reconnects")
        for task in runner.tasks:
            task.cancel()

    first_delays = [link.offline_delays()[0] for link in links]
    assert all(0.0 <= d <= spread for d in first_delays), first_delays
    back_after = sorted(link.connected_at()[1] - restarted_at for link in links)
    # Each came back no sooner than its own delay ...
    for link, delay in zip(links, first_delays, strict=True):
        assert link.connected_at()[1] - restarted_at >= delay - 0.01
    # ... so the stations are spread over the window instead of arriving together:
    # no tenth of it takes more than 40 % of them (4 in a tenth on average).
    slices = [
        sum(1 for d in first_delays if k / 10 <= d / spread < (k + 1) / 10) for k in range(10)
    ]
    assert max(slices) <= 0.4 * stations, slices
    assert back_after[-1] - back_after[0] >= spread / 2, back_after
    assert sum(csms.station(f"CP-{n:03d}").connections for n in range(stations)) == 2 * stations


async def test_a_link_that_drops_early_keeps_growing_the_backoff(csms: BenchCsms) -> None:
    async with asyncio.TaskGroup() as tg:
        runner = Runner(tg)
        link = make_link(
            csms,
            "CP-EARLY",
            Backoff(0.05, 0.2, lambda lo, hi: hi, spread_s=5.0),
            runner.spawn,
            stable_after_s=30.0,
        )
        runner.spawn(link.connection.run())
        log = csms.station("CP-EARLY")
        for n in range(1, 5):
            await until(lambda n=n: log.connections == n and log.connected, 5, f"connection {n}")
            await csms.drop("CP-EARLY")  # long before it could prove stable
        await until(lambda: len(link.offline_delays()) == 4, 5, "the fourth delay")
        for task in runner.tasks:
            task.cancel()
    assert link.offline_delays() == [0.05, 0.1, 0.2, 0.2]  # never spread, never reset


async def test_only_a_proved_link_resets_the_backoff(csms: BenchCsms) -> None:
    answers = iter([False, True])
    async with asyncio.TaskGroup() as tg:
        runner = Runner(tg)
        link = make_link(
            csms,
            "CP-PROOF",
            Backoff(0.05, 0.2, lambda lo, hi: hi, spread_s=0.3),
            runner.spawn,
            stable_after_s=0.05,
            proof_ok=lambda: next(answers),
        )
        log = csms.station("CP-PROOF")
        # A failed start-up connect, so the backoff has something to reset.
        csms.refuse = True
        runner.spawn(link.connection.run())
        await until(lambda: len(link.offline_delays()) == 2, 5, "two failed connects")
        csms.refuse = False
        # Up long enough, but its proof fails: the backoff goes on growing. (Dropped only
        # once the proof has its answer: a drop before it would leave the answer unused.)
        await until(lambda: log.connections == 1 and link.proofs == 1, 5, "proof")
        await csms.drop("CP-PROOF")
        await until(lambda: len(link.offline_delays()) == 3, 5, "the third delay")
        # Up long enough and proved: the next loss is spread.
        await asyncio.wait_for(link.proven.wait(), 5)
        await csms.drop("CP-PROOF")
        await until(lambda: len(link.offline_delays()) == 4, 5, "the fourth delay")
        # That reconnect fails: the backoff starts again from its minimum.
        csms.refuse = True
        await until(lambda: len(link.offline_delays()) == 5, 5, "the fifth delay")
        for task in runner.tasks:
            task.cancel()
    assert link.offline_delays() == [0.05, 0.1, 0.2, 0.3, 0.05]
