"""OCPP 2.0.1 TriggerMessage (F06): the station sends what the CSMS asks for, after
the answer.

- BootNotification (reason Triggered; before Accepted it makes the registration
  send one now), Heartbeat;
- StatusNotification: the current status of the connector ``evse`` names (its
  ``connectorId`` is required: without it the request is Rejected);
- MeterValues: a sample (context Trigger) of the EVSE named, or of every EVSE;
- TransactionEvent: an Updated event (triggerReason Trigger) of the transaction
  on the EVSE named, or of every ongoing one; none ongoing: Rejected.

- FirmwareStatusNotification and LogStatusNotification: Idle (no firmware update
  or log upload runs over 2.0.1 in this build).
- SignChargingStationCertificate (A02): a new key pair and a SignCertificate
  with its request (``sign_certificate``; without one, NotImplemented).

SignV2GCertificate and SignCombinedCertificate (no ISO 15118 here):
NotImplemented. An EVSE or connector the station does not have: Rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from firmware.connector.controller import ConnectorController
from firmware.metering import ENERGY, meter_value, sampled_values
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.registration import Registration
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.status_notifier import StatusNotifier
from firmware.ocpp.v201.device_model.topology import Topology
from firmware.ocpp.v201.transactions import V201Journal, meter_values
from firmware.ocpp.versions import V201
from firmware.settings import Measurands
from firmware.station import Station

log = logging.getLogger("firmware.ocpp.trigger")

Send = Callable[[], Coroutine[Any, Any, None]]
# Jobs 2.0.1 does not offer here: none ever runs, so their status is Idle (F06).
IDLE_JOBS = ("FirmwareStatusNotification", "LogStatusNotification")


class TriggerHandlers:
    def __init__(
        self,
        station: Station,
        topology: Topology,
        registration: Registration,
        notifier: StatusNotifier,
        journal: V201Journal,
        rpc: Rpc,
        *,
        sign_certificate: Send | None = None,
    ) -> None:
        self.station = station
        self.topology = topology
        self.registration = registration
        self.notifier = notifier
        self.journal = journal
        self.rpc = rpc
        self.sign_certificate = sign_certificate

    def register(self, rpc: Rpc) -> None:
        rpc.on("TriggerMessage", self.trigger_message, version=V201)

    def _evse_connectors(self, evse: dict[str, Any] | None) -> list[ConnectorController] | None:
        """The connectors ``evse`` names (all of them without one); None: not the station's."""
        if evse is None:
            return list(self.station.connectors.values())
        evse_id = int(evse["id"])
        numbers = self.topology.connectors_of(evse_id)
        if numbers is not None and "connectorId" in evse:
            try:
                numbers = (self.topology.station_connector(evse_id, int(evse["connectorId"])),)
            except KeyError:
                return None
        if numbers is None:
            return None
        return [self.station.connectors[n] for n in numbers if n in self.station.connectors]

    async def trigger_message(self, req: dict[str, Any]) -> Reply:
        requested = str(req["requestedMessage"])
        evse = req.get("evse")
        send: Send | None
        if requested == "BootNotification":
            send = self.registration.trigger_boot
        elif requested == "Heartbeat":
            send = self._heartbeat
        elif requested in IDLE_JOBS:
            send = self._idle(requested)
        elif requested == "SignChargingStationCertificate" and self.sign_certificate is not None:
            send = self.sign_certificate
        elif requested in ("StatusNotification", "MeterValues", "TransactionEvent"):
            targets = self._evse_connectors(evse)
            if targets is None or not targets:
                return Reply({"status": "Rejected"})
            send = self._sender(requested, evse, targets)
            if send is None:
                return Reply({"status": "Rejected"})
        else:
            return Reply({"status": "NotImplemented"})
        return Reply({"status": "Accepted"}, after=send)

    def _sender(
        self, requested: str, evse: dict[str, Any] | None, targets: list[ConnectorController]
    ) -> Send | None:
        if requested == "StatusNotification":
            if evse is None or "connectorId" not in evse:
                return None  # F06.FR.12: a StatusNotification names its connector
            connector = targets[0].id

            async def status() -> None:
                await self.notifier.send_current(connector)

            return status
        if requested == "MeterValues":

            async def meter_values_() -> None:
                for controller in targets:
                    await self._meter_values(controller)

            return meter_values_
        ongoing = [c for c in targets if c.tx is not None]
        if not ongoing:
            return None

        async def transaction_events() -> None:
            for controller in ongoing:
                await self._transaction_event(controller)

        return transaction_events

    def _idle(self, action: str) -> Send:
        async def send() -> None:
            try:
                await self.rpc.call(action, {"status": "Idle"}, version=V201)
            except CallFailed as err:
                log.warning("triggered %s not delivered: %s", action, err)

        return send

    async def _heartbeat(self) -> None:
        await self.registration.send_heartbeat()

    def _measurands(self) -> list[str]:
        return self.station.ctx.settings.measurands(Measurands.PERIODIC) or [ENERGY]

    async def _meter_values(self, controller: ConnectorController) -> None:
        sample = await controller.current_sample()
        if sample is None:
            log.warning("triggered MeterValues: connector %d has no reading", controller.id)
            return
        values = sampled_values(sample, self._measurands(), "Trigger")
        at = self.station.ctx.clock.now()
        evse_id, _ = self.topology.address(controller.id)
        payload = {"evseId": evse_id, "meterValue": meter_values([meter_value(at, values)])}
        try:
            await self.rpc.call("MeterValues", payload, version=V201)
        except CallFailed as err:
            log.warning("triggered MeterValues not delivered: %s", err)

    async def _transaction_event(self, controller: ConnectorController) -> None:
        tx = controller.tx
        sample = await controller.current_sample()
        if tx is None or sample is None:
            return
        at = self.station.ctx.clock.now()
        with self.station.ctx.db.transaction():
            self.journal.sampled(tx.record, sample, self._measurands(), "Trigger", at)
