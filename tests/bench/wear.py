"""SD-card wear: bytes written and fsyncs per charging hour at 1 s metering.

A charging hour is one session: its start, an hour of charging with a
MeterValues sample every second, and its stop. The steady part is measured
over a shorter window and scaled to the hour; the start and stop are measured
as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from hil.csms import BenchCsms
from tests.bench.common import start_daemon, stop_daemon, write_config

SYNC_CALLS = ("fsync", "fdatasync")
_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)(?:\s+\d+)?\s+(\w+)$", re.M)


@dataclass
class Io:
    bytes_written: int = 0
    fsyncs: int = 0


def _write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


@contextlib.asynccontextmanager
async def traced(pid: int, workdir: Path) -> AsyncIterator[Io]:
    """Count what the process writes to storage and its fsyncs inside the block."""
    out = workdir / f"strace-{asyncio.get_running_loop().time()}.txt"
    trace = await asyncio.create_subprocess_exec(
        "strace",
        "-f",
        "-c",
        "-e",
        f"trace={','.join(SYNC_CALLS)}",
        "-p",
        str(pid),
        "-o",
        str(out),
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # attached
    io = Io()
    before = _write_bytes(pid)
    try:
        yield io
    finally:
        io.bytes_written = _write_bytes(pid) - before
        trace.send_signal(signal.SIGINT)
        await trace.wait()
        io.fsyncs = sum(
            int(m.group(1)) for m in _ROW.finditer(out.read_text()) if m.group(2) in SYNC_CALLS
        )


async def run(seconds: float = 60.0) -> dict[str, Any]:
    async with BenchCsms(heartbeat_interval=3600) as csms:
        with tempfile.TemporaryDirectory(prefix="bench-wear-") as tmp:
            workdir = Path(tmp)
            config = write_config(workdir, csms.url, "WEAR-1", MeterValueSampleInterval=1)
            port = yaml.safe_load(config.read_text())["api"]["port"]
            api = f"http://127.0.0.1:{port}/api/v1"
            proc = await start_daemon(config)
            try:
                log = await csms.wait_connected("WEAR-1", timeout=30)
                await log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1)
                async with aiohttp.ClientSession() as http:
                    await http.post(f"{api}/sim/connectors/1", json={"cp_state": "C"})
                    async with traced(proc.pid, workdir) as start:
                        await http.post(f"{api}/sim/rfid", json={"uid": "5EA1"})
                        await log.wait_for("MeterValues")
                    mark = len(log.calls("MeterValues"))
                    async with traced(proc.pid, workdir) as steady:
                        await asyncio.sleep(seconds)
                    samples = len(log.calls("MeterValues")) - mark
                    async with traced(proc.pid, workdir) as stop:
                        await http.post(f"{api}/sim/rfid", json={"uid": "5EA1"})
                        await log.wait_for("StopTransaction")
                        await asyncio.sleep(0.5)
            finally:
                await stop_daemon(proc)
    scale = 3600.0 / seconds
    return {
        "seconds": seconds,
        "samples": samples,
        "bytes_per_hour": start.bytes_written + stop.bytes_written + steady.bytes_written * scale,
        "fsyncs_per_hour": start.fsyncs + stop.fsyncs + steady.fsyncs * scale,
        "session_fsyncs": start.fsyncs + stop.fsyncs,
        "steady_fsyncs": steady.fsyncs,
    }
