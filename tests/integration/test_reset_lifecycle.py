"""Reset Hard runs reset.hard_command; a stop signal during any restart ends the daemon."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.csms import NO_REPLY
from tests.integration.harness import Daemon, call_frames, charge_session_start, wait_until
from tests.notify_socket import NotifyListener

MakeDaemon = Callable[..., Awaitable[Daemon]]

# What the hard reset command sees, recorded as JSON lines: when it ran, whether the
# state database was closed (no WAL file left), what was queued, how far the daemon's
# log had got. With "signal" it then stops the daemon as a rebooting system would.
RECORDER = """\
import json, os, signal, sqlite3, sys, time
out, state_dir, log_file, daemon_pid, mode = sys.argv[1:6]
db = os.path.join(state_dir, "state.db")
record = {"at": time.monotonic(), "daemon_alive": True, "wal": os.path.exists(db + "-wal")}
os.kill(int(daemon_pid), 0)
with open(log_file, errors="replace") as f:
    record["log"] = f.read()
with sqlite3.connect(db) as conn:
    record["outbox"] = [
        [action, json.loads(payload)]
        for action, payload in conn.execute("SELECT action, payload FROM outbox ORDER BY seq")
    ]
conn.close()
with open(out, "a") as f:
    f.write(json.dumps(record) + "\\n")
if mode == "signal":
    os.kill(int(daemon_pid), signal.SIGTERM)
sys.exit(3 if mode == "fail" else 0)
"""


def hard_reset_config(d_dir: Path, mode: str, reboot_timeout_s: float = 1) -> dict[str, Any]:
    script = d_dir / "record.py"
    script.write_text(RECORDER)
    out = d_dir / "hard-reset.jsonl"
    state = d_dir / "state"
    log = d_dir / "daemon.log"
    # $PPID in the shell that runs the command: the daemon.
    command = f"{sys.executable} {script} {out} {state} {log} $PPID {mode}"
    return {"reset": {"hard_command": command, "reboot_timeout_s": reboot_timeout_s}}


def records(d: Daemon) -> list[dict[str, Any]]:
    path = d.workdir / "hard-reset.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def make_hard_reset_daemon(make_daemon: MakeDaemon, mode: str, **extra: Any) -> Daemon:
    d = await make_daemon(start=False, **extra)
    d.write_config(hard_reset_config(d.workdir, mode))
    await d.start()
    return d


def boots(d: Daemon) -> int:
    return len(d.log.calls("BootNotification"))


async def test_hard_reset_runs_the_command_once_state_is_safe(make_daemon: MakeDaemon) -> None:
    """Online: the StopTransaction is delivered, the relay open and the database closed
    before the command runs; a command that does not reboot → the daemon re-execs."""
    d = await make_hard_reset_daemon(make_daemon, "ok")
    await charge_session_start(d)
    assert d.proc is not None
    pid = d.proc.pid

    assert (await d.log.call("Reset", {"type": "Hard"}))["status"] == "Accepted"
    await wait_until(lambda: boots(d) == 2, 20, "the boot after the fall-back re-exec")
    assert d.proc.returncode is None and d.proc.pid == pid  # re-executed in place
    await d.wait_api()

    (ran,) = records(d)
    (stop,) = call_frames(d.log, "StopTransaction")
    assert stop.message is not None and stop.message[3]["reason"] == "HardReset"
    answered = [
        f
        for f in d.log.frames
        if f.direction == "out" and f.message and f.message[:2] == [3, stop.message[1]]
    ]
    assert answered and answered[0].at < ran["at"]  # delivered and answered before the command
    assert ran["outbox"] == []
    assert ran["wal"] is False  # the database was closed (checkpointed) before
    log_then = ran["log"]
    assert "connector 1 relay opened" in log_then
    assert "hard reset: running" in log_then
    assert log_then.index("shutting down (HardReset)") < log_then.rindex("relay opened")
    assert "did not go down within 1 s" in d.tail(200)
    assert (await d.connector())["relay_closed"] is False


async def test_hard_reset_queues_the_stop_durably_and_a_reboot_ends_the_daemon(
    make_daemon: MakeDaemon,
) -> None:
    """The CSMS does not answer the StopTransaction: it is committed to the database
    before the command runs; the command's SIGTERM (the board going down) ends the
    daemon with exit code 0, and the next start delivers the StopTransaction."""
    d = await make_hard_reset_daemon(make_daemon, "signal")
    await charge_session_start(d)
    d.csms.handlers["StopTransaction"] = lambda _cp, _p: NO_REPLY

    assert (await d.log.call("Reset", {"type": "Hard"}))["status"] == "Accepted"
    assert d.proc is not None
    async with asyncio.timeout(20):
        assert await d.proc.wait() == 0
    assert boots(d) == 1  # not re-executed
    (ran,) = records(d)
    assert ran["wal"] is False
    [(action, payload)] = ran["outbox"]
    assert action == "StopTransaction" and payload["reason"] == "HardReset"
    assert "hard reset: stop signal received" in d.tail(30)

    del d.csms.handlers["StopTransaction"]
    await d.start()
    first = d.log.calls("StopTransaction")[0]  # the attempt left unanswered
    again = await d.log.wait_for("StopTransaction", lambda p: p is not first)
    assert again == first and again["reason"] == "HardReset"
    assert len(records(d)) == 1  # nothing ran at this start
    assert await d.stop() == 0


async def test_failed_hard_reset_command_falls_back_and_soft_reset_never_runs_it(
    make_daemon: MakeDaemon,
) -> None:
    d = await make_hard_reset_daemon(make_daemon, "fail")
    assert d.proc is not None
    pid = d.proc.pid

    assert (await d.log.call("Reset", {"type": "Soft"}))["status"] == "Accepted"
    await wait_until(lambda: boots(d) == 2, 20, "the boot after Reset Soft")
    await d.wait_api()
    assert records(d) == []  # Soft: a daemon restart only

    assert (await d.log.call("Reset", {"type": "Hard"}))["status"] == "Accepted"
    await wait_until(lambda: boots(d) == 3, 20, "the boot after the failed command")
    assert d.proc.returncode is None and d.proc.pid == pid
    assert len(records(d)) == 1
    assert "failed (exit code 3); restarting the daemon instead" in d.tail(200)


@pytest.fixture
def systemd() -> Iterator[NotifyListener]:
    with (
        tempfile.TemporaryDirectory(prefix="sdn-") as path,
        NotifyListener(str(Path(path) / "notify")) as listener,
    ):
        yield listener


async def test_sigterm_during_the_reset_shutdown_wins(
    make_daemon: MakeDaemon, systemd: NotifyListener
) -> None:
    """Reset Soft with a transaction whose StopTransaction the CSMS holds: SIGTERM
    while the daemon waits for that answer → exit code 0, no second image."""
    d = await make_daemon(env={"NOTIFY_SOCKET": systemd.address})
    await charge_session_start(d)
    stop_seen = asyncio.Event()
    release = asyncio.Event()

    async def held_stop(_cp: str, _payload: dict[str, Any]) -> dict[str, Any]:
        stop_seen.set()
        await release.wait()
        return {}

    d.csms.handlers["StopTransaction"] = held_stop
    assert d.proc is not None
    assert (await d.log.call("Reset", {"type": "Soft"}))["status"] == "Accepted"
    async with asyncio.timeout(10):
        await stop_seen.wait()  # the daemon is shutting down, waiting for the answer
    reloading = await systemd.wait_message("RELOADING", "1")
    assert reloading.fields["STATUS"] == "restarting (SoftReset)"
    started = time.monotonic()
    await d.signal(signal.SIGTERM)
    await wait_until(lambda: "exiting instead" in d.tail(400), 10, "the signal taken")
    release.set()  # the drain ends with the answer; the daemon then exits
    async with asyncio.timeout(15):
        assert await d.proc.wait() == 0
    assert time.monotonic() - started < 12
    assert boots(d) == 1  # no re-exec
    stopping = await systemd.wait_message("STOPPING", "1")
    assert stopping.fields["STATUS"] == "stopping (SoftReset)"
    assert "restarting" not in d.tail(400).split("exiting instead", 1)[1]
