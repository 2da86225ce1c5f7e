"""Plant control for the emulated backend: the same commands as the simulator's.

Vehicles and faults change the shared ``World`` (the simulator's validation
and physics); the emulators then show it on their wires and the real drivers
report it. Only what has no wire of its own is acted out here: a card held to
a reader, a reader unplugged.

A token for a connector goes to that connector's UID-per-line reader, which
passes any idTag through unchanged. A token for the station goes to the
PN532 when it is a UID the PN532 reads back exactly (upper-case hex, 1 to 10
bytes); any other token (``RFID_VALID1``, ``user-42``, lower-case hex) goes to
the station's UID-per-line reader, as a keypad or QR reader would deliver it.

A tap holds the card to the reader for ``TAP_S``; taps on the same reader are
played one after another with ``GAP_S`` of empty field between them, longer
than the drivers' same-card hold-off, so two quick taps of one card (start,
then stop) are both read, as they would be from a driver lifting the card.
"""

from __future__ import annotations

import asyncio
import logging
import string
from typing import TYPE_CHECKING

from hal.emulators.pn532_device import Pn532Device
from hal.emulators.serial_link import SerialLink
from hal.interfaces import Fault, FaultChanged, HalEvent, TokenPresented
from hal.sim.plant import SimPlant
from hal.sim.world import World

if TYPE_CHECKING:
    from hal.emulated.backend import EmulatedBackend

log = logging.getLogger("hal.emulated")

TAP_S = 0.25  # how long a card is held to the reader (two polls of the PN532 driver)
GAP_S = 0.45  # empty field between two taps on one reader (driver hold-off: 0.3 s)
PN532_MAX_UID_BYTES = 10
_UPPER_HEX = frozenset(string.digits + "ABCDEF")


def pn532_reads_back(uid: str) -> bool:
    """Whether a card with this UID on the PN532 gives exactly ``uid`` as its idTag."""
    return 0 < len(uid) <= 2 * PN532_MAX_UID_BYTES and len(uid) % 2 == 0 and set(uid) <= _UPPER_HEX


class LineReaderDevice:
    """The far side of a reader that prints one UID per line when a card arrives."""

    def __init__(self, link: SerialLink) -> None:
        self.link = link

    def send(self, uid: str) -> None:
        self.link.write(f"{uid}\r\n".encode("ascii"))

    async def run(self) -> None:
        await self.link.run()


class EmulatedPlant(SimPlant):
    def __init__(
        self, world: World, events: asyncio.Queue[HalEvent], backend: EmulatedBackend
    ) -> None:
        super().__init__(world, events)
        self._backend = backend
        self._free_at: dict[object, float] = {}  # reader device → when its field is empty again

    def _emit(self, event: HalEvent) -> None:
        if isinstance(event, TokenPresented):
            self._tap(event.uid, event.connector_id)
        elif isinstance(event, FaultChanged) and event.fault is Fault.READER_OFFLINE:
            link = (
                self._backend.pn532.link
                if event.connector_id == 0
                else self._backend.line_readers[event.connector_id].link
            )
            if event.active:
                link.unplug()
            else:
                link.replug()
        # Everything else is on a wire: the drivers report it.

    def _tap(self, uid: str, connector_id: int | None) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        device: Pn532Device | LineReaderDevice
        if connector_id is not None:
            device = self._backend.line_readers[connector_id]
        elif pn532_reads_back(uid):
            device = self._backend.pn532
        else:
            device = self._backend.station_line_reader
        start = max(now, self._free_at.get(device, now))
        self._free_at[device] = start + TAP_S + GAP_S
        if isinstance(device, Pn532Device):
            loop.call_at(start, device.present, uid)
            loop.call_at(start + TAP_S, device.remove)
        else:
            loop.call_at(start, device.send, uid)
