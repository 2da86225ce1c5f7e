"""Local Auth List Management profile: SendLocalList and GetLocalListVersion."""

from __future__ import annotations

from typing import Any

from firmware.auth.local_list import ListEntry, LocalAuthList
from firmware.clock import parse_iso
from firmware.ocpp.errors import ProtocolViolation
from firmware.ocpp.rpc import Reply, Rpc

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# GetLocalListVersion while LocalAuthListEnabled is false: "no local list here".
NOT_SUPPORTED_VERSION = -1


class LocalAuthListHandlers:
    """Registers the profile's CSMS→station actions on an Rpc."""

    def __init__(self, local_list: LocalAuthList) -> None:
        self.local_list = local_list

    def register(self, rpc: Rpc) -> None:
        rpc.on("GetLocalListVersion", self.get_local_list_version)
        rpc.on("SendLocalList", self.send_local_list)

    async def get_local_list_version(self, _req: dict[str, Any]) -> Reply:
        if not self.local_list.enabled:
            return Reply({"listVersion": NOT_SUPPORTED_VERSION})
        return Reply({"listVersion": self.local_list.version})

    async def send_local_list(self, req: dict[str, Any]) -> Reply:
        items = req.get("localAuthorizationList") or []
        for index, item in enumerate(items):
            _check_expiry(index, item)
        entries = [ListEntry.from_payload(item) for item in items]
        version = int(req["listVersion"])
        if not INT32_MIN <= version <= INT32_MAX:
            raise ProtocolViolation(
                "PropertyConstraintViolation", f"listVersion {version} is not a 32-bit integer"
            )
        status = self.local_list.update(version, full=req["updateType"] == "Full", entries=entries)
        return Reply({"status": status.value})


def _check_expiry(index: int, item: dict[str, Any]) -> None:
    """An expiryDate that is not a date-time is refused, never read as "no expiry"."""
    expiry = (item.get("idTagInfo") or {}).get("expiryDate")
    if expiry is None:
        return
    try:
        parse_iso(expiry)
    except ValueError:
        raise ProtocolViolation(
            "TypeConstraintViolation",
            f"localAuthorizationList/{index}/idTagInfo/expiryDate: {str(expiry)[:40]!r} "
            "is not a date-time",
        ) from None
