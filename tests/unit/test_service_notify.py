"""sd_notify and the watchdog, against real AF_UNIX datagram sockets."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.ocpp.connection import LinkState
from firmware.service_notify import ServiceNotifier, Watchdog, link_status, watchdog_interval_s
from tests.integration.harness import wait_until
from tests.notify_socket import NotifyListener


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes: keep it short rather than under tmp_path.
    with tempfile.TemporaryDirectory(prefix="sdn-") as path:
        yield Path(path)


@pytest.fixture
def listener(socket_dir: Path) -> Iterator[NotifyListener]:
    with NotifyListener(str(socket_dir / "notify")) as server:
        yield server


def hang(seconds: float) -> None:
    """Blocking code on the event loop's thread, as a hung driver call would be."""
    time.sleep(seconds)


def notifier_for(listener: NotifyListener, **extra: str) -> ServiceNotifier:
    return ServiceNotifier({"NOTIFY_SOCKET": listener.address, **extra})


def test_without_notify_socket_nothing_is_sent() -> None:
    service = ServiceNotifier({"WATCHDOG_USEC": "30000000"})
    assert service.enabled is False
    assert service.ready("up") is False
    assert service.watchdog_s is None  # no socket, no watchdog


async def test_ready_and_status_reach_a_path_socket(listener: NotifyListener) -> None:
    service = notifier_for(listener)
    assert service.ready("connecting to ws://csms/ocpp/CP-1") is True
    assert service.status("offline: HTTP 401\nretry in 2.0 s") is True
    ready = await listener.wait_message("READY", "1")
    assert ready.fields == {"READY": "1", "STATUS": "connecting to ws://csms/ocpp/CP-1"}
    assert ready.pid == os.getpid()  # what NotifyAccess=main checks
    status = await listener.wait_message("STATUS", count=2)
    assert status.fields == {"STATUS": "offline: HTTP 401 retry in 2.0 s"}  # one line


async def test_abstract_namespace_socket() -> None:
    address = f"@chargepoint-test-{uuid.uuid4().hex}"
    with NotifyListener(address) as listener:
        service = ServiceNotifier({"NOTIFY_SOCKET": address})
        assert service.stopping("stopping (Reboot)") is True
        message = await listener.wait_message("STOPPING", "1")
        assert message.fields["STATUS"] == "stopping (Reboot)"
        assert message.pid == os.getpid()


async def test_reloading_carries_the_monotonic_time(listener: NotifyListener) -> None:
    service = notifier_for(listener)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    service.reloading("restarting (SoftReset)")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    message = await listener.wait_message("RELOADING", "1")
    assert before <= int(message.fields["MONOTONIC_USEC"]) <= after
    assert message.fields["STATUS"] == "restarting (SoftReset)"


def test_unreachable_socket_never_raises_and_warns_once(
    socket_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = ServiceNotifier({"NOTIFY_SOCKET": str(socket_dir / "nobody-listens")})
    with caplog.at_level(logging.WARNING, logger="firmware.service"):
        results = [service.ready("up"), service.status("x"), service.watchdog()]
    assert results == [False, False, False]
    warnings = [r for r in caplog.records if "cannot notify" in r.getMessage()]
    assert len(warnings) == 1


def test_unsupported_socket_address_disables_notifications(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="firmware.service"):
        service = ServiceNotifier({"NOTIFY_SOCKET": "vsock:2:9999", "WATCHDOG_USEC": "1000000"})
    assert service.enabled is False
    assert service.watchdog_s is None
    assert service.ready("up") is False
    assert "unsupported NOTIFY_SOCKET" in caplog.text


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4243"}, None),  # meant for another
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval_from_the_environment(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval_s(environ, pid=4242) == expected


async def test_watchdog_pings_from_the_loop(listener: NotifyListener) -> None:
    service = notifier_for(listener, WATCHDOG_USEC="1000000", WATCHDOG_PID=str(os.getpid()))
    assert service.watchdog_s == 1.0
    watchdog = Watchdog(service, service.watchdog_s)
    task = asyncio.create_task(watchdog.run())
    try:
        await listener.wait_message("WATCHDOG", "1", count=3)
    finally:
        task.cancel()
    pings = listener.having("WATCHDOG", "1")
    assert all(p.pid == os.getpid() and p.fields == {"WATCHDOG": "1"} for p in pings)
    assert watchdog.pings >= 3 and watchdog.withheld == 0


async def test_a_blocked_loop_stops_the_watchdog_pings(
    listener: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    service = notifier_for(listener, WATCHDOG_USEC="400000")
    watchdog = Watchdog(service, 0.4)  # a ping every 0.2 s
    task = asyncio.create_task(watchdog.run())
    try:
        await listener.wait_message("WATCHDOG", "1", count=2)
        sent = watchdog.pings
        block_s = 3 * watchdog.interval_s
        hang(block_s)  # nothing else on the loop runs meanwhile
        assert watchdog.pings == sent
        # The first wake-up after the stall comes far too late: its ping is withheld.
        await wait_until(lambda: watchdog.withheld > 0, 10, "the late wake-up")
        assert watchdog.withheld == 1
        assert watchdog.pings == sent
        assert watchdog.worst_lag_s > watchdog.interval_s
        # Healthy again: pings resume.
        resumed = await listener.wait_message("WATCHDOG", "1", count=sent + 1)
    finally:
        task.cancel()
    before = listener.having("WATCHDOG", "1")[sent - 1]
    assert resumed.at - before.at >= block_s
    assert "stalled" in caplog.text


@pytest.mark.parametrize(
    ("link", "registration", "online", "expected"),
    [
        (LinkState("connecting", "ws://c/CP"), None, False, "connecting to ws://c/CP"),
        (
            LinkState("connected", "ws://c/CP"),
            None,
            False,
            "connected to ws://c/CP, registering",
        ),
        (
            LinkState("connected", "ws://c/CP"),
            "Pending",
            False,
            "connected to ws://c/CP, boot pending; retrying later",
        ),
        (
            LinkState("connected", "ws://c/CP"),
            "Rejected",
            False,
            "connected to ws://c/CP, boot rejected; retrying later",
        ),
        (
            LinkState("connected", "ws://c/CP"),
            "Accepted",
            True,
            "online: connected to ws://c/CP, boot accepted",
        ),
        (
            LinkState("offline", "ws://c/CP", "cannot connect to ws://c/CP: HTTP 401", 2.0),
            "Accepted",
            False,
            "offline: cannot connect to ws://c/CP: HTTP 401; retry in 2.0 s",
        ),
    ],
)
def test_link_status_lines(
    link: LinkState, registration: str | None, online: bool, expected: str
) -> None:
    assert link_status(link, registration, online) == expected
