"""Tell systemd how the daemon is doing: sd_notify over ``$NOTIFY_SOCKET``, and a watchdog.

The protocol is one datagram per message, sent to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` names the abstract namespace), holding
newline-separated assignments such as ``READY=1``. Without the variable every
call does nothing, so the daemon behaves the same outside systemd. A failure
to notify is logged once and never raised: it must not take the daemon down.

Life cycle as the unit (``Type=notify``) sees it:

- ``READY=1`` once the hardware is up and the state database is open;
- ``STATUS=…`` whenever the link to the CSMS changes (``systemctl status``);
- ``WATCHDOG=1`` every half of ``$WATCHDOG_USEC``, sent from the event loop and
  withheld after the loop stalled for longer than the watchdog interval, so a
  hung loop gets the process restarted;
- ``STOPPING=1`` when shutting down, or ``RELOADING=1`` before the daemon
  re-executes itself in place (OCPP Reset): the main PID stays the same, the
  new image then sends ``READY=1``, which ends the reload. ``STOPPING=1`` would
  be wrong there: systemd would wait for the process to exit (and since
  systemd 259 that state is final).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware.ocpp.connection import LinkState

log = logging.getLogger("firmware.service")


def socket_address(value: str) -> str | None:
    """The address for ``socket.sendto`` named by a ``$NOTIFY_SOCKET`` value, if supported."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock: and anything else: not for a daemon on a board


def watchdog_interval_s(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog interval systemd asks this process to keep, or None.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    try:
        if owner and int(owner) != pid:
            return None
        interval = int(usec)
    except ValueError:
        log.warning("ignoring the watchdog: WATCHDOG_USEC=%r WATCHDOG_PID=%r", usec, owner)
        return None
    return interval / 1_000_000 if interval > 0 else None


class ServiceNotifier:
    """Sends notifications to the service manager that started us (if any)."""

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        self._socket = env.get("NOTIFY_SOCKET", "")
        self._address = socket_address(self._socket) if self._socket else None
        if self._socket and self._address is None:
            log.warning("unsupported NOTIFY_SOCKET=%r: not notifying systemd", self._socket)
        interval = watchdog_interval_s(env, os.getpid() if pid is None else pid)
        self.watchdog_s = interval if self._address is not None else None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send one message of ``KEY=value`` assignments; True when it was sent."""
        if self._address is None:
            return False
        data = "\n".join(assignments).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # A service manager that does not read its queue must not block the loop.
                sock.setblocking(False)
                sock.sendto(data, self._address)
        except (OSError, ValueError) as err:
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot notify the service manager at %s: %s (further failures not logged)",
                    self._socket,
                    err,
                )
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", _status(status))

    def status(self, status: str) -> bool:
        return self.notify(_status(status))

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", _status(status))

    def reloading(self, status: str) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", _status(status))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


def _status(text: str) -> str:
    return "STATUS=" + " ".join(text.splitlines())


class Watchdog:
    """Pings ``WATCHDOG=1`` every half interval while the event loop keeps time.

    Each wake-up measures how late the loop woke it (scheduled vs actual). A
    wake-up later than the whole watchdog interval means the loop stalled for
    as long as systemd tolerates: that ping is withheld rather than hiding the
    stall. A loop that stays blocked sends nothing at all, since the pings come
    from the loop itself and not from a thread of their own.
    """

    def __init__(self, notifier: ServiceNotifier, interval_s: float) -> None:
        self.notifier = notifier
        self.interval_s = interval_s
        self.period_s = interval_s / 2
        self.pings = 0
        self.withheld = 0
        self.worst_lag_s = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._ping()
        while True:
            due = loop.time() + self.period_s
            await asyncio.sleep(self.period_s)
            lag = loop.time() - due
            self.worst_lag_s = max(self.worst_lag_s, lag)
            if lag > self.interval_s:
                self.withheld += 1
                log.error(
                    "the event loop stalled for %.1f s (watchdog %.1f s): withholding the ping",
                    lag,
                    self.interval_s,
                )
                continue
            self._ping()

    def _ping(self) -> None:
        if self.notifier.watchdog():
            self.pings += 1


def link_status(link: LinkState, registration: str | None, online: bool) -> str:
    """One line for ``systemctl status``: where the station stands with its CSMS."""
    if link.phase == "connected":
        if online:
            return f"online: connected to {link.url}, boot accepted"
        if registration in ("Pending", "Rejected"):
            return f"connected to {link.url}, boot {registration.lower()}; retrying later"
        return f"connected to {link.url}, registering"
    if link.phase == "offline":
        retry = f"; retry in {link.retry_s:.1f} s" if link.retry_s is not None else ""
        return f"offline: {link.detail or link.url}{retry}"
    return f"connecting to {link.url}"
