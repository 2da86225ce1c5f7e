"""Core profile: CSMS-initiated requests turned into station commands."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from firmware.auth.cache import AuthCache
from firmware.ocpp.data_transfer import DataTransferHandler, answer_data_transfer
from firmware.ocpp.registration import Registration
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v16.configuration import ConfigurationStore
from firmware.station import Station

log = logging.getLogger("firmware.ocpp.core")

# Whether a RemoteStartTransaction's chargingProfile can become the session's TxProfile.
ProfileCheck = Callable[[dict[str, Any], int], bool]
# What to do once the answer to a ChangeConfiguration that changed ``key`` is sent (reconnect).
AfterChange = Callable[[str], Callable[[], Coroutine[Any, Any, None]] | None]


def _is_tx_profile(profile: dict[str, Any], _connector_id: int) -> bool:
    return profile.get("chargingProfilePurpose") == "TxProfile"


class CoreHandlers:
    """Registers the Core profile's CSMS→station actions on an Rpc."""

    def __init__(
        self,
        station: Station,
        config: ConfigurationStore,
        cache: AuthCache,
        registration: Registration,
        *,
        reset: Callable[[str], Awaitable[None]],
    ) -> None:
        self.station = station
        self.config = config
        self.cache = cache
        self.registration = registration
        self._reset = reset
        # vendorId -> handler(messageId, data) -> (status, data)
        self.data_transfer: dict[str, DataTransferHandler] = {}
        self.remote_start_profile_ok: ProfileCheck = _is_tx_profile
        self.after_change: AfterChange = lambda _key: None

    def register(self, rpc: Rpc) -> None:
        rpc.on("ChangeAvailability", self.change_availability)
        rpc.on("ChangeConfiguration", self.change_configuration)
        rpc.on("ClearCache", self.clear_cache)
        rpc.on("DataTransfer", self.data_transfer_request)
        rpc.on("GetConfiguration", self.get_configuration)
        rpc.on("RemoteStartTransaction", self.remote_start)
        rpc.on("RemoteStopTransaction", self.remote_stop)
        rpc.on("Reset", self.reset)
        rpc.on("UnlockConnector", self.unlock_connector)

    def _connector_ok(self, connector_id: int, *, allow_zero: bool) -> bool:
        return connector_id in self.station.connectors or (allow_zero and connector_id == 0)

    async def change_availability(self, req: dict[str, Any]) -> Reply:
        connector_id = int(req["connectorId"])
        if not self._connector_ok(connector_id, allow_zero=True):
            return Reply({"status": "Rejected"})
        operative = req["type"] == "Operative"
        status = await self.station.change_availability(connector_id, operative)
        return Reply({"status": status})

    async def change_configuration(self, req: dict[str, Any]) -> Reply:
        key = str(req["key"])
        before = self._value(key)
        status = self.config.change(key, str(req["value"]))
        changed = status == "Accepted" and self._value(key) != before
        return Reply({"status": status}, after=self.after_change(key) if changed else None)

    def _value(self, key: str) -> str | None:
        try:
            return self.config.get(key)
        except KeyError:
            return None

    async def clear_cache(self, _req: dict[str, Any]) -> Reply:
        self.cache.clear()
        return Reply({"status": "Accepted"})

    async def data_transfer_request(self, req: dict[str, Any]) -> Reply:
        return Reply(await answer_data_transfer(self.data_transfer, req))

    async def get_configuration(self, req: dict[str, Any]) -> Reply:
        keys = req.get("key")
        known, unknown = self.config.get_configuration(keys if keys else None)
        payload: dict[str, Any] = {"configurationKey": known}
        if unknown:
            payload["unknownKey"] = unknown
        return Reply(payload)

    async def remote_start(self, req: dict[str, Any]) -> Reply:
        if not self.registration.accepted:
            return Reply({"status": "Rejected"})
        connector_id = req.get("connectorId")
        if connector_id is not None and int(connector_id) <= 0:
            return Reply({"status": "Rejected"})
        id_tag = str(req["idTag"])
        target = self.station.remote_start_target(connector_id, id_tag)
        if target is None:
            return Reply({"status": "Rejected"})
        profile = req.get("chargingProfile")
        if profile is not None and not self.remote_start_profile_ok(profile, target.controller.id):
            return Reply({"status": "Rejected"})

        async def start() -> None:
            await self.station.remote_start(target, id_tag, profile)

        return Reply({"status": "Accepted"}, after=start)

    async def remote_stop(self, req: dict[str, Any]) -> Reply:
        if not self.registration.accepted:
            return Reply({"status": "Rejected"})
        controller = self.station.find_transaction(int(req["transactionId"]))
        if controller is None:
            return Reply({"status": "Rejected"})

        async def stop() -> None:
            await controller.stop("Remote")

        return Reply({"status": "Accepted"}, after=stop)

    async def reset(self, req: dict[str, Any]) -> Reply:
        kind = str(req["type"])

        async def restart() -> None:
            await self._reset(kind)

        return Reply({"status": "Accepted"}, after=restart)

    async def unlock_connector(self, req: dict[str, Any]) -> Reply:
        connector_id = int(req["connectorId"])
        if not self._connector_ok(connector_id, allow_zero=False):
            return Reply({"status": "NotSupported"})
        return Reply({"status": await self.station.connectors[connector_id].unlock()})
