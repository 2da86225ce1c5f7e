"""DataTransfer from the CSMS (OCPP 1.6 Core, 2.0.1 P01): vendor extensions by vendorId.

The request and answer have the same members in both versions (vendorId,
messageId, data; status, data); a vendorId no extension is registered for is
UnknownVendorId.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

# handler(messageId, data) -> (status, data or None)
DataTransferHandler = Callable[[str | None, Any], Awaitable[tuple[str, Any]]]


async def answer_data_transfer(
    handlers: Mapping[str, DataTransferHandler], req: dict[str, Any]
) -> dict[str, Any]:
    handler = handlers.get(str(req["vendorId"]))
    if handler is None:
        return {"status": "UnknownVendorId"}
    status, data = await handler(req.get("messageId"), req.get("data"))
    payload: dict[str, Any] = {"status": status}
    if data is not None:
        payload["data"] = data
    return payload
