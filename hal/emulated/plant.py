"""Plant control for the emulated backend: the same commands as the simulator's.

Vehicles and faults change the shared ``World`` (the simulator's validation
and physics); the emulators then show it on their wires and the real drivers
report it. Only what has no wire of its own is acted out here: a card held to
a reader, a reader unplugged.

A tap holds the card to the reader for ``TAP_S``; taps on the same reader are
played one after another with ``GAP_S`` of empty field between them, longer
than the drivers' same-card hold-off, so two quick taps of one card (start,
then stop) are both read, as they would be from a driver lifting the card.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hal.emulators.serial_link import SerialLink
from hal.interfaces import Fault, FaultChanged, HalEvent, TokenPresented
from hal.sim.plant import SimPlant
from hal.sim.world import World

if TYPE_CHECKING:
    from hal.emulated.backend import EmulatedBackend

log = logging.getLogger("hal.emulated")

TAP_S = 0.25  # how long a card is held to the reader (two polls of the PN532 driver)
GAP_S = 0.45  # empty field between two taps on one reader (driver hold-off: 0.3 s)


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
        self._free_at: dict[int | None, float] = {}  # reader → when its field is empty again

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
        start = max(now, self._free_at.get(connector_id, now))
        self._free_at[connector_id] = start + TAP_S + GAP_S
        if connector_id is None:
            pn532 = self._backend.pn532
            loop.call_at(start, pn532.present, uid)
            loop.call_at(start + TAP_S, pn532.remove)
        else:
            loop.call_at(start, self._backend.line_readers[connector_id].send, uid)
