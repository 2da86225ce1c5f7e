"""Life cycle shared by the backends that run real drivers (emulated, hardware).

``run_drivers`` runs every part's ``run()`` in one TaskGroup; when that ends
(cancelled, or a driver failed) it first brings the station to safe state
while the buses and pins still work, then closes the buses. ``safe_state``
withdraws every offer and opens every relay, logging what fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping

import can

from hal.interfaces import ConnectorHardware

log = logging.getLogger("hal")

SAFE_STATE_TIMEOUT_S = 2.0


class DriverSet:
    """The parts a backend runs, the CAN buses it opened and its connectors."""

    def __init__(self, connectors: Mapping[int, ConnectorHardware]) -> None:
        self.connectors = connectors
        self.parts: list[object] = []
        self.buses: list[can.BusABC] = []
        self.buses_down = False

    async def run(self) -> None:
        """Run every part until cancelled; safe state, then the buses close."""
        try:
            async with asyncio.TaskGroup() as tg:
                for part in self.parts:
                    run = getattr(part, "run", None)
                    if run is not None:
                        tg.create_task(run(), name=type(part).__name__)
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SAFE_STATE_TIMEOUT_S):
                    await self.safe_state()
            self.close_buses()

    def close_buses(self) -> None:
        self.buses_down = True
        for bus in self.buses:
            with contextlib.suppress(Exception):
                bus.shutdown()

    async def safe_state(self) -> None:
        """Stop offering and open every relay; never raises."""
        await safe_state(self.connectors.values(), offer=not self.buses_down)


async def safe_state(connectors: Iterable[ConnectorHardware], *, offer: bool = True) -> None:
    """Withdraw the offers (unless ``offer`` is False: nothing to send them on) and open relays."""
    for hw in connectors:
        if offer:
            try:
                await hw.evse.offer_current(0.0)
            except Exception as err:
                log.error("connector %d: cannot stop offering: %s", hw.connector_id, err)
        try:
            await hw.relay.open()
        except Exception as err:
            log.error("connector %d: cannot open the relay: %s", hw.connector_id, err)
