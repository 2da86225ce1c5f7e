"""The loop every serial RFID reader shares: open, run the protocol, reopen.

A subclass implements ``_session(port)``: it speaks the reader's protocol on
an open port, calls ``_online()`` once the reader is known to work and
``_report(uid)`` for every UID it reads, and returns or raises ``HalError``
when the reader is lost. ``run()`` then closes the port, reports
``READER_OFFLINE`` (once per outage) and reopens with exponential backoff;
the fault is cleared when a later session comes online.

The same card held on the reader counts once: a UID is reported when it
appears and again only after it has not been read for ``present_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from hal.errors import HalConfigError, HalError
from hal.interfaces import Fault, FaultChanged, HalEvent, TokenPresented
from hal.serial.port import SerialPort
from hal.tokens import Tag

log = logging.getLogger(__name__)


def _positive(name: str, value: float) -> float:
    if not value > 0.0:
        raise HalConfigError(f"{name}: must be > 0, got {value!r}")
    return float(value)


class RfidReader:
    """Base of the serial RFID readers; see the module docstring.

    ``connector_id`` is put on every ``TokenPresented`` (None: station-wide
    reader); ``READER_OFFLINE`` faults are reported on ``connector_id or 0``.
    """

    def __init__(
        self,
        events: asyncio.Queue[HalEvent],
        *,
        port: str,
        baudrate: int,
        connector_id: int | None = None,
        reopen_min_s: float = 0.5,
        reopen_max_s: float = 10.0,
        present_timeout_s: float = 0.5,
    ) -> None:
        if not isinstance(port, str) or not port:
            raise HalConfigError(f"port: a serial device path is required, got {port!r}")
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
            raise HalConfigError(f"baudrate: must be a positive integer, got {baudrate!r}")
        self._events = events
        self._port = port
        self._baudrate = baudrate
        self._connector_id = connector_id
        self._reopen_min_s = _positive("reopen_min_s", reopen_min_s)
        self._reopen_max_s = _positive("reopen_max_s", reopen_max_s)
        if self._reopen_max_s < self._reopen_min_s:
            raise HalConfigError(
                f"reopen_max_s: must be >= reopen_min_s ({reopen_min_s}), got {reopen_max_s!r}"
            )
        self._present_timeout_s = _positive("present_timeout_s", present_timeout_s)
        self._offline_reported = False
        self._online_now = False
        self._last_seen: dict[str, float] = {}
        # Evidence of work done, for whoever waits on the reader (the tests): every
        # token read (a held card each time it is read) and every attempt to open.
        self.reads = 0
        self.open_attempts = 0

    @property
    def port(self) -> str:
        return self._port

    @property
    def baudrate(self) -> int:
        return self._baudrate

    @property
    def connector_id(self) -> int | None:
        return self._connector_id

    @property
    def online(self) -> bool:
        """True while a session is running and the reader answered."""
        return self._online_now

    async def run(self) -> None:
        """Read tokens until cancelled; the port is closed on the way out."""
        delay = self._reopen_min_s
        while True:
            self._online_now = False
            self.open_attempts += 1
            try:
                port = await SerialPort.open(self._port, self._baudrate)
            except HalConfigError:
                raise
            except HalError as err:
                log.debug("%s: %s", self._name(), err)
                await self._offline(err)
            else:
                try:
                    await self._session(port)
                    raise HalError("the reader session ended")
                except HalConfigError:
                    raise
                except HalError as err:
                    if self._online_now:
                        delay = self._reopen_min_s
                    await self._offline(err)
                finally:
                    self._online_now = False
                    port.close()
            log.debug("%s: reopening in %.2f s", self._name(), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2.0, self._reopen_max_s)

    async def _session(self, port: SerialPort) -> None:
        """Speak the reader's protocol on ``port`` until the reader is lost."""
        raise NotImplementedError

    async def _online(self) -> None:
        """The reader answers: clear a ``READER_OFFLINE`` reported before."""
        self._online_now = True
        if self._offline_reported:
            self._offline_reported = False
            log.info("%s: reader back online", self._name())
            await self._events.put(self._fault(False))

    async def _offline(self, reason: BaseException) -> None:
        if not self._offline_reported:
            self._offline_reported = True
            log.warning("%s: reader offline: %s", self._name(), reason)
            await self._events.put(self._fault(True))

    async def _report(self, uid: str) -> None:
        """A token was read now; report it, as it is, unless the same card is still held."""
        read_at = time.monotonic()
        self.reads += 1
        now = asyncio.get_running_loop().time()
        stale = [u for u, t in self._last_seen.items() if now - t >= self._present_timeout_s]
        for gone in stale:
            del self._last_seen[gone]
        first = uid not in self._last_seen
        self._last_seen[uid] = now
        if first:
            log.info("%s: token %s", self._name(), Tag(uid))
            await self._events.put(TokenPresented(uid, self._connector_id, read_at))

    def _fault(self, active: bool) -> FaultChanged:
        return FaultChanged(self._connector_id or 0, Fault.READER_OFFLINE, active)

    def _name(self) -> str:
        return f"{type(self).__name__}({self._port})"
