"""The daemon under a service manager: READY, STATUS, WATCHDOG, RELOADING and STOPPING."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from hil.csms import BenchCsms
from tests.integration.harness import Daemon, wait_until
from tests.notify_socket import Notification, NotifyListener

MakeDaemon = Callable[..., Awaitable[Daemon]]

WATCHDOG_USEC = "1000000"  # a ping every 0.5 s


@pytest.fixture
def systemd() -> Iterator[NotifyListener]:
    with (
        tempfile.TemporaryDirectory(prefix="sdn-") as path,
        NotifyListener(str(Path(path) / "notify")) as listener,
    ):
        yield listener


def service_env(listener: NotifyListener) -> dict[str, str]:
    return {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": WATCHDOG_USEC}


def status_seen(listener: NotifyListener, prefix: str, count: int = 1) -> Callable[..., bool]:
    return lambda _seen: sum(s.startswith(prefix) for s in listener.statuses()) >= count


async def test_ready_status_watchdog_and_stopping(
    make_daemon: MakeDaemon, csms: BenchCsms, systemd: NotifyListener
) -> None:
    csms.boot_status = "Pending"
    csms.heartbeat_interval = 1
    d = await make_daemon(env=service_env(systemd))
    assert d.proc is not None
    url = f"{csms.url}/{d.cp_id}"

    await systemd.wait_message("READY", "1")
    await systemd.wait_for(
        status_seen(systemd, f"connected to {url}, boot pending"), "a Pending boot in STATUS="
    )
    csms.boot_status = "Accepted"
    online = f"online: connected to {url}, boot accepted"
    await systemd.wait_for(status_seen(systemd, online), "online in STATUS=")
    await systemd.wait_message("WATCHDOG", "1", count=3)

    # The CSMS goes away and refuses the handshake for a while.
    csms.refuse = True
    await csms.drop(d.cp_id)
    await systemd.wait_for(
        status_seen(systemd, f"offline: disconnected from {url}; retry in "), "drop"
    )
    await systemd.wait_for(status_seen(systemd, f"connecting to {url}"), "reconnecting")
    await systemd.wait_for(
        status_seen(systemd, f"offline: cannot connect to {url}: HTTP 503; retry in "),
        "a refused handshake in STATUS=",
    )
    csms.refuse = False
    await systemd.wait_for(status_seen(systemd, online, count=2), "online again")

    assert await d.stop() == 0
    stopping = systemd.having("STOPPING", "1")
    assert [m.fields.get("STATUS") for m in stopping] == ["stopping (Reboot)"]
    messages = systemd.snapshot()
    assert "READY" in messages[0].fields  # nothing before READY=1
    assert systemd.having("RELOADING") == []
    # Every message came from the main process, as NotifyAccess=main requires.
    assert {m.pid for m in messages} == {d.proc.pid}
    statuses = systemd.statuses()
    assert all(a != b for a, b in itertools.pairwise(statuses))  # changes only


async def test_reset_reexecs_as_a_reload(make_daemon: MakeDaemon, systemd: NotifyListener) -> None:
    d = await make_daemon(env=service_env(systemd))
    assert d.proc is not None
    pid = d.proc.pid
    await systemd.wait_message("READY", "1")
    await systemd.wait_message("WATCHDOG", "1", count=2)

    assert (await d.log.call("Reset", {"type": "Soft"}))["status"] == "Accepted"
    reloading = await systemd.wait_message("RELOADING", "1")
    assert reloading.fields["STATUS"] == "restarting (SoftReset)"
    # CLOCK_MONOTONIC is system-wide: sent before we received it.
    assert 0 < int(reloading.fields["MONOTONIC_USEC"]) <= reloading.at * 1_000_000
    ready_again = await systemd.wait_message("READY", "1", count=2)
    await wait_until(lambda: len(d.log.calls("BootNotification")) == 2, 20, "second boot")
    assert d.proc.returncode is None and d.proc.pid == pid  # re-executed in place

    # The new image keeps the watchdog fed.
    def pinged_after_ready(seen: list[Notification]) -> bool:
        return any("WATCHDOG" in m.fields and m.at > ready_again.at for m in seen)

    await systemd.wait_for(pinged_after_ready, "a watchdog ping from the new image")
    assert systemd.having("STOPPING") == []  # a reload, not a stop
    assert {m.pid for m in systemd.snapshot()} == {pid}

    assert await d.stop() == 0
    assert len(systemd.having("STOPPING", "1")) == 1
