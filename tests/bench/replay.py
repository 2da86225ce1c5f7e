"""Replay of a 10,000-message backlog: vs a bare `ocpp` client sending the same CALLs,
and against a CSMS that answers slowly, with and without packing MeterValues."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from hil.csms import BenchCsms, StationLog
from tests.bench.common import (
    ROOT,
    fill_backlog,
    memory_kb,
    start_daemon,
    stop_daemon,
    write_config,
)
from tests.integration.harness import call_frames

TX_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")


def _span(log: StationLog) -> float:
    """Seconds from the first to the last transaction message the CSMS received."""
    times = [f.at for f in call_frames(log, *TX_ACTIONS)]
    return times[-1] - times[0]


async def _wait_stop(log: StationLog, pid: int | None, timeout: float) -> int:
    peak_rss = 0
    async with asyncio.timeout(timeout):
        while not log.calls("StopTransaction"):
            if pid is not None:
                peak_rss = max(peak_rss, memory_kb(pid, "VmRSS"))
            await asyncio.sleep(0.1)
    if pid is not None:
        peak_rss = max(peak_rss, memory_kb(pid, "VmHWM"))
    return peak_rss


async def run(count: int = 10_000) -> dict[str, Any]:
    async with BenchCsms(heartbeat_interval=3600) as csms:
        with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
            workdir = Path(tmp)
            # One message per CALL, as the bare client sends them.
            config = write_config(
                workdir, csms.url, "REPLAY-1", settings={"queue": {"replay_batch_max": 1}}
            )
            fill_backlog(workdir / "state", count)
            proc = await start_daemon(config)
            try:
                log = await csms.wait_connected("REPLAY-1", timeout=30)
                peak_kb = await _wait_stop(log, proc.pid, timeout=600)
            finally:
                await stop_daemon(proc)
        ours = _span(log)
        delivered = sum(len(log.calls(a)) for a in TX_ACTIONS)

        bare = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.bare_client",
            csms.url,
            "BARE-1",
            str(count),
            cwd=str(ROOT),
        )
        bare_log = await csms.wait_connected("BARE-1", timeout=30)
        await _wait_stop(bare_log, None, timeout=600)
        await bare.wait()
        theirs = _span(bare_log)
    return {
        "messages": delivered,
        "replay_msgs_per_s": delivered / ours,
        "bare_msgs_per_s": count / theirs,
        "ratio": (delivered / ours) / (count / theirs),
        "peak_rss_mb": peak_kb / 1024,
    }


async def queued_rss(count: int = 100_000) -> float:
    """RSS (MB) of a daemon that starts with ``count`` messages queued and cannot reach its CSMS."""
    async with BenchCsms(heartbeat_interval=3600) as csms:
        csms.refuse = True
        with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
            workdir = Path(tmp)
            config = write_config(workdir, csms.url, "QUEUE-1")
            fill_backlog(workdir / "state", count)
            proc = await start_daemon(config)
            try:
                await asyncio.sleep(5)
                return memory_kb(proc.pid, "VmHWM") / 1024
            finally:
                await stop_daemon(proc)


async def slow_link(samples: int, delay_s: float, batch_max: int | None) -> dict[str, float]:
    """Replay of ``samples`` queued MeterValues between a StartTransaction and a
    StopTransaction, the CSMS answering every CALL ``delay_s`` after handling it
    (``batch_max`` None: the daemon's default packing)."""
    async with BenchCsms(heartbeat_interval=3600) as csms:
        csms.answer_delay_s = delay_s
        with tempfile.TemporaryDirectory(prefix="bench-slow-") as tmp:
            workdir = Path(tmp)
            queue = {} if batch_max is None else {"queue": {"replay_batch_max": batch_max}}
            config = write_config(workdir, csms.url, "SLOW-1", settings=queue)
            fill_backlog(workdir / "state", samples + 2)
            proc = await start_daemon(config)
            try:
                log = await csms.wait_connected("SLOW-1", timeout=30)
                await _wait_stop(log, None, timeout=120 + samples * (delay_s + 0.05))
            finally:
                await stop_daemon(proc)
    requests = log.calls("MeterValues")
    return {
        "seconds": _span(log),
        "requests": len(requests),
        "entries": sum(len(mv["meterValue"]) for mv in requests),
        "violations": len(log.violations),
    }
