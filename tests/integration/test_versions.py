"""``ocpp.version``: which subprotocols the daemon offers, and what it speaks.

Against a bench that speaks 1.6 only, 2.0.1 only, or both. ``auto`` speaks
what the CSMS selects, on each connection; ``"2.0.1"`` speaks 2.0.1
(tests/integration/test_v201_daemon.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hil.csms import BenchCsms
from tests.integration.harness import Daemon

MakeDaemon = Callable[..., Awaitable[Daemon]]


async def test_auto_speaks_16_with_a_16_only_csms(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"version": "auto"})
    assert d.log.versions == ["1.6"] and d.log.subprotocol == "ocpp1.6"
    await d.wait_link(True)
    status = await d.get("/status")
    assert status["ocpp"]["version"] == "1.6"
    assert status["ocpp"]["registration"] == "Accepted"
    await d.log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1)


async def test_the_default_is_16(daemon: Daemon) -> None:
    assert daemon.log.versions == ["1.6"]
    assert (await daemon.get("/status"))["ocpp"]["version"] == "1.6"


async def test_auto_speaks_201_with_a_csms_that_prefers_it(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    csms.versions = ["2.0.1", "1.6"]
    d = await make_daemon(ocpp={"version": "auto"})
    assert d.log.versions == ["2.0.1"]
    assert d.log.calls("BootNotification")[0]["reason"] == "PowerUp"
    status = await d.get("/status")
    assert status["ocpp"]["version"] == "2.0.1"
    assert status["ocpp"]["registration"] == "Accepted"
    await d.log.wait_for("StatusNotification", lambda p: p.get("evseId") == 1)


async def test_auto_follows_a_csms_that_changes_version(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    csms.versions = ["2.0.1"]
    d = await make_daemon(ocpp={"version": "auto", "reconnect_max_s": 0.5})
    await d.sim(cp_state="C")
    await d.tap("AABBCCDD")
    await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Started")
    await d.tap("AABBCCDD")
    await d.log.wait_for("TransactionEvent", lambda p: p["eventType"] == "Ended")
    await d.wait_queue_empty()
    # The CSMS now speaks 1.6 only: the station registers again, in 1.6, and charges in it.
    csms.versions = ["1.6"]
    mark = d.log.mark()
    await csms.drop(d.cp_id)
    boot = await d.log.wait_for("BootNotification", since=mark, timeout=15)
    assert "chargePointVendor" in boot and d.log.versions[-1] == "1.6"
    await d.wait_link(True)
    await d.sim(cp_state="A")
    await d.sim(cp_state="C")
    await d.tap("AABBCCDD")
    start = await d.log.wait_for("StartTransaction", since=mark)
    assert start["idTag"] == "AABBCCDD"
    await d.tap("AABBCCDD")
    stop = await d.log.wait_for("StopTransaction", since=mark)
    assert stop["reason"] == "Local"
    status = await d.get("/status")
    assert status["ocpp"]["version"] == "1.6" and status["ocpp"]["registration"] == "Accepted"


async def test_201_with_a_16_only_csms_fails_the_handshake_and_retries(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    d = await make_daemon(wait_boot=False, ocpp={"version": "2.0.1"})
    line = (
        r"cannot connect to .*/CP-1: the CSMS selected none of the subprotocols offered "
        r"\(ocpp2\.0\.1\); retrying in"
    )
    first = await d.wait_log(line)
    await d.wait_log(line, since=first + 1)  # tried again, after the backoff
    assert d.log.unsupported_offers[:2] == [["ocpp2.0.1"]] * 2
    assert d.log.connections == 0 and d.log.calls() == []
    status = await d.get("/status")
    assert status["ocpp"]["link"]["state"] == "offline"
    assert status["ocpp"]["version"] == "2.0.1"  # configured, none negotiated yet
    assert "selected none of the subprotocols" in status["ocpp"]["link"]["detail"]
