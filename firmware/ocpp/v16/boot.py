"""What an OCPP 1.6 BootNotification says, and where 1.6 keeps the heartbeat interval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firmware.config import Identity
from firmware.ocpp.v16.configuration import ConfigurationStore
from firmware.ocpp.versions import V16

HEARTBEAT_INTERVAL = "HeartbeatInterval"


class V16Boot:
    version = V16

    def __init__(self, config: ConfigurationStore, identity: Identity) -> None:
        self.config = config
        self.identity = identity

    def boot_payload(self, *, triggered: bool = False) -> dict[str, Any]:
        """1.6 has no boot reason: a triggered BootNotification says the same."""
        payload: dict[str, Any] = {
            "chargePointVendor": self.identity.vendor,
            "chargePointModel": self.identity.model,
        }
        if self.identity.serial_number:
            payload["chargePointSerialNumber"] = self.identity.serial_number
            payload["chargeBoxSerialNumber"] = self.identity.serial_number
        if self.identity.firmware_version:
            payload["firmwareVersion"] = self.identity.firmware_version
        return payload

    def heartbeat_interval(self) -> int:
        return self.config.get_int(HEARTBEAT_INTERVAL)

    def adopt_heartbeat_interval(self, seconds: int) -> None:
        self.config.change(HEARTBEAT_INTERVAL, str(seconds))

    def on_heartbeat_interval_change(self, changed: Callable[[], None]) -> None:
        def config_changed(key: str, _value: str) -> None:
            if key == HEARTBEAT_INTERVAL:
                changed()

        self.config.subscribe(config_changed)
