"""`make bench`: print the figures recorded in README."""

from __future__ import annotations

import asyncio
import os
import platform
from pathlib import Path

from tests.bench import replay, wear


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


async def main() -> None:
    print(f"machine: {_machine()}")
    r = await replay.run(int(os.environ.get("BENCH_MESSAGES", "10000")))
    print(
        f"replay of {r['messages']} queued transaction messages: "
        f"{r['replay_msgs_per_s']:.0f} msg/s; bare ocpp client: {r['bare_msgs_per_s']:.0f} msg/s; "
        f"ratio {r['ratio']:.2f} (target >= 0.8); peak RSS during replay {r['peak_rss_mb']:.1f} MB"
    )
    queued = await replay.queued_rss(100_000)
    print(f"peak RSS with 100,000 messages queued (CSMS unreachable): {queued:.1f} MB")
    w = await wear.run(float(os.environ.get("BENCH_WEAR_SECONDS", "60")))
    print(
        f"SD-card wear at 1 s metering ({w['samples']} samples in {w['seconds']:.0f} s): "
        f"{w['bytes_per_hour'] / 1e6:.1f} MB written and {w['fsyncs_per_hour']:.0f} fsyncs "
        f"per charging hour ({w['session_fsyncs']} for the start and stop, "
        f"{w['steady_fsyncs']} while charging)"
    )


if __name__ == "__main__":
    asyncio.run(main())
