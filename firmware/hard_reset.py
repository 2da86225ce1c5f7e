"""OCPP Reset Hard on a board: run ``reset.hard_command`` once the daemon has shut down.

It runs after transactions ended (reason HardReset), the relays opened, the
queued messages were delivered or committed and the state database was closed,
from the main thread with the event loop gone. The command is expected to
reboot the board (``systemctl reboot``), which stops the daemon with SIGTERM on
the way down: that signal ends the process with exit code 0.

The station is never left dead: when the command cannot start, exits non-zero,
or the stop signal has not come within ``reboot_timeout_s`` of starting it (a
command that exits 0 without rebooting, a reboot refused or stuck), the error is
logged and the caller re-executes the daemon, as without a command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time

from firmware import stop_signals
from firmware.service_notify import ServiceNotifier

log = logging.getLogger("firmware.reset")

SHELL = "/bin/sh"


def reboot(command: str, reboot_timeout_s: float, service: ServiceNotifier) -> bool:
    """Run ``command`` and wait for the board to stop us: True when a stop signal came."""
    log.warning("hard reset: running %s", command)
    service.status(f"hard reset: running {command}")
    try:
        # Its own process group (killed as one on time-out), with the signal mask and
        # the dispositions Python changed (SIGPIPE ignored) back to the defaults.
        pid = os.posix_spawn(
            SHELL,
            [SHELL, "-c", command],
            os.environ,
            setsid=True,
            setsigmask=(),
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except OSError as err:
        log.error("hard reset: cannot run %s: %s; restarting the daemon instead", command, err)
        return stop_signals.arrived()
    deadline = time.monotonic() + reboot_timeout_s
    ping_s = service.watchdog_s / 2 if service.watchdog_s is not None else None
    next_ping = time.monotonic()
    running = True
    while True:
        if running:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                running = False
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    log.error(
                        "hard reset: %s failed (%s); restarting the daemon instead",
                        command,
                        _describe(code),
                    )
                    return stop_signals.arrived()
                log.info(
                    "hard reset: %s done; waiting up to %g s for the board to go down",
                    command,
                    reboot_timeout_s,
                )
                service.status("hard reset: waiting for the board to reboot")
        now = time.monotonic()
        if ping_s is not None and now >= next_ping:
            service.watchdog()  # the fall-back below must not find the service killed
            next_ping = now + ping_s
        remaining = deadline - now
        if remaining <= 0:
            break
        if stop_signals.wait(min(remaining, 0.1)):
            log.info("hard reset: stop signal received; the board is going down")
            return True
    if running:
        log.error(
            "hard reset: %s still running after %g s; killing it and restarting the daemon",
            command,
            reboot_timeout_s,
        )
        _kill(pid)
    else:
        log.error(
            "hard reset: the board did not go down within %g s of %s; restarting the daemon",
            reboot_timeout_s,
            command,
        )
    return stop_signals.arrived()


def _describe(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
