"""Reception from and transmission to a python-can bus shared by several drivers.

python-can allows one active ``can.Notifier`` per bus object, and a bus read
by two notifiers would split its frames between them. ``receive`` therefore
keeps one notifier per bus, started by the first subscriber and stopped when
the last one leaves, and gives every subscriber its own
``can.AsyncBufferedReader`` fed with the identifiers it asked for.

The notifier polls with a short timeout so that stopping it (which joins its
reader thread) blocks the event loop only briefly. Stop every subscription
(leave the ``with`` block) before shutting the bus down.

``Transmitter`` sends without ever raising: a cyclic sender logs the first
failure of a run and the recovery, not every period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Iterator

import can

from hal.errors import HalConfigError

log = logging.getLogger("hal.can")

POLL_S = 0.05
SEND_TIMEOUT_S = 0.01


class FrameReader(can.AsyncBufferedReader):
    """An ``AsyncBufferedReader`` that keeps only frames with the given identifiers."""

    def __init__(self, frame_ids: Collection[int]) -> None:
        super().__init__()
        self.frame_ids = frozenset(frame_ids)

    def on_message_received(self, msg: can.Message) -> None:
        if msg.arbitration_id in self.frame_ids and not msg.is_error_frame:
            super().on_message_received(msg)

    def on_error(self, exc: Exception) -> None:
        log.error("CAN reception stopped: %s", exc)


class _Hub:
    def __init__(self, notifier: can.Notifier, loop: asyncio.AbstractEventLoop) -> None:
        self.notifier = notifier
        self.loop = loop
        self.readers: list[FrameReader] = []


_hubs: dict[can.BusABC, _Hub] = {}


def _attach(bus: can.BusABC, reader: FrameReader) -> None:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(bus)
    if hub is not None and hub.loop is not loop:
        raise HalConfigError(f"CAN bus {bus.channel_info!r} is already read in another loop")
    if hub is None:
        try:
            notifier = can.Notifier(bus, [reader], timeout=POLL_S, loop=loop)
        except ValueError as err:
            raise HalConfigError(f"CAN bus {bus.channel_info!r}: {err}") from err
        hub = _hubs[bus] = _Hub(notifier, loop)
    else:
        hub.notifier.add_listener(reader)
    hub.readers.append(reader)


def _detach(bus: can.BusABC, reader: FrameReader) -> None:
    reader.stop()
    hub = _hubs.get(bus)
    if hub is None or reader not in hub.readers:
        return
    hub.readers.remove(reader)
    if hub.readers:
        hub.notifier.remove_listener(reader)
        return
    del _hubs[bus]
    hub.notifier.stop(timeout=POLL_S * 10)


@contextlib.contextmanager
def receive(bus: can.BusABC, frame_ids: Collection[int]) -> Iterator[FrameReader]:
    """Receive the frames with ``frame_ids`` from ``bus`` while in the ``with`` block.

    Must be entered in the running event loop.
    """
    reader = FrameReader(frame_ids)
    _attach(bus, reader)
    try:
        yield reader
    finally:
        _detach(bus, reader)


def active(bus: can.BusABC) -> bool:
    """Whether some subscription is receiving from ``bus`` (for tests and diagnostics)."""
    return bus in _hubs


class Transmitter:
    """Sends frames on ``bus``; failures are logged once per run of failures."""

    def __init__(self, bus: can.BusABC, what: str) -> None:
        self._bus = bus
        self._what = what
        self._failing = False
        self.failures = 0

    def send(self, frame: can.Message) -> bool:
        """Send ``frame``; False when the bus refused it."""
        try:
            self._bus.send(frame, timeout=SEND_TIMEOUT_S)
        except can.CanError as err:
            self.failures += 1
            if not self._failing:
                log.warning("%s: cannot send frame %#x: %s", self._what, frame.arbitration_id, err)
            self._failing = True
            return False
        if self._failing:
            log.info("%s: sending frames again", self._what)
            self._failing = False
        return True
