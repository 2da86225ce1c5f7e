"""A connector status as OCPP 2.0.1 StatusNotification says it (G01-G04).

2.0.1 reports a connector of an EVSE (``evseId``, ``connectorId`` from the
topology), never the station as a whole, and has five statuses. The station's
statuses map onto them as OCPP 2.0.1 Part 2 (G01, the table of connector
statuses) lays out: Preparing, Charging, SuspendedEV, SuspendedEVSE and
Finishing are all Occupied; a change between two of them is no new status. The
error code of a Faulted connector is a NotifyEvent matter in 2.0.1 and not
part of StatusNotification.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

from ocpp.v201.enums import ConnectorStatusEnumType

from firmware.clock import iso
from firmware.connector.status import Status
from firmware.ocpp.v201.device_model.topology import Topology
from firmware.ocpp.versions import V201

_OCCUPIED = ConnectorStatusEnumType.occupied
CONNECTOR_STATUS = {
    "Available": ConnectorStatusEnumType.available,
    "Preparing": _OCCUPIED,
    "Charging": _OCCUPIED,
    "SuspendedEV": _OCCUPIED,
    "SuspendedEVSE": _OCCUPIED,
    "Finishing": _OCCUPIED,
    "Reserved": ConnectorStatusEnumType.reserved,
    "Unavailable": ConnectorStatusEnumType.unavailable,
    "Faulted": ConnectorStatusEnumType.faulted,
}


def connector_status(status: Status) -> str:
    return str(CONNECTOR_STATUS[status.status].value)


class V201Status:
    version = V201

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def minimum_duration_s(self) -> int:
        return 0

    def reported(self, status: Status) -> Hashable:
        return connector_status(status)

    def payloads(self, connector_id: int, status: Status, at: datetime) -> list[dict[str, Any]]:
        if connector_id == 0:
            return []  # the station itself: no StatusNotification in 2.0.1
        evse_id, evse_connector = self.topology.address(connector_id)
        return [
            {
                "timestamp": iso(at),
                "connectorStatus": connector_status(status),
                "evseId": evse_id,
                "connectorId": evse_connector,
            }
        ]
