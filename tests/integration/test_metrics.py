"""``GET /metrics`` of the real daemon, read with the prometheus_client parser and checked
against the station's own status and what the CSMS saw."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from hil.csms import NO_REPLY, CallErrorReply
from tests.integration.harness import Daemon, call_frames, charge_session_start

MakeDaemon = Callable[..., Awaitable[Daemon]]
Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]
TAG = "AABBCCDD"


async def scrape(d: Daemon) -> Metrics:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{d.api_port}/metrics") as r,
    ):
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await r.text()
    found: Metrics = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def _key(name: str, labels: dict[str, object]) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset((k, str(v)) for k, v in labels.items())


def get(metrics: Metrics, name: str, **labels: object) -> float:
    key = _key(name, labels)
    assert key in metrics, f"{name}{labels} missing"
    return metrics[key]


def at_least_one(name: str, **labels: object) -> Callable[[Metrics], bool]:
    return lambda metrics: metrics.get(_key(name, labels), 0) >= 1


async def scrape_until(d: Daemon, what: Callable[[Metrics], bool], timeout: float = 10) -> Metrics:
    deadline = time.monotonic() + timeout
    while True:
        metrics = await scrape(d)
        if what(metrics) or time.monotonic() > deadline:
            return metrics
        await asyncio.sleep(0.05)


async def test_metrics_follow_a_session_and_the_link(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"response_timeout_s": 1})
    before = (await d.connector())["energy_wh"]
    await charge_session_start(d, TAG)
    metrics = await scrape(d)
    assert get(metrics, "chargepoint_connector_status", connector=1, status="Charging") == 1
    assert get(metrics, "chargepoint_connector_status", connector=1, status="Available") == 0
    assert get(metrics, "chargepoint_connector_relay_closed", connector=1) == 1
    assert get(metrics, "chargepoint_connector_offered_current_amperes", connector=1) > 6
    assert get(metrics, "chargepoint_sessions_started_total", connector=1) == 1

    # The driver taps again: the session stops (Local), the vehicle leaves.
    d.mark()
    await d.tap(TAG)
    stop = await d.log.wait_for("StopTransaction", lambda p: True, since=d._since)
    await d.sim(cp_state="A")
    await d.wait_status("Available")
    await d.wait_queue_empty()
    status = await d.get("/status")
    metrics = await scrape(d)
    c = status["connectors"][0]
    assert get(metrics, "chargepoint_connector_status", connector=1, status="Available") == 1
    assert get(metrics, "chargepoint_connector_status", connector=0, status="Available") == 1
    assert get(metrics, "chargepoint_connector_error", connector=1, error_code="NoError") == 1
    assert get(metrics, "chargepoint_sessions_started_total", connector=1) == 1
    reason = stop["reason"]
    assert reason == "Local"
    assert get(metrics, "chargepoint_sessions_stopped_total", connector=1, reason=reason) == 1
    energy = get(metrics, "chargepoint_connector_energy_joules_total", connector=1)
    assert energy == c["energy_wh"] * 3600 and c["energy_wh"] > before
    assert stop["meterStop"] == round(c["energy_wh"])
    assert get(metrics, "chargepoint_connector_power_watts", connector=1) == c["power_w"] == 0
    assert get(metrics, "chargepoint_connector_session_energy_joules", connector=1) == 0
    taps = status["metrics"]["tap_to_energize_ms"]
    assert get(metrics, "chargepoint_tap_to_energize_seconds_count") == len(taps) == 1
    assert abs(get(metrics, "chargepoint_tap_to_energize_seconds_sum") - taps[0] / 1000) < 1e-5
    assert get(metrics, "chargepoint_tap_to_energize_seconds_bucket", le="+Inf") == 1
    assert get(metrics, "chargepoint_ocpp_queue_messages") == status["ocpp"]["queued"] == 0
    assert get(metrics, "chargepoint_ocpp_queue_dropped_total") == status["ocpp"]["dropped"]
    assert get(metrics, "chargepoint_ocpp_queue_thinned_total") == status["ocpp"]["thinned"]
    assert get(metrics, "chargepoint_ocpp_registration_state", status="Accepted") == 1
    # Every CALL the station counts as sent is one the CSMS received, action by action.
    received = Counter(f.message[2] for f in call_frames(d.log))
    sent = {
        dict(labels)["action"]: value
        for (name, labels), value in metrics.items()
        if name == "chargepoint_ocpp_calls_sent_total"
    }
    assert sent == dict(received)
    assert {"BootNotification", "Authorize", "StartTransaction", "StopTransaction"} <= set(sent)
    rss = get(metrics, "process_resident_memory_bytes")
    assert 10e6 < rss < 500e6
    assert get(metrics, "process_cpu_seconds_total") > 0

    # A Heartbeat the CSMS leaves unanswered, then one it refuses.
    d.csms.handlers["Heartbeat"] = lambda _cp, _p: NO_REPLY
    trigger = {"requestedMessage": "Heartbeat"}
    assert (await d.log.call("TriggerMessage", trigger))["status"] == "Accepted"
    timed_out = "chargepoint_ocpp_calls_timed_out_total"
    metrics = await scrape_until(d, at_least_one(timed_out, action="Heartbeat"))
    assert get(metrics, timed_out, action="Heartbeat") == 1
    d.csms.handlers["Heartbeat"] = lambda _cp, _p: CallErrorReply("InternalError", "busy")
    await d.log.call("TriggerMessage", trigger)
    failed = "chargepoint_ocpp_calls_failed_total"
    refused: dict[str, Any] = {"action": "Heartbeat", "reason": "callerror"}
    metrics = await scrape_until(d, at_least_one(failed, **refused))
    assert get(metrics, failed, **refused) == 1
    assert get(metrics, "chargepoint_ocpp_calls_sent_total", action="Heartbeat") == 2

    # The CSMS drops the link: one reconnect, and the link is up again.
    assert get(metrics, "chargepoint_ocpp_reconnects_total") == 0
    await d.csms.drop(d.cp_id)
    reconnected = at_least_one("chargepoint_ocpp_reconnects_total")
    up = at_least_one("chargepoint_ocpp_connected")
    metrics = await scrape_until(d, lambda m: reconnected(m) and up(m))
    assert get(metrics, "chargepoint_ocpp_reconnects_total") == 1
    assert get(metrics, "chargepoint_ocpp_connections_total") == 2
    assert get(metrics, "chargepoint_ocpp_link_state", state="connected") == 1
    assert (await d.get("/status"))["ocpp"]["reconnects"] == 1
