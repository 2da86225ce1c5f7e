"""ExtendedTriggerMessage (OCPP 1.6 Security Whitepaper): a table of what can be triggered.

Each requestedMessage the station can send has a sender in ``senders``
(``add``); any other value is answered NotImplemented. As with TriggerMessage
the answer goes out first and the requested message after it
(``Reply.after``). A sender gets the request's connectorId (None without one);
``connector_ok`` refuses (Rejected) a connector the message cannot be about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from firmware.ocpp.rpc import Reply, Rpc

log = logging.getLogger("firmware.ocpp.trigger")

Sender = Callable[[int | None], Coroutine[Any, Any, None]]
ConnectorCheck = Callable[[int], bool]


def _any_connector(_connector_id: int) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Trigger:
    send: Sender
    connector_ok: ConnectorCheck = _any_connector


class ExtendedTriggerHandlers:
    def __init__(self) -> None:
        self.senders: dict[str, Trigger] = {}

    def add(
        self, requested: str, send: Sender, connector_ok: ConnectorCheck = _any_connector
    ) -> None:
        self.senders[requested] = Trigger(send, connector_ok)

    def register(self, rpc: Rpc) -> None:
        rpc.on("ExtendedTriggerMessage", self.extended_trigger_message)

    async def extended_trigger_message(self, req: dict[str, Any]) -> Reply:
        requested = str(req["requestedMessage"])
        raw = req.get("connectorId")
        connector_id = int(raw) if raw is not None else None
        trigger = self.senders.get(requested)
        if trigger is None:
            log.info("ExtendedTriggerMessage %s: NotImplemented", requested)
            return Reply({"status": "NotImplemented"})
        if connector_id is not None and not trigger.connector_ok(connector_id):
            log.info(
                "ExtendedTriggerMessage %s for connector %d: Rejected", requested, connector_id
            )
            return Reply({"status": "Rejected"})

        async def send() -> None:
            await trigger.send(connector_id)

        log.info("ExtendedTriggerMessage %s (connector %s): Accepted", requested, connector_id)
        return Reply({"status": "Accepted"}, after=send)
