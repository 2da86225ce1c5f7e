"""The device model's run-time states, kept from the station's statuses (OCPP 2.0.1).

- ``AvailabilityState`` of each Connector (its connectorStatus), of each EVSE
  (Faulted or Unavailable when all its connectors are; Occupied, Reserved or
  Available from the busiest of them) and of the ChargingStation (from the
  station's own status: Available, Unavailable or Faulted);
- ``Problem`` of each Connector and EVSE: true while Faulted, and of the
  ChargingStation while the station itself is Faulted;
- ``ConnectorPlugRetentionLock.Problem`` of a connector: true while its lock
  failed (G05).

A Problem that turns true or false is also told to the CSMS with a NotifyEvent
(trigger Delta, HardWiredNotification) while online, as G05 asks for the lock;
eventIds count up per station and are kept across restarts. A GetReport or a
SummaryInventory reads these states as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from firmware.clock import Clock, iso
from firmware.connector.status import Status
from firmware.ocpp.v201.device_model import Component, DeviceModel, Variable
from firmware.ocpp.v201.device_model.topology import Topology
from firmware.ocpp.v201.status import connector_status
from firmware.storage.db import Database

log = logging.getLogger("firmware.ocpp.v201.states")

AVAILABILITY = Variable("AvailabilityState")
PROBLEM = Variable("Problem")
LOCK = "ConnectorPlugRetentionLock"
LOCK_FAILURE = "ConnectorLockFailure"
EVENT_COUNTER = "v201_event_id"
# The busiest connector decides an EVSE's state (a faulted or unavailable EVSE is one
# whose connectors all are).
_BUSY = ("Occupied", "Reserved", "Available")


class StateMirror:
    def __init__(
        self,
        model: DeviceModel,
        topology: Topology,
        db: Database,
        clock: Clock,
        *,
        notify: Callable[[dict[str, Any]], None],
    ) -> None:
        self.model = model
        self.topology = topology
        self.db = db
        self.clock = clock
        self.notify = notify  # sends a NotifyEvent request while online
        self._connectors: dict[int, str] = {}
        self._problems: dict[tuple[Any, ...], bool] = {}

    def status_changed(self, connector_id: int, status: Status) -> None:
        """A status of the station (0) or of one of its connectors."""
        try:
            if connector_id == 0:
                self._station(status)
            else:
                self._connector(connector_id, status)
        except Exception:
            log.exception("device model states not updated for connector %d", connector_id)

    def _station(self, status: Status) -> None:
        station = Component("ChargingStation")
        state = status.status if status.status in ("Unavailable", "Faulted") else "Available"
        self._set(station, AVAILABILITY, state)
        self._problem(station, status.status == "Faulted")

    def _connector(self, connector_id: int, status: Status) -> None:
        try:
            evse_id, number = self.topology.address(connector_id)
        except KeyError:
            return
        state = connector_status(status)
        self._connectors[connector_id] = state
        connector = Component("Connector", evse=evse_id, connector=number)
        self._set(connector, AVAILABILITY, state)
        self._problem(connector, state == "Faulted")
        lock_failed = status.status == "Faulted" and status.error_code == LOCK_FAILURE
        self._problem(Component(LOCK, evse=evse_id, connector=number), lock_failed, known=False)
        evse = self.topology.evses[evse_id - 1]
        states = [self._connectors.get(c, "Available") for c in evse.station_connectors]
        evse_state = next((s for s in _BUSY if s in states), states[0])
        if all(s == "Faulted" for s in states):
            evse_state = "Faulted"
        elif all(s in ("Unavailable", "Faulted") for s in states):
            evse_state = "Unavailable"
        component = Component("EVSE", evse=evse_id)
        self._set(component, AVAILABILITY, evse_state)
        self._problem(component, evse_state == "Faulted")

    def _set(self, component: Component, variable: Variable, value: str) -> None:
        if self.model.catalog.find(component, variable) is not None:
            self.model.update(component, variable, value)

    def _problem(self, component: Component, problem: bool, *, known: bool = True) -> None:
        """``known``: the device model has the component (its Problem is kept there too)."""
        if known:
            self._set(component, PROBLEM, "true" if problem else "false")
        key = component.key()
        before = self._problems.get(key, False)
        self._problems[key] = problem
        if problem == before:
            return
        now = self.clock.now()
        self.notify(
            {
                "generatedAt": iso(now),
                "seqNo": 0,
                "tbc": False,
                "eventData": [
                    {
                        "eventId": self._next_event_id(),
                        "timestamp": iso(now),
                        "trigger": "Delta",
                        "actualValue": "true" if problem else "false",
                        "component": component.to_json(),
                        "variable": PROBLEM.to_json(),
                        "eventNotificationType": "HardWiredNotification",
                    }
                ],
            }
        )

    def _next_event_id(self) -> int:
        with self.db.transaction(durable=False):
            self.db.count_up(EVENT_COUNTER)
            return self.db.counter(EVENT_COUNTER)
