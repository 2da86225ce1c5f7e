"""OCPP 1.6 Security Whitepaper: GetLog, and what ExtendedTriggerMessage can send.

GetLog answers at once (Accepted, AcceptedCanceled when it cancels a running
upload, Rejected for an unusable location) with the fileName; the upload runs
after the answer and reports itself by LogStatusNotification
(``firmware.management.log_upload``). An unparseable timestamp is a
TypeConstraintViolation; a negative retries or retryInterval, or an
oldestTimestamp after the latestTimestamp, a PropertyConstraintViolation.

ExtendedTriggerMessage sends, after its answer, what TriggerMessage sends for
BootNotification, FirmwareStatusNotification, Heartbeat, MeterValues and
StatusNotification (the same senders, the same connector rules: Rejected for
a connector that does not exist, and connector 0 for MeterValues), and the
current LogStatusNotification (``Idle`` without a requestId when no upload
runs). Other values (SignChargePointCertificate) come from the certificate
handlers; a value nobody sends is NotImplemented.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any

from firmware.clock import parse_iso
from firmware.management.log_upload import LogUploads
from firmware.ocpp.errors import CallFailed, ProtocolViolation
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v16.extended_trigger import ExtendedTriggerHandlers
from firmware.ocpp.v16.remote_trigger import TriggerHandlers

log = logging.getLogger("firmware.ocpp.trigger")

# ExtendedTriggerMessage values sent as TriggerMessage sends them.
AS_TRIGGER_MESSAGE = (
    "BootNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
)


class GetLogHandlers:
    def __init__(self, uploads: LogUploads) -> None:
        self.uploads = uploads

    def register(self, rpc: Rpc) -> None:
        rpc.on("GetLog", self.get_log)

    async def get_log(self, req: dict[str, Any]) -> Reply:
        where = req["log"]
        oldest, latest = _date(where, "oldestTimestamp"), _date(where, "latestTimestamp")
        if oldest is not None and latest is not None and oldest > latest:
            raise ProtocolViolation(
                "PropertyConstraintViolation", "oldestTimestamp is after latestTimestamp"
            )
        status, name, job = self.uploads.request(
            str(req["logType"]),
            int(req["requestId"]),
            str(where["remoteLocation"]),
            _count(req, "retries"),
            _count(req, "retryInterval"),
            oldest,
            latest,
        )
        payload: dict[str, Any] = {"status": status}
        if name is not None:
            payload["filename"] = name
        return Reply(payload, after=job)


def add_extended_senders(
    extended: ExtendedTriggerHandlers, triggers: TriggerHandlers, uploads: LogUploads, rpc: Rpc
) -> None:
    """What ExtendedTriggerMessage sends besides SignChargePointCertificate."""
    for requested in AS_TRIGGER_MESSAGE:
        send = triggers.sender(requested)
        if send is None:  # withdrawn: its feature profile is left out
            continue
        extended.add(requested, send, functools.partial(triggers.connector_fits, requested))

    async def log_status(_connector_id: int | None) -> None:
        payload = uploads.current_status()
        try:
            await rpc.call("LogStatusNotification", payload)
        except CallFailed as err:
            log.warning("triggered LogStatusNotification not delivered: %s", err)

    extended.add("LogStatusNotification", log_status)


def _date(req: dict[str, Any], key: str) -> datetime | None:
    value = req.get(key)
    if value is None:
        return None
    try:
        return parse_iso(value)
    except (ValueError, TypeError):
        raise ProtocolViolation("TypeConstraintViolation", f"{key} is not a date-time") from None


def _count(req: dict[str, Any], key: str) -> int | None:
    value = req.get(key)
    if value is None:
        return None
    if int(value) < 0:
        raise ProtocolViolation("PropertyConstraintViolation", f"{key} must not be negative")
    return int(value)
