"""Helpers shared by the benchmarks: a daemon process, its memory, a backlog."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

import yaml

from firmware.clock import Clock, iso
from firmware.connector.transactions import TransactionStore
from firmware.ocpp.rpc import Rpc
from firmware.queue import Outbox
from firmware.storage.db import Database

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    workdir: Path,
    csms_url: str,
    cp_id: str,
    *,
    settings: dict[str, Any] | None = None,
    **ocpp_config: Any,
) -> Path:
    """The daemon's YAML; ``settings`` replaces top-level sections (``hal``, ``log_level`` ...)."""
    config: dict[str, Any] = {
        "ocpp": {
            "csms_url": csms_url,
            "charge_point_id": cp_id,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1,
            "config": {"HeartbeatInterval": 3600, **ocpp_config},
        },
        "connectors": 1,
        "hal": {"backend": "simulated"},
        "state_dir": str(workdir / "state"),
        "api": {"host": "127.0.0.1", "port": free_port()},
        "log_level": "ERROR",
        **(settings or {}),
    }
    path = workdir / "cp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def api_url(config: Path) -> str:
    port = yaml.safe_load(config.read_text())["api"]["port"]
    return f"http://127.0.0.1:{port}/api/v1"


async def start_daemon(config: Path, output: Path | None = None) -> asyncio.subprocess.Process:
    """Start the daemon; its log goes to ``output`` when given (else inherited)."""
    sink = output.open("ab") if output is not None else None
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "firmware",
            "run",
            "--config",
            str(config),
            cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=sink,
            stderr=sink,
        )
    finally:
        if sink is not None:
            sink.close()


async def stop_daemon(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()


def memory_kb(pid: int, field: str) -> int:
    """VmRSS / VmHWM (peak RSS) of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def meter_values(i: int, at: str) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": at,
                "sampledValue": [
                    {
                        "value": str(1000 + i),
                        "context": "Sample.Periodic",
                        "measurand": "Energy.Active.Import.Register",
                        "unit": "Wh",
                        "location": "Outlet",
                    },
                    {
                        "value": "11040.0",
                        "context": "Sample.Periodic",
                        "measurand": "Power.Active.Import",
                        "unit": "W",
                        "location": "Outlet",
                    },
                ],
            }
        ],
    }


def offline_queue(state_dir: Path) -> tuple[Database, Clock, Outbox, TransactionStore]:
    """The station's state database in ``state_dir`` with its queue and transactions, for
    filling a backlog before the daemon starts."""
    db = Database(state_dir / "state.db")
    clock = Clock()
    rpc = Rpc(response_timeout_s=30, max_frame_bytes=65536, spawn=lambda coro: coro.close())
    outbox = Outbox(
        db, rpc, clock, ready=asyncio.Event(), attempts=lambda: 3, retry_interval_s=lambda: 1
    )
    return db, clock, outbox, TransactionStore(db)


def fill_backlog(state_dir: Path, count: int) -> None:
    """A finished offline transaction: StartTransaction, MeterValues, StopTransaction."""
    db, clock, outbox, txs = offline_queue(state_dir)
    at = iso(clock.now())
    with db.transaction():
        record = txs.open(1, "BE4C4", None, 1000, clock.now())
        outbox.enqueue(
            "StartTransaction",
            {"connectorId": 1, "idTag": "BE4C4", "meterStart": 1000, "timestamp": at},
            record.local_id,
        )
        for i in range(count - 2):
            outbox.enqueue("MeterValues", meter_values(i, at), record.local_id)
        txs.close(record.local_id, 1000 + count, clock.now(), "Local", None)
        outbox.enqueue(
            "StopTransaction",
            {"meterStop": 1000 + count, "timestamp": at, "reason": "Local"},
            record.local_id,
        )
    db.close()
