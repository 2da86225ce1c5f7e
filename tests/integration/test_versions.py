"""``ocpp.version``: which subprotocols the daemon offers, and what it speaks.

Against a bench that speaks 1.6 only, 2.0.1 only, or both. ``auto`` runs the
1.6 front-end in this build, so a connection on which the CSMS selects 2.0.1 is
closed at once; ``"2.0.1"`` speaks 2.0.1 (tests/integration/test_v201_daemon.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hil.csms import BenchCsms
from tests.integration.harness import Daemon, wait_until

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


async def test_auto_with_a_201_csms_refuses_the_link_until_201_is_spoken(
    csms: BenchCsms, make_daemon: MakeDaemon
) -> None:
    csms.versions = ["2.0.1", "1.6"]
    d = await make_daemon(wait_boot=False, ocpp={"version": "auto"})
    await d.wait_log(
        r"ERROR .*the CSMS selected OCPP 2\.0\.1, and ocpp\.version auto runs the OCPP 1\.6 "
        r"front-end: closing the connection; retrying in"
    )
    await wait_until(lambda: len(d.log.closes) >= 1, 5, "the bench to see the close")
    assert d.log.versions[0] == "2.0.1"
    assert d.log.closes[0] == (1000, "OCPP 2.0.1 is not available")
    assert d.log.calls() == []  # nothing sent on it, not even a BootNotification
    status = await d.get("/status")
    assert status["ocpp"]["connected"] is False and status["ocpp"]["version"] is None
    assert "runs the OCPP 1.6 front-end" in status["ocpp"]["link"]["detail"]


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
