"""`make bench`: print the figures recorded in README.

`python -m tests.bench [part ...]` runs only the parts named (replay, backlog,
wear, boot, latency, memory, cpu, v201: the replay and latency over OCPP 2.0.1);
every part runs by default.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from pathlib import Path

from firmware.config import QueueSettings
from tests.bench import footprint, latency, replay, v201, wear
from tests.bench.replay import slow_link

PARTS = ("replay", "backlog", "wear", "boot", "latency", "memory", "cpu", "v201")


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"
    )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


async def _replay() -> None:
    r = await replay.run(int(os.environ.get("BENCH_MESSAGES", "10000")))
    print(
        f"replay of {r['messages']} queued transaction messages: "
        f"{r['replay_msgs_per_s']:.0f} msg/s; bare ocpp client: {r['bare_msgs_per_s']:.0f} msg/s; "
        f"ratio {r['ratio']:.2f} (target >= 0.8); peak RSS during replay {r['peak_rss_mb']:.1f} MB"
    )
    queued = await replay.queued_rss(100_000)
    print(f"peak RSS with 100,000 messages queued (CSMS unreachable): {queued:.1f} MB")


async def _backlog() -> None:
    samples = int(os.environ.get("BENCH_BACKLOG_SAMPLES", "10000"))
    unpacked_samples = int(os.environ.get("BENCH_BACKLOG_UNPACKED_SAMPLES", str(samples)))
    delay_s = float(os.environ.get("BENCH_BACKLOG_DELAY_MS", "100")) / 1000
    d = QueueSettings()
    packed = (
        f"packed (replay_batch_max {d.replay_batch_max}, replay_batch_bytes {d.replay_batch_bytes})"
    )
    for label, count, size in (
        (packed, samples, None),
        ("unpacked (replay_batch_max 1)", unpacked_samples, 1),
    ):
        r = await slow_link(count, delay_s, size)
        print(
            f"replay of {count} queued MeterValues, CSMS answering after "
            f"{delay_s * 1000:.0f} ms, {label}: {r['seconds']:.1f} s from StartTransaction "
            f"to StopTransaction, {r['requests']:.0f} MeterValues requests carrying "
            f"{r['entries']:.0f} entries, {r['violations']:.0f} schema violations"
            + (" (target < 30 s)" if size is None else ""),
            flush=True,
        )


async def _wear() -> None:
    w = await wear.run(float(os.environ.get("BENCH_WEAR_SECONDS", "60")))
    print(
        f"SD-card wear at 1 s metering ({w['samples']} samples in {w['seconds']:.0f} s): "
        f"{w['bytes_per_hour'] / 1e6:.1f} MB written and {w['fsyncs_per_hour']:.0f} fsyncs "
        f"per charging hour ({w['session_fsyncs']} for the start and stop, "
        f"{w['steady_fsyncs']} while charging)"
    )


async def _boot() -> None:
    b = await footprint.cold_start(int(os.environ.get("BENCH_STARTS", "5")))
    sent = b["sent_median_s"]
    print(
        f"cold start, process start -> BootNotification received by the CSMS: "
        f"median {b['median_s']:.2f} s, max {b['max_s']:.2f} s over {b['starts']} starts "
        f"(target <= 2 s); first boot (new state database) {b['first_boot_s']:.2f} s"
        + ("" if sent is None else f"; sent by the station's own log: median {sent:.2f} s")
    )


async def _latency() -> None:
    taps = int(os.environ.get("BENCH_TAPS", "200"))
    figures = await latency.run(taps)
    names = {
        "local_list": "local authorization list hit",
        "cache": "authorization cache hit",
        "online": "online Authorize over loopback",
    }
    for variant, f in figures.items():
        print(
            f"tap-to-energize, {names[variant]} ({f['taps']:.0f} taps): "
            f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.1f} ms"
            + (" (target p99 <= 50 ms)" if variant != "online" else "")
        )


async def _memory() -> None:
    m = await footprint.memory(int(os.environ.get("BENCH_SESSIONS", "1000")))
    print(
        f"RSS idle after boot {m['idle_mb']:.1f} MB; after {m['warm']} sessions "
        f"{m['warm_mb']:.1f} MB; after {m['sessions'] // 2} {m['half_mb']:.1f} MB; "
        f"after {m['sessions']} sessions ({m['seconds']:.0f} s) "
        f"{m['after_mb']:.1f} MB, peak {m['peak_mb']:.1f} MB (target <= 60 MB); "
        f"growth {m['growth_pct']:+.1f} % from idle, {m['growth_after_warm_pct']:+.1f} % "
        f"after the first {m['warm']} sessions (target < 5 %)"
    )


async def _cpu() -> None:
    c = await footprint.cpu(float(os.environ.get("BENCH_CPU_SECONDS", "60")))
    print(
        f"CPU per hour, measured over {c['seconds']:.0f} s windows: idle "
        f"{c['idle_s_per_h']:.1f} s/h; charging at 1 s metering ({c['samples']} samples) "
        f"{c['charging_s_per_h']:.1f} s/h"
    )


async def _v201() -> None:
    r = await v201.replay(int(os.environ.get("BENCH_MESSAGES", "10000")))
    print(
        f"OCPP 2.0.1: replay of {r['messages']:.0f} queued TransactionEvents: "
        f"{r['msgs_per_s']:.0f} msg/s, peak RSS {r['peak_rss_mb']:.1f} MB, "
        f"{r['violations']:.0f} schema violations",
        flush=True,
    )
    figures = await v201.latency(int(os.environ.get("BENCH_TAPS", "200")))
    for variant, f in figures.items():
        print(
            f"OCPP 2.0.1: tap-to-energize, {variant} ({f['taps']:.0f} taps): "
            f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.1f} ms"
        )


RUNNERS = {
    "replay": _replay,
    "backlog": _backlog,
    "wear": _wear,
    "boot": _boot,
    "latency": _latency,
    "memory": _memory,
    "cpu": _cpu,
    "v201": _v201,
}


async def main(parts: list[str]) -> None:
    unknown = [p for p in parts if p not in RUNNERS]
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    print(f"machine: {_machine()}; {_load()}")
    for part in parts or PARTS:
        await RUNNERS[part]()
    print(f"done; {_load()}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
