"""Remote Trigger profile: TriggerMessage.

The answer goes out first; the requested message is sent once the
CALLRESULT is on the wire (``Reply.after``). What is sent comes from the
modules that send it anyway: registration (BootNotification, Heartbeat), the
status notifier (StatusNotification), the connectors' meters and
``firmware.metering`` (MeterValues, context Trigger). The diagnostics and
firmware states come from providers the Firmware Management profile can set.
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
from firmware.settings import Measurands
from firmware.station import Station

log = logging.getLogger("firmware.ocpp.trigger")

StatusProvider = Callable[[], str]


class TriggerHandlers:
    """Registers TriggerMessage on an Rpc and sends what it asks for."""

    def __init__(
        self,
        station: Station,
        registration: Registration,
        notifier: StatusNotifier,
        *,
        diagnostics_status: StatusProvider = lambda: "Idle",
        firmware_status: StatusProvider = lambda: "Idle",
    ) -> None:
        self.station = station
        self.registration = registration
        self.notifier = notifier
        # Replaceable: the Firmware Management profile reports its real states.
        self.diagnostics_status = diagnostics_status
        self.firmware_status = firmware_status
        self._rpc: Rpc | None = None
        self._senders: dict[str, Callable[[int | None], Coroutine[Any, Any, None]]] = {
            "BootNotification": self._boot_notification,
            "DiagnosticsStatusNotification": self._diagnostics_status_notification,
            "FirmwareStatusNotification": self._firmware_status_notification,
            "Heartbeat": self._heartbeat,
            "MeterValues": self._meter_values,
            "StatusNotification": self._status_notification,
        }

    def bind(self, rpc: Rpc) -> None:
        """Send over ``rpc`` without taking TriggerMessage (ExtendedTriggerMessage reuses
        the senders while RemoteTrigger is left out)."""
        self._rpc = rpc

    def register(self, rpc: Rpc) -> None:
        self.bind(rpc)
        rpc.on("TriggerMessage", self.trigger_message)

    def sender(self, requested: str) -> Callable[[int | None], Coroutine[Any, Any, None]] | None:
        """What is sent for ``requested`` (None: withdrawn or unknown)."""
        return self._senders.get(requested)

    def withdraw(self, *requested: str) -> None:
        """Answer NotImplemented for ``requested`` (their profile is not supported)."""
        for message in requested:
            self._senders.pop(message, None)

    @property
    def rpc(self) -> Rpc:
        if self._rpc is None:
            raise RuntimeError("TriggerHandlers are not registered")
        return self._rpc

    async def trigger_message(self, req: dict[str, Any]) -> Reply:
        requested = str(req["requestedMessage"])
        raw = req.get("connectorId")
        connector_id = int(raw) if raw is not None else None
        sender = self._senders.get(requested)
        if sender is None:  # withdrawn, or a value of a newer schema
            log.info("TriggerMessage %s: NotImplemented", requested)
            return Reply({"status": "NotImplemented"})
        if connector_id is not None and not self.connector_fits(requested, connector_id):
            log.info("TriggerMessage %s for connector %d: Rejected", requested, connector_id)
            return Reply({"status": "Rejected"})

        async def send() -> None:
            await sender(connector_id)

        log.info("TriggerMessage %s (connector %s): Accepted", requested, connector_id)
        return Reply({"status": "Accepted"}, after=send)

    def connector_fits(self, requested: str, connector_id: int) -> bool:
        """A connector that exists (0 is the station; it has no main meter)."""
        if connector_id in self.station.connectors:
            return True
        return connector_id == 0 and requested != "MeterValues"

    # ------------------------------------------------------------ senders

    async def _call(self, action: str, payload: dict[str, Any]) -> None:
        try:
            await self.rpc.call(action, payload)
        except CallFailed as err:
            log.warning("triggered %s not delivered: %s", action, err)

    async def _boot_notification(self, _connector_id: int | None) -> None:
        await self.registration.trigger_boot()

    async def _heartbeat(self, _connector_id: int | None) -> None:
        await self.registration.send_heartbeat()

    async def _diagnostics_status_notification(self, _connector_id: int | None) -> None:
        await self._call("DiagnosticsStatusNotification", {"status": self.diagnostics_status()})

    async def _firmware_status_notification(self, _connector_id: int | None) -> None:
        await self._call("FirmwareStatusNotification", {"status": self.firmware_status()})

    async def _status_notification(self, connector_id: int | None) -> None:
        # Connector 0 and every connector, unless one is named.
        targets = [connector_id] if connector_id is not None else [0, *self.station.connectors]
        for target in targets:
            await self.notifier.send_current(target)

    async def _meter_values(self, connector_id: int | None) -> None:
        connectors = self.station.connectors
        targets = (
            [connectors[connector_id]] if connector_id is not None else list(connectors.values())
        )
        for controller in targets:
            message = await self._meter_message(controller)
            if message is not None:
                await self._call("MeterValues", message)

    async def _meter_message(self, controller: ConnectorController) -> dict[str, Any] | None:
        sample = await controller.current_sample()
        if sample is None:
            log.warning("triggered MeterValues: connector %d has no reading", controller.id)
            return None
        measurands = self.station.ctx.settings.measurands(Measurands.PERIODIC) or [ENERGY]
        values = sampled_values(sample, measurands, "Trigger")
        if not values:
            values = sampled_values(sample, [ENERGY], "Trigger")
        at = self.station.ctx.clock.now()
        message: dict[str, Any] = {
            "connectorId": controller.id,
            "meterValue": [meter_value(at, values)],
        }
        tx = controller.tx
        if tx is not None and tx.record.csms_id is not None:
            message["transactionId"] = tx.record.csms_id
        return message
