"""Tap-to-energize latency: the reader's read of the UID → the relay close command.

The daemon measures it itself (``TokenPresented.read_at`` to the close command,
see ``firmware/metrics.py``) and lists the last figures in the local API
status; the bench only drives the taps and reads the list at the end, so no
HTTP polling of the daemon runs while a tap is on its way.

One EV stays plugged in state C; each session is a tap that starts it, a wait
for Charging (the relay is closed by then), and the same tap that stops it.
The simulated relay and lock have no delay. Every variant needs the
StartTransaction answer before the relay closes (the firmware energizes on
the CSMS's acceptance when online); the CSMS is the bench CSMS over loopback,
in the bench's own process, and it validates every frame before answering.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from hil.csms import BenchCsms, StationLog
from tests.bench.common import api_url, start_daemon, stop_daemon, write_config
from tests.bench.stats import percentile

UID = "0B0E4C41"
WARM_UP = 1  # the first session fills the cache (and warms the code paths); not counted

# How each variant authorizes the tap.
VARIANTS: dict[str, dict[str, str]] = {
    "local_list": {
        "LocalAuthListEnabled": "true",
        "AuthorizationCacheEnabled": "false",
        "LocalPreAuthorize": "true",
    },
    "cache": {"AuthorizationCacheEnabled": "true", "LocalPreAuthorize": "true"},
    "online": {"AuthorizationCacheEnabled": "false", "LocalPreAuthorize": "false"},
}

FAST = {
    "hal": {"backend": "simulated", "relay_delay_s": 0, "lock_delay_s": 0},
    "meter_poll_s": 0.5,
}


async def session(
    http: aiohttp.ClientSession, api: str, log: StationLog, uid: str, *, unplug: bool
) -> None:
    """One session: (plug,) tap, wait for Charging, then tap again or unplug."""
    mark = log.mark()
    if unplug:
        await _post(http, f"{api}/sim/connectors/1", {"cp_state": "C"})
    await _post(http, f"{api}/sim/rfid", {"uid": uid})
    await log.wait_for("StatusNotification", _status("Charging"), since=mark)
    mark = log.mark()
    if unplug:
        await _post(http, f"{api}/sim/connectors/1", {"cp_state": "A"})
    else:
        await _post(http, f"{api}/sim/rfid", {"uid": uid})
    await log.wait_for("StopTransaction", since=mark)
    await log.wait_for(
        "StatusNotification", _status("Available" if unplug else "Finishing"), since=mark
    )


def _status(status: str) -> Any:
    return lambda p: p["connectorId"] == 1 and p["status"] == status


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with http.post(url, json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"POST {url} {body}: {r.status} {await r.text()}")


async def _send_local_list(log: StationLog, uid: str) -> None:
    answer = await log.call(
        "SendLocalList",
        {
            "listVersion": 1,
            "updateType": "Full",
            "localAuthorizationList": [{"idTag": uid, "idTagInfo": {"status": "Accepted"}}],
        },
    )
    if answer != {"status": "Accepted"}:
        raise RuntimeError(f"SendLocalList: {answer}")


async def measure(variant: str, taps: int) -> list[float]:
    """``taps`` tap-to-energize figures (ms) for one variant, after the warm-up."""
    cp_id = f"TAP-{variant.upper()}"
    async with BenchCsms(heartbeat_interval=3600) as csms:
        with tempfile.TemporaryDirectory(prefix="bench-tap-") as tmp:
            config = write_config(
                Path(tmp),
                csms.url,
                cp_id,
                settings=FAST,
                MeterValueSampleInterval=0,
                **VARIANTS[variant],
            )
            api = api_url(config)
            proc = await start_daemon(config)
            try:
                log = await csms.wait_connected(cp_id, timeout=30)
                await log.wait_for("StatusNotification", _status("Available"), timeout=30)
                if variant == "local_list":
                    await _send_local_list(log, UID)
                async with aiohttp.ClientSession() as http:
                    await _post(http, f"{api}/sim/connectors/1", {"cp_state": "C"})
                    for _ in range(WARM_UP + taps):
                        await session(http, api, log, UID, unplug=False)
                    async with http.get(f"{api}/status") as r:
                        metrics = (await r.json())["metrics"]
            finally:
                await stop_daemon(proc)
    if metrics["count"] != WARM_UP + taps:
        raise RuntimeError(f"{metrics['count']} figures for {WARM_UP + taps} taps")
    if variant == "online" and len(log.calls("Authorize")) != WARM_UP + taps:
        raise RuntimeError("the online variant did not Authorize every tap")
    if variant == "cache" and len(log.calls("Authorize")) != WARM_UP:
        raise RuntimeError("the cache variant asked the CSMS after the warm-up")
    if variant == "local_list" and log.calls("Authorize"):
        raise RuntimeError("the local list variant asked the CSMS")
    figures: list[float] = metrics["tap_to_energize_ms"][-taps:]
    return figures


def summary(figures: list[float]) -> dict[str, float]:
    """The taps measured and their p50, p99 and maximum (ms)."""
    return {
        "taps": len(figures),
        "p50_ms": percentile(figures, 50),
        "p99_ms": percentile(figures, 99),
        "max_ms": max(figures),
    }


async def run(taps: int = 200) -> dict[str, dict[str, float]]:
    return {variant: summary(await measure(variant, taps)) for variant in VARIANTS}
