"""Firmware Management profile: UpdateFirmware, GetDiagnostics and, from the
Security Whitepaper, SignedUpdateFirmware.

Each answers at once; the work runs afterwards and reports itself by
FirmwareStatusNotification / DiagnosticsStatusNotification /
SignedFirmwareStatusNotification. SignedUpdateFirmware's answer says whether
its signing certificate is trusted (InvalidCertificate: nothing happens) and
whether it cancelled a running update (AcceptedCanceled). An unparseable
date-time is a TypeConstraintViolation, a negative retries or retryInterval
a PropertyConstraintViolation, a startTime after stopTime too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from firmware.clock import parse_iso
from firmware.management.diagnostics import DiagnosticsUploader
from firmware.management.updater import FirmwareUpdater
from firmware.ocpp.errors import ProtocolViolation
from firmware.ocpp.rpc import Reply, Rpc


class FirmwareManagementHandlers:
    def __init__(self, updater: FirmwareUpdater, diagnostics: DiagnosticsUploader) -> None:
        self.updater = updater
        self.diagnostics = diagnostics

    def register(self, rpc: Rpc) -> None:
        rpc.on("UpdateFirmware", self.update_firmware)
        rpc.on("SignedUpdateFirmware", self.signed_update_firmware)
        rpc.on("GetDiagnostics", self.get_diagnostics)

    async def update_firmware(self, req: dict[str, Any]) -> Reply:
        retrieve_at = _date(req, "retrieveDate")
        assert retrieve_at is not None  # required by the schema
        retries, interval = _count(req, "retries"), _count(req, "retryInterval")
        self.updater.request(str(req["location"]), retrieve_at, retries, interval)
        return Reply({})

    async def signed_update_firmware(self, req: dict[str, Any]) -> Reply:
        firmware = req["firmware"]
        retrieve_at = _date(firmware, "retrieveDateTime")
        assert retrieve_at is not None  # required by the schema
        status = self.updater.request_signed(
            int(req["requestId"]),
            str(firmware["location"]),
            retrieve_at,
            _date(firmware, "installDateTime"),
            str(firmware["signingCertificate"]),
            str(firmware["signature"]),
            _count(req, "retries"),
            _count(req, "retryInterval"),
        )
        return Reply({"status": status})

    async def get_diagnostics(self, req: dict[str, Any]) -> Reply:
        start, stop = _date(req, "startTime"), _date(req, "stopTime")
        if start is not None and stop is not None and start > stop:
            raise ProtocolViolation("PropertyConstraintViolation", "startTime is after stopTime")
        retries, interval = _count(req, "retries"), _count(req, "retryInterval")
        accepted = self.diagnostics.request(str(req["location"]), retries, interval, start, stop)
        if accepted is None:
            return Reply({})
        name, job = accepted
        return Reply({"fileName": name}, after=job)


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
