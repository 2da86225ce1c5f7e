"""OCPP 2.0.1 requests that steer the station's connectors and sessions.

- F01-F03 RequestStartTransaction / RequestStopTransaction: the same station
  commands as 1.6's remote start and stop. The remoteStartId is remembered for
  the EVSE the start goes to and rides on that transaction's Started event
  (triggerReason RemoteStart). A chargingProfile must be a TxProfile with one
  schedule the smart-charging engine accepts, else Rejected.
- E14 GetTransactionStatus: whether a transaction is ongoing, and whether
  TransactionEvents (of it, or of any) wait in the queue.
- G03/G04 ChangeAvailability of the station, an EVSE (all its connectors) or one
  connector: Accepted, Scheduled while a transaction runs there (applied when it
  ends), Rejected for an EVSE or connector the station does not have; persisted
  by the core.
- F05 UnlockConnector: Unlocked / UnlockFailed; OngoingAuthorizedTransaction
  while a transaction runs there (F05.FR.02: it is not ended for it);
  UnknownConnector; a fixed cable (no lock) is UnlockFailed.
- C11 ClearCache; P01 DataTransfer (UnknownVendorId unless a vendor handler is
  registered).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from firmware.auth.cache import AuthCache
from firmware.connector.controller import ConnectorController
from firmware.ocpp.data_transfer import DataTransferHandler, answer_data_transfer
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v201.device_model.topology import Topology
from firmware.ocpp.v201.transactions import TransactionNumbers
from firmware.ocpp.versions import V201
from firmware.queue import Outbox
from firmware.station import RemoteTarget, Station

log = logging.getLogger("firmware.ocpp.v201.control")

ProfileCheck = Callable[[dict[str, Any], int], bool]


def v16_profile(profile: dict[str, Any]) -> dict[str, Any] | None:
    """A 2.0.1 ChargingProfile in the smart-charging engine's (1.6) shape; None when it
    has more than one schedule (the engine keeps one per profile)."""
    schedules = profile["chargingSchedule"]
    if len(schedules) != 1:
        return None
    schedule = schedules[0]
    periods = [
        {k: period[k] for k in ("startPeriod", "limit", "numberPhases") if k in period}
        for period in schedule["chargingSchedulePeriod"]
    ]
    converted_schedule = {
        k: schedule[k]
        for k in ("duration", "startSchedule", "chargingRateUnit", "minChargingRate")
        if k in schedule
    }
    converted: dict[str, Any] = {
        "chargingProfileId": profile["id"],
        "stackLevel": profile["stackLevel"],
        "chargingProfilePurpose": profile["chargingProfilePurpose"],
        "chargingProfileKind": profile["chargingProfileKind"],
        "chargingSchedule": {**converted_schedule, "chargingSchedulePeriod": periods},
    }
    for key in ("recurrencyKind", "validFrom", "validTo"):
        if key in profile:
            converted[key] = profile[key]
    return converted


class RemoteStarts:
    """The remoteStartId of each start the CSMS asked for, until its transaction starts."""

    def __init__(self) -> None:
        self._waiting: dict[int, tuple[str, int]] = {}

    def expect(self, connector_id: int, id_tag: str, remote_start_id: int) -> None:
        self._waiting[connector_id] = (id_tag, remote_start_id)

    def take(self, connector_id: int, id_tag: str) -> int | None:
        """The remoteStartId of a transaction that starts now on ``connector_id``."""
        waiting = self._waiting.pop(connector_id, None)
        if waiting is None or waiting[0].casefold() != id_tag.casefold():
            return None
        return waiting[1]


class ControlHandlers:
    def __init__(
        self,
        station: Station,
        topology: Topology,
        numbers: TransactionNumbers,
        outbox: Outbox,
        cache: AuthCache,
        remote_starts: RemoteStarts,
        *,
        accepted: Callable[[], bool],
        profile_ok: ProfileCheck,
    ) -> None:
        self.station = station
        self.topology = topology
        self.numbers = numbers
        self.outbox = outbox
        self.cache = cache
        self.remote_starts = remote_starts
        self.accepted = accepted  # registered with the CSMS
        self.profile_ok = profile_ok
        # vendorId -> handler(messageId, data) -> (status, data)
        self.data_transfer: dict[str, DataTransferHandler] = {}

    def register(self, rpc: Rpc) -> None:
        for action, handler in (
            ("RequestStartTransaction", self.request_start),
            ("RequestStopTransaction", self.request_stop),
            ("GetTransactionStatus", self.get_transaction_status),
            ("ChangeAvailability", self.change_availability),
            ("UnlockConnector", self.unlock_connector),
            ("ClearCache", self.clear_cache),
            ("DataTransfer", self.data_transfer_request),
        ):
            rpc.on(action, handler, version=V201)

    # ------------------------------------------------------------ addressing

    def _connector(self, evse_id: int, connector_id: int) -> ConnectorController | None:
        try:
            number = self.topology.station_connector(evse_id, connector_id)
        except KeyError:
            return None
        return self.station.connectors.get(number)

    def _transaction(self, transaction_id: str) -> ConnectorController | None:
        local_id = self.numbers.local_id(transaction_id)
        if local_id is None:
            return None
        for controller in self.station.connectors.values():
            if controller.tx is not None and controller.tx.local_id == local_id:
                return controller
        return None

    # ------------------------------------------------------------ F01-F03

    async def request_start(self, req: dict[str, Any]) -> Reply:
        rejected = Reply({"status": "Rejected"})
        if not self.accepted():
            return rejected
        id_tag = str(req["idToken"]["idToken"])
        target = self._start_target(req.get("evseId"), id_tag)
        if target is None:
            return rejected
        connector_id = target.controller.id
        profile = req.get("chargingProfile")
        converted = None
        if profile is not None:
            converted = v16_profile(profile)
            if converted is None or not self.profile_ok(converted, connector_id):
                return rejected
        self.remote_starts.expect(connector_id, id_tag, int(req["remoteStartId"]))

        async def start() -> None:
            await self.station.remote_start(target, id_tag, converted)

        return Reply({"status": "Accepted"}, after=start)

    def _start_target(self, evse_id: int | None, id_tag: str) -> RemoteTarget | None:
        if evse_id is None:
            return self.station.remote_start_target(None, id_tag)
        connectors = self.topology.connectors_of(evse_id)
        if connectors is None:
            return None
        targets = [self.station.remote_start_target(c, id_tag) for c in connectors]
        found = [t for t in targets if t is not None]
        plugged = [t for t in found if t.controller.pilot.plugged]
        chosen = plugged or found
        return chosen[0] if chosen else None

    async def request_stop(self, req: dict[str, Any]) -> Reply:
        controller = self._transaction(str(req["transactionId"]))
        if controller is None or not self.accepted():
            return Reply({"status": "Rejected"})

        async def stop() -> None:
            await controller.stop("Remote")

        return Reply({"status": "Accepted"}, after=stop)

    # ------------------------------------------------------------ E14

    async def get_transaction_status(self, req: dict[str, Any]) -> Reply:
        transaction_id = req.get("transactionId")
        if transaction_id is None:
            queued = self.outbox.queued("TransactionEvent")
            return Reply({"messagesInQueue": queued > 0})
        local_id = self.numbers.local_id(str(transaction_id))
        ongoing = self._transaction(str(transaction_id)) is not None
        queued = 0 if local_id is None else self.outbox.queued("TransactionEvent", local_id)
        return Reply({"ongoingIndicator": ongoing, "messagesInQueue": queued > 0})

    # ------------------------------------------------------------ G03, G04

    async def change_availability(self, req: dict[str, Any]) -> Reply:
        operative = req["operationalStatus"] == "Operative"
        evse = req.get("evse")
        if evse is None or int(evse["id"]) == 0:
            return Reply({"status": await self.station.change_availability(0, operative)})
        evse_id = int(evse["id"])
        if "connectorId" in evse:
            controller = self._connector(evse_id, int(evse["connectorId"]))
            if controller is None:
                return Reply({"status": "Rejected"})
            connectors: tuple[int, ...] = (controller.id,)
        else:
            found = self.topology.connectors_of(evse_id)
            if found is None:
                return Reply({"status": "Rejected"})
            connectors = found
        results = [await self.station.change_availability(c, operative) for c in connectors]
        return Reply({"status": "Scheduled" if "Scheduled" in results else "Accepted"})

    # ------------------------------------------------------------ F05

    async def unlock_connector(self, req: dict[str, Any]) -> Reply:
        controller = self._connector(int(req["evseId"]), int(req["connectorId"]))
        if controller is None:
            return Reply({"status": "UnknownConnector"})
        if controller.tx is not None:
            return Reply({"status": "OngoingAuthorizedTransaction"})
        result = await controller.unlock()
        return Reply({"status": "Unlocked" if result == "Unlocked" else "UnlockFailed"})

    # ------------------------------------------------------------ C11, P01

    async def clear_cache(self, _req: dict[str, Any]) -> Reply:
        self.cache.clear()
        return Reply({"status": "Accepted"})

    async def data_transfer_request(self, req: dict[str, Any]) -> Reply:
        return Reply(await answer_data_transfer(self.data_transfer, req))
