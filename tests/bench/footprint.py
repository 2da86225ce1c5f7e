"""Cold start, memory over many sessions, CPU idle and charging.

- Cold start: from the instant the bench starts the process to the
  BootNotification the bench CSMS receives (and, from the daemon's own DEBUG
  log, to the instant it sent the frame). The first start creates the state
  database; the median is over the restarts that find it in place.
- Memory: VmRSS of the daemon idle after boot, after a few sessions, and after
  1,000 plug → tap → charge → unplug sessions through the local API.
- CPU: user + system time of the daemon over a window, scaled to an hour;
  idle with the default configuration, and charging one session at 1 s metering.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from hil.csms import BenchCsms
from tests.bench.common import (
    api_url,
    cpu_seconds,
    memory_kb,
    start_daemon,
    stop_daemon,
    write_config,
)
from tests.bench.latency import FAST, UID, _post, session
from tests.integration.harness import call_frames

_BOOT_SENT = re.compile(r'^(\S+Z) DEBUG ocpp\.frames → \[2,"[^"]*","BootNotification"', re.M)
SETTLE_S = 2.0  # after boot, before the idle figures


def _sent_at(log_path: Path) -> float | None:
    """Wall time (s) of the daemon's own log line for its BootNotification frame."""
    found = _BOOT_SENT.search(log_path.read_text(errors="replace"))
    if found is None:
        return None
    return datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp()


async def cold_start(starts: int = 5) -> dict[str, Any]:
    """Seconds from process start to BootNotification; first boot, then ``starts`` restarts."""
    received: list[float] = []
    sent: list[float] = []
    async with BenchCsms(heartbeat_interval=3600) as csms:
        with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
            workdir = Path(tmp)
            config = write_config(workdir, csms.url, "BOOT-1", settings={"log_level": "DEBUG"})
            log = csms.station("BOOT-1")
            for i in range(starts + 1):
                output = workdir / f"daemon-{i}.log"
                mark, since = len(call_frames(log, "BootNotification")), log.mark()
                wall0, t0 = time.time(), time.monotonic()
                proc = await start_daemon(config, output)
                try:
                    await log.wait_for("BootNotification", since=since, timeout=60)
                    received.append(call_frames(log, "BootNotification")[mark].at - t0)
                    at = _sent_at(output)
                    if at is not None:
                        sent.append(at - wall0)
                finally:
                    await stop_daemon(proc)
    return {
        "first_boot_s": received[0],
        "starts": starts,
        "median_s": statistics.median(received[1:]),
        "max_s": max(received[1:]),
        "sent_median_s": statistics.median(sent[1:]) if len(sent) == starts + 1 else None,
    }


async def memory(sessions: int = 1000, warm: int = 10) -> dict[str, Any]:
    """VmRSS (MB) idle after boot, after ``warm`` sessions, half-way and at the end."""
    warm = min(warm, sessions)
    warmed = half = 0
    async with BenchCsms(heartbeat_interval=3600) as csms:
        with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
            config = write_config(
                Path(tmp),
                csms.url,
                "RSS-1",
                settings=FAST,
                MeterValueSampleInterval=0,
                LocalPreAuthorize="true",
            )
            api = api_url(config)
            proc = await start_daemon(config)
            try:
                log = await csms.wait_connected("RSS-1", timeout=30)
                await log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1)
                await asyncio.sleep(SETTLE_S)
                idle = memory_kb(proc.pid, "VmRSS")
                started = time.monotonic()
                async with aiohttp.ClientSession() as http:
                    for i in range(sessions):
                        await session(http, api, log, UID, unplug=True)
                        if i + 1 == warm:
                            warmed = memory_kb(proc.pid, "VmRSS")
                        if i + 1 == sessions // 2:
                            half = memory_kb(proc.pid, "VmRSS")
                elapsed = time.monotonic() - started
                await asyncio.sleep(SETTLE_S)
                after = memory_kb(proc.pid, "VmRSS")
                peak = memory_kb(proc.pid, "VmHWM")
            finally:
                await stop_daemon(proc)
    if len(log.calls("StopTransaction")) != sessions:
        raise RuntimeError(f"{len(log.calls('StopTransaction'))} sessions instead of {sessions}")
    return {
        "sessions": sessions,
        "warm": warm,
        "seconds": elapsed,
        "idle_mb": idle / 1024,
        "warm_mb": warmed / 1024,
        "half_mb": half / 1024,
        "after_mb": after / 1024,
        "peak_mb": peak / 1024,
        "growth_pct": (after - idle) / idle * 100,
        "growth_after_warm_pct": (after - warmed) / warmed * 100,
    }


async def _cpu_over(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return cpu_seconds(pid) - before


async def cpu(seconds: float = 60.0) -> dict[str, Any]:
    """CPU seconds per hour, idle and charging at 1 s metering, each over ``seconds``."""
    async with BenchCsms(heartbeat_interval=3600) as csms:
        with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
            config = write_config(
                Path(tmp),
                csms.url,
                "CPU-1",
                settings={"meter_poll_s": 1.0},
                MeterValueSampleInterval=1,
            )
            api = api_url(config)
            proc = await start_daemon(config)
            try:
                log = await csms.wait_connected("CPU-1", timeout=30)
                await log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1)
                await asyncio.sleep(SETTLE_S)
                idle = await _cpu_over(proc.pid, seconds)
                async with aiohttp.ClientSession() as http:
                    await _post(http, f"{api}/sim/connectors/1", {"cp_state": "C"})
                    await _post(http, f"{api}/sim/rfid", {"uid": UID})
                    await log.wait_for("MeterValues")
                    mark = len(log.calls("MeterValues"))
                    charging = await _cpu_over(proc.pid, seconds)
                    samples = len(log.calls("MeterValues")) - mark
            finally:
                await stop_daemon(proc)
    scale = 3600.0 / seconds
    return {
        "seconds": seconds,
        "samples": samples,
        "idle_s_per_h": idle * scale,
        "charging_s_per_h": charging * scale,
    }
