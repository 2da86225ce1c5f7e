"""A connector status as OCPP 1.6 StatusNotification says it (connectors 0..N)."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

from firmware.clock import iso
from firmware.connector.status import Status
from firmware.ocpp.v16.configuration import ConfigurationStore
from firmware.ocpp.versions import V16


class V16Status:
    version = V16

    def __init__(self, config: ConfigurationStore) -> None:
        self.config = config

    def minimum_duration_s(self) -> int:
        return self.config.get_int("MinimumStatusDuration")

    def reported(self, status: Status) -> Hashable:
        return status

    def payloads(self, connector_id: int, status: Status, at: datetime) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {
            "connectorId": connector_id,
            "status": status.status,
            "errorCode": status.error_code,
            "timestamp": iso(at),
        }
        if status.vendor_error_code:
            payload["vendorErrorCode"] = status.vendor_error_code
        return [payload]
