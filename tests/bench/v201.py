"""The replay and tap-to-energize figures of a station speaking OCPP 2.0.1.

- replay: a finished offline transaction of ``count`` TransactionEvents (Started,
  Updated with one periodic sample each, Ended) queued before the daemon starts,
  delivered one CALL each (2.0.1 has no packing: one event per request) to the
  bench CSMS over loopback; msg/s from the first to the last event received;
- tap-to-energize: as ``tests.bench.latency`` (the daemon's own figures), with the
  2.0.1 Authorize and TransactionEvent; the variants set the same rules through
  the device model.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from firmware.metering import Sample
from firmware.ocpp.v201.device_model.topology import layout
from firmware.ocpp.v201.transactions import TransactionNumbers, V201Journal
from hal.interfaces import MeterReading
from hil.csms import BenchCsms, StationLog
from tests.bench.common import (
    api_url,
    memory_kb,
    offline_queue,
    start_daemon,
    stop_daemon,
    write_config,
)
from tests.bench.latency import summary
from tests.integration.harness import call_frames

UID = "0B0E4C41"
WARM_UP = 1
ENERGY = ["Energy.Active.Import.Register"]

VARIANTS: dict[str, dict[str, Any]] = {
    "local_list": {
        "LocalAuthListCtrlr": {"Enabled": True},
        "AuthCacheCtrlr": {"Enabled": False},
        "AuthCtrlr": {"LocalPreAuthorize": True},
    },
    "cache": {"AuthCacheCtrlr": {"Enabled": True}, "AuthCtrlr": {"LocalPreAuthorize": True}},
    "online": {"AuthCacheCtrlr": {"Enabled": False}, "AuthCtrlr": {"LocalPreAuthorize": False}},
}


def config_201(workdir: Path, csms_url: str, cp_id: str, **device_model: Any) -> Path:
    path = write_config(
        workdir,
        csms_url,
        cp_id,
        settings={
            "hal": {"backend": "simulated", "relay_delay_s": 0, "lock_delay_s": 0},
            "meter_poll_s": 0.5,
        },
    )
    config = yaml.safe_load(path.read_text())
    config["ocpp"]["version"] = "2.0.1"
    del config["ocpp"]["config"]
    config["device_model"] = {
        "SampledDataCtrlr": {"TxUpdatedInterval": 0},
        **device_model,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def fill_backlog_201(state_dir: Path, count: int) -> None:
    """A finished offline transaction of ``count`` TransactionEvents in the queue."""
    db, clock, outbox, txs = offline_queue(state_dir)
    journal = V201Journal(
        outbox,
        txs,
        TransactionNumbers(db),
        layout(1),
        online=lambda: False,
        send=lambda _action, _payload: None,
    )
    with db.transaction():
        record = txs.open(1, "BE4C4", None, 1000, clock.now())
        journal.started(record)
        for i in range(count - 2):
            reading = MeterReading(1000.0 + i, 11000.0, (16.0, 16.0, 16.0), (230.0,) * 3)
            journal.sampled(
                record, Sample(reading, 16.0, None, 3), ENERGY, "Sample.Periodic", clock.now()
            )
        journal.ended(record, 1000 + count, clock.now(), "Local", None)
        txs.close(record.local_id, 1000 + count, clock.now(), "Local", None)
    db.close()


async def replay(count: int = 10_000) -> dict[str, float]:
    async with BenchCsms(heartbeat_interval=3600, versions=["2.0.1"]) as csms:
        with tempfile.TemporaryDirectory(prefix="bench-replay-201-") as tmp:
            workdir = Path(tmp)
            config = config_201(workdir, csms.url, "REPLAY-201")
            fill_backlog_201(workdir / "state", count)
            proc = await start_daemon(config)
            peak = 0
            try:
                log = await csms.wait_connected("REPLAY-201", timeout=30)
                async with asyncio.timeout(600):
                    while not any(
                        e["eventType"] == "Ended" for e in log.calls("TransactionEvent")[-1:]
                    ):
                        peak = max(peak, memory_kb(proc.pid, "VmRSS"))
                        await asyncio.sleep(0.1)
                peak = max(peak, memory_kb(proc.pid, "VmHWM"))
            finally:
                await stop_daemon(proc)
    times = [f.at for f in call_frames(log, "TransactionEvent")]
    delivered = len(times)
    return {
        "messages": delivered,
        "msgs_per_s": delivered / (times[-1] - times[0]),
        "peak_rss_mb": peak / 1024,
        "violations": len(log.violations),
    }


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with http.post(url, json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"POST {url} {body}: {r.status} {await r.text()}")


def _event(kind: str) -> Any:
    return lambda p: p["eventType"] == kind


async def _charging(http: aiohttp.ClientSession, api: str) -> None:
    """The relay closed (2.0.1 has no Charging status: the local API says it)."""
    async with asyncio.timeout(10):
        while True:
            async with http.get(f"{api}/status") as r:
                if (await r.json())["connectors"][0]["relay_closed"]:
                    return
            await asyncio.sleep(0.02)


async def measure(variant: str, taps: int) -> tuple[list[float], StationLog]:
    cp_id = f"TAP201-{variant.upper()}"
    async with BenchCsms(heartbeat_interval=3600, versions=["2.0.1"]) as csms:
        with tempfile.TemporaryDirectory(prefix="bench-tap-201-") as tmp:
            config = config_201(Path(tmp), csms.url, cp_id, **VARIANTS[variant])
            api = api_url(config)
            proc = await start_daemon(config)
            try:
                log = await csms.wait_connected(cp_id, timeout=30)
                await log.wait_for("StatusNotification", timeout=30)
                if variant == "local_list":
                    entry = {
                        "idToken": {"idToken": UID, "type": "ISO14443"},
                        "idTokenInfo": {"status": "Accepted"},
                    }
                    local = {
                        "versionNumber": 1,
                        "updateType": "Full",
                        "localAuthorizationList": [entry],
                    }
                    if await log.call("SendLocalList", local) != {"status": "Accepted"}:
                        raise RuntimeError("SendLocalList refused")
                async with aiohttp.ClientSession() as http:
                    await _post(http, f"{api}/sim/connectors/1", {"cp_state": "C"})
                    for _ in range(WARM_UP + taps):
                        mark = log.mark()
                        await _post(http, f"{api}/sim/rfid", {"uid": UID})
                        await log.wait_for("TransactionEvent", _event("Started"), since=mark)
                        await _charging(http, api)
                        mark = log.mark()
                        await _post(http, f"{api}/sim/rfid", {"uid": UID})
                        await log.wait_for("TransactionEvent", _event("Ended"), since=mark)
                    async with http.get(f"{api}/status") as r:
                        metrics = (await r.json())["metrics"]
            finally:
                await stop_daemon(proc)
    if metrics["count"] != WARM_UP + taps:
        raise RuntimeError(f"{metrics['count']} figures for {WARM_UP + taps} taps")
    return metrics["tap_to_energize_ms"][-taps:], log


async def latency(taps: int = 200) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        figures, log = await measure(variant, taps)
        authorizes = len(log.calls("Authorize"))
        expected = {"online": WARM_UP + taps, "cache": WARM_UP, "local_list": 0}[variant]
        if authorizes != expected:
            raise RuntimeError(f"{variant}: {authorizes} Authorize requests, expected {expected}")
        out[variant] = summary(figures)
    return out
