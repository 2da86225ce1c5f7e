"""OCPP 2.0.1 Reset (B11 the station, B12 one EVSE).

The whole station:
- Immediate: Accepted; ongoing transactions end (stoppedReason ImmediateReset)
  and the daemon restarts, as for 1.6's Reset Soft;
- OnIdle: Accepted and the restart when nothing charges; with a transaction
  ongoing, Scheduled, and the restart once the last one has ended (B11.FR.05).
One EVSE (``evseId``):
- Immediate: Accepted; its transaction ends (ImmediateReset, the relay opens and
  the lock follows the usual stop rules); an idle EVSE has nothing to reset;
- OnIdle: with a transaction there, Scheduled and done when it ends; else as
  Immediate. An EVSE the station does not have: Rejected.
A Reset while one is already scheduled replaces it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from firmware.connector.controller import ConnectorController
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v201.device_model.topology import Topology
from firmware.ocpp.versions import V201
from firmware.station import Station

log = logging.getLogger("firmware.ocpp.reset")

# The station's stop reason for a reset (2.0.1's stoppedReason ImmediateReset).
RESET_REASON = "SoftReset"
IDLE_CHECK_S = 0.5

Restart = Callable[[str], Coroutine[Any, Any, None]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]


class ResetHandlers:
    def __init__(
        self, station: Station, topology: Topology, restart: Restart, spawn: Spawn
    ) -> None:
        self.station = station
        self.topology = topology
        self.restart = restart  # the daemon's restart ("Soft")
        self.spawn = spawn
        self._scheduled = 0  # the generation of the scheduled reset (0: none)

    def register(self, rpc: Rpc) -> None:
        rpc.on("Reset", self.reset, version=V201)

    def _of_evse(self, evse_id: int) -> list[ConnectorController] | None:
        numbers = self.topology.connectors_of(evse_id)
        if numbers is None:
            return None
        return [self.station.connectors[n] for n in numbers if n in self.station.connectors]

    async def reset(self, req: dict[str, Any]) -> Reply:
        immediate = req["type"] == "Immediate"
        evse_id = req.get("evseId")
        if evse_id is None:
            targets = list(self.station.connectors.values())
            act = self._restart_station
        else:
            found = self._of_evse(int(evse_id))
            if found is None:
                return Reply({"status": "Rejected"})
            targets = found

            async def act() -> None:
                await self._reset_evse(found)

        self._scheduled += 1
        busy = any(c.tx is not None for c in targets)
        if busy and not immediate:
            generation = self._scheduled
            log.info("Reset OnIdle scheduled: a transaction is ongoing")
            self.spawn(self._when_idle(targets, act, generation))
            return Reply({"status": "Scheduled"})
        return Reply({"status": "Accepted"}, after=act)

    async def _when_idle(
        self,
        targets: list[ConnectorController],
        act: Callable[[], Coroutine[Any, Any, None]],
        generation: int,
    ) -> None:
        while any(c.tx is not None for c in targets):
            await asyncio.sleep(IDLE_CHECK_S)
            if generation != self._scheduled:
                return  # another Reset replaced this one
        if generation == self._scheduled:
            await act()

    async def _restart_station(self) -> None:
        await self.restart("Soft")

    async def _reset_evse(self, connectors: list[ConnectorController]) -> None:
        for controller in connectors:
            await controller.stop(RESET_REASON)
        log.info("EVSE of connector(s) %s reset", [c.id for c in connectors])
