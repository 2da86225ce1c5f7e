"""OCPP 2.0.1 SendLocalList and GetLocalListVersion (D01, D02) on the station's local list.

The entries are the same list the 1.6 front-end keeps (``firmware.auth.local_list``):
an idToken is kept by its idToken string, idTokenInfo in the station's words
(``transactions.id_token_info``). 2.0.1 has no NotSupported answer: a list the
station does not keep (LocalAuthListCtrlr.Enabled false) or cannot store is
Failed, with a statusInfo saying why; GetLocalListVersion then says 0 (D02.FR.02:
no list).
"""

from __future__ import annotations

from typing import Any

from firmware.auth.local_list import ListEntry, LocalAuthList, UpdateStatus
from firmware.clock import parse_iso
from firmware.ocpp.errors import ProtocolViolation
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v201.transactions import id_token_info
from firmware.ocpp.versions import V201


def _entry(index: int, item: dict[str, Any]) -> ListEntry:
    info = item.get("idTokenInfo")
    expiry = (info or {}).get("cacheExpiryDateTime")
    if expiry is not None:
        try:
            parse_iso(expiry)
        except ValueError:
            raise ProtocolViolation(
                "TypeConstraintViolation",
                f"localAuthorizationList/{index}/idTokenInfo/cacheExpiryDateTime: "
                f"{str(expiry)[:40]!r} is not a date-time",
            ) from None
    token = str(item["idToken"]["idToken"])
    return ListEntry(token, id_token_info(info) if info is not None else None)


class LocalListHandlers:
    def __init__(self, local_list: LocalAuthList) -> None:
        self.local_list = local_list

    def register(self, rpc: Rpc) -> None:
        rpc.on("GetLocalListVersion", self.get_local_list_version, version=V201)
        rpc.on("SendLocalList", self.send_local_list, version=V201)

    async def get_local_list_version(self, _req: dict[str, Any]) -> Reply:
        version = self.local_list.version if self.local_list.enabled else 0
        return Reply({"versionNumber": max(0, version)})

    async def send_local_list(self, req: dict[str, Any]) -> Reply:
        items = req.get("localAuthorizationList") or []
        entries = [_entry(index, item) for index, item in enumerate(items)]
        status = self.local_list.update(
            int(req["versionNumber"]), full=req["updateType"] == "Full", entries=entries
        )
        if status is UpdateStatus.NOT_SUPPORTED:
            info = {"reasonCode": "NotEnabled", "additionalInfo": "LocalAuthListCtrlr is disabled"}
            return Reply({"status": "Failed", "statusInfo": info})
        return Reply({"status": status.value})
