"""What an OCPP 2.0.1 BootNotification says (B01), and where 2.0.1 keeps the heartbeat
interval (OCPPCommCtrlr.HeartbeatInterval).

The boot reason comes from how the previous run ended (``security.runs``):

| previous run | reason |
| --- | --- |
| none known, or it did not shut down (power cut, crash, SIGKILL) | PowerUp |
| stopped for a Reset from the CSMS (SoftReset, HardReset) | RemoteReset |
| stopped for a firmware installation (FirmwareUpdate) | FirmwareUpdate |
| stopped in good order otherwise (Reboot: SIGTERM, systemd) | LocalReset |
| anything else | Unknown |

A BootNotification the CSMS asked for (TriggerMessage) says Triggered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocpp.v201.enums import BootReasonEnumType

from firmware.config import Identity
from firmware.ocpp.v201.device_model import Change, Component, DeviceModel, Variable
from firmware.ocpp.versions import V201
from firmware.security.runs import PreviousRun

COMM = Component("OCPPCommCtrlr")
HEARTBEAT_INTERVAL = Variable("HeartbeatInterval")

# ChargingStationType's string limits (OCA 2.0.1 schema).
_LIMITS = {"model": 20, "vendorName": 50, "serialNumber": 25, "firmwareVersion": 50}

_BY_STOP_REASON = {
    "SoftReset": BootReasonEnumType.remote_reset,
    "HardReset": BootReasonEnumType.remote_reset,
    "FirmwareUpdate": BootReasonEnumType.firmware_update,
    "Reboot": BootReasonEnumType.local_reset,
}


def boot_reason(previous: PreviousRun) -> str:
    reason = BootReasonEnumType.power_up
    if not previous.first_start and previous.clean:
        reason = _BY_STOP_REASON.get(previous.stop_reason or "", BootReasonEnumType.unknown)
    return str(reason.value)


class V201Boot:
    version = V201

    def __init__(self, model: DeviceModel, identity: Identity, reason: Callable[[], str]) -> None:
        self.model = model
        self.identity = identity
        self.reason = reason

    def boot_payload(self, *, triggered: bool = False) -> dict[str, Any]:
        station: dict[str, Any] = {
            "model": self.identity.model,
            "vendorName": self.identity.vendor,
        }
        if self.identity.serial_number:
            station["serialNumber"] = self.identity.serial_number
        if self.identity.firmware_version:
            station["firmwareVersion"] = self.identity.firmware_version
        station = {key: value[: _LIMITS[key]] for key, value in station.items()}
        reason = str(BootReasonEnumType.triggered.value) if triggered else self.reason()
        return {"reason": reason, "chargingStation": station}

    def heartbeat_interval(self) -> int:
        return self.model.get_int(COMM, HEARTBEAT_INTERVAL)

    def adopt_heartbeat_interval(self, seconds: int) -> None:
        self.model.update(COMM, HEARTBEAT_INTERVAL, str(seconds))

    def on_heartbeat_interval_change(self, changed: Callable[[], None]) -> None:
        def model_changed(change: Change) -> None:
            if change.component == COMM and change.variable == HEARTBEAT_INTERVAL:
                changed()

        self.model.subscribe(model_changed)
