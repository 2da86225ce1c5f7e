"""Core handlers that need no station state: DataTransfer vendor routing."""

from __future__ import annotations

from typing import Any

from firmware.ocpp import frames
from firmware.ocpp.v16.core import CoreHandlers


async def _noop_reset(_kind: str) -> None:
    return None


def _handlers() -> CoreHandlers:
    # DataTransfer touches none of the collaborators.
    return CoreHandlers(None, None, None, None, reset=_noop_reset)  # type: ignore[arg-type]


async def test_data_transfer_routes_to_the_registered_vendor() -> None:
    core = _handlers()
    seen: list[tuple[Any, Any]] = []

    async def vendor(message_id: str | None, data: str | None) -> tuple[str, str | None]:
        seen.append((message_id, data))
        return ("Accepted", "pong") if message_id == "ping" else ("UnknownMessageId", None)

    core.data_transfer["com.example"] = vendor
    reply = await core.data_transfer_request(
        {"vendorId": "com.example", "messageId": "ping", "data": "x"}
    )
    assert reply.payload == {"status": "Accepted", "data": "pong"}
    frames.validate_result("DataTransfer", reply.payload)
    other = await core.data_transfer_request({"vendorId": "com.example", "messageId": "nope"})
    assert other.payload == {"status": "UnknownMessageId"}
    unknown = await core.data_transfer_request({"vendorId": "org.other"})
    assert unknown.payload == {"status": "UnknownVendorId"}
    assert seen == [("ping", "x"), ("nope", None)]
