"""Plant control for the emulated backend: the same commands as the simulator's.

Vehicles and faults change the shared ``World`` (the simulator's validation
and physics); the emulators then show it on their wires and the real drivers
report it. Only what has no wire of its own is acted out here: a card held to
a reader, a reader unplugged.
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

TAP_S = 0.5  # how long a card is held to the reader


class LineReaderDevice:
    """The far side of a reader that prints one UID per line."""

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

    def _emit(self, event: HalEvent) -> None:
        if isinstance(event, TokenPresented):
            if event.connector_id is None:
                self._backend.pn532.present(event.uid)
                asyncio.get_running_loop().call_later(TAP_S, self._backend.pn532.remove)
            else:
                self._backend.line_readers[event.connector_id].send(event.uid)
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
        # Everything else is on a wire now: the drivers report it.
