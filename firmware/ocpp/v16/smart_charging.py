"""Smart Charging profile: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule."""

from __future__ import annotations

import logging
from typing import Any

from ocpp.v16.enums import ChargingProfilePurposeType

from firmware.ocpp.rpc import Reply, Rpc
from firmware.smart_charging.manager import SmartCharging
from firmware.smart_charging.rules import ClearFilter

log = logging.getLogger("firmware.ocpp.smart_charging")


class SmartChargingHandlers:
    """Registers the Smart Charging profile's CSMS→station actions on an Rpc."""

    def __init__(self, smart: SmartCharging) -> None:
        self.smart = smart

    def register(self, rpc: Rpc) -> None:
        rpc.on("SetChargingProfile", self.set_charging_profile)
        rpc.on("ClearChargingProfile", self.clear_charging_profile)
        rpc.on("GetCompositeSchedule", self.get_composite_schedule)

    async def set_charging_profile(self, req: dict[str, Any]) -> Reply:
        status = self.smart.set_profile(int(req["connectorId"]), req["csChargingProfiles"])
        return Reply({"status": status})

    async def clear_charging_profile(self, req: dict[str, Any]) -> Reply:
        if not self.smart.enabled:
            return Reply({"status": "Unknown"})
        purpose = req.get("chargingProfilePurpose")
        criteria = ClearFilter(
            profile_id=_opt_int(req.get("id")),
            connector_id=_opt_int(req.get("connectorId")),
            purpose=None if purpose is None else ChargingProfilePurposeType(purpose),
            stack_level=_opt_int(req.get("stackLevel")),
        )
        return Reply({"status": self.smart.clear(criteria)})

    async def get_composite_schedule(self, req: dict[str, Any]) -> Reply:
        duration = int(req["duration"])
        if not self.smart.enabled or duration < 0:
            return Reply({"status": "Rejected"})
        payload = self.smart.composite(
            int(req["connectorId"]), duration, req.get("chargingRateUnit")
        )
        if payload is None:
            return Reply({"status": "Rejected"})
        return Reply(payload)


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))
