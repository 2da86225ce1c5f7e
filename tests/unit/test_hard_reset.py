"""reset.hard_command: run, waited for, given up on; stop signals held across it and execv."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware import hard_reset
from firmware.service_notify import ServiceNotifier
from tests.notify_socket import NotifyListener

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def systemd() -> Iterator[NotifyListener]:
    with (
        tempfile.TemporaryDirectory(prefix="sdn-") as path,
        NotifyListener(str(Path(path) / "notify")) as listener,
    ):
        yield listener


def quiet() -> ServiceNotifier:
    return ServiceNotifier(environ={})


def test_a_failing_command_falls_back_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "firmware.reset")
    started = time.monotonic()
    assert hard_reset.reboot("exit 7", 30, quiet()) is False
    assert time.monotonic() - started < 5
    assert "failed (exit code 7); restarting the daemon instead" in caplog.text


def test_a_command_that_does_not_reboot_is_given_up_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "firmware.reset")
    started = time.monotonic()
    assert hard_reset.reboot("true", 0.4, quiet()) is False
    assert time.monotonic() - started >= 0.4
    assert "true done; waiting up to 0.4 s for the board to go down" in caplog.text
    assert "the board did not go down within 0.4 s of true" in caplog.text


def test_a_hung_command_is_killed_and_the_watchdog_kept_fed(
    tmp_path: Path, systemd: NotifyListener, caplog: pytest.LogCaptureFixture
) -> None:
    service = ServiceNotifier(
        environ={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"}, pid=os.getpid()
    )
    pid_file = tmp_path / "pid"
    command = f"echo $$ > {pid_file}; exec sleep 30"
    assert hard_reset.reboot(command, 1.0, service) is False
    assert "still running after 1 s; killing it and restarting the daemon" in caplog.text
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # killed and reaped
    # Pinged every 0.1 s while waiting: the fall-back is not pre-empted by the watchdog.
    assert len(systemd.having("WATCHDOG", "1")) >= 5
    assert systemd.statuses()[0] == f"hard reset: running {command}"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_the_stop_signal_of_a_rebooting_board_ends_the_wait() -> None:
    result = _python(
        "from firmware import hard_reset, stop_signals\n"
        "from firmware.service_notify import ServiceNotifier\n"
        "stop_signals.install(); stop_signals.hold()\n"
        "print(hard_reset.reboot('kill -TERM $PPID', 20, ServiceNotifier(environ={})))\n"
    )
    assert result.stdout.strip() == "True", result.stderr


def test_a_held_stop_signal_survives_execv() -> None:
    """What a restart relies on: one that came just before execv stops the new image."""
    result = _python(
        "import os, signal, sys\n"
        "from firmware import stop_signals\n"
        "stop_signals.install(); stop_signals.hold()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "assert stop_signals.arrived()\n"
        "os.execv(sys.executable, [sys.executable, '-c', "
        "'import signal; print(signal.SIGTERM in signal.sigpending())'])\n"
    )
    assert result.stdout.strip() == "True", result.stderr
