"""OCPP-J 1.6 frames: parse, build, and validate payloads against the OCA schemas.

Schemas come from the ``ocpp`` package (``ocpp.messages.get_validator``); this
module only maps a schema violation to the CALLERROR code OCPP-J 1.6 names
for it (the package itself answers with 2.0.1 codes).
"""

from __future__ import annotations

import decimal
import json
from dataclasses import dataclass, field
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match
from ocpp.messages import get_validator

from firmware.ocpp.errors import ProtocolViolation

CALL = 2
CALLRESULT = 3
CALLERROR = 4

# The 1.6 schemas of these messages use multipleOf 0.1 on floats; they must be
# validated with Decimal parsing, as the ocpp package does.
_DECIMAL_CALLS = frozenset({"SetChargingProfile", "RemoteStartTransaction"})
_DECIMAL_RESULTS = frozenset({"GetCompositeSchedule"})

# Every action OCPP 1.6 (with the security whitepaper) defines. An action not
# in this set is unknown (NotImplemented); a known one without a handler is
# NotSupported.
KNOWN_ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "DeleteCertificate",
        "DiagnosticsStatusNotification",
        "ExtendedTriggerMessage",
        "FirmwareStatusNotification",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "Heartbeat",
        "InstallCertificate",
        "LogStatusNotification",
        "MeterValues",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SecurityEventNotification",
        "SendLocalList",
        "SetChargingProfile",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
        "SignedUpdateFirmware",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)


@dataclass(frozen=True, slots=True)
class IncomingCall:
    unique_id: str
    action: str
    payload: Any


@dataclass(frozen=True, slots=True)
class IncomingResult:
    unique_id: str
    payload: Any


@dataclass(frozen=True, slots=True)
class IncomingError:
    unique_id: str
    code: str
    description: str
    details: Any = field(default_factory=dict)


Incoming = IncomingCall | IncomingResult | IncomingError


class FrameError(ProtocolViolation):
    """A frame that is not a well-formed OCPP-J message.

    ``unique_id`` is set when the frame is a CALL whose id could be read, so
    it can still be answered with a CALLERROR; otherwise the frame is dropped.
    """

    def __init__(self, code: str, description: str, unique_id: str | None = None) -> None:
        super().__init__(code, description)
        self.unique_id = unique_id


def parse(text: str | bytes) -> Incoming:
    """Parse one websocket text frame."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("FormationViolation", "frame is not UTF-8") from None
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise FrameError("FormationViolation", "frame is not valid JSON") from None
    if not isinstance(msg, list) or not msg:
        raise FrameError("FormationViolation", "frame is not a JSON array")
    kind = msg[0]
    uid = msg[1] if len(msg) > 1 and isinstance(msg[1], str) else None
    if kind == CALL:
        if uid is None or len(uid) > 36:
            raise FrameError("FormationViolation", "CALL without a valid unique id")
        if len(msg) != 4:
            raise FrameError("FormationViolation", "CALL must have 4 elements", uid)
        if not isinstance(msg[2], str):
            raise FrameError("FormationViolation", "CALL action must be a string", uid)
        return IncomingCall(uid, msg[2], msg[3])
    if kind == CALLRESULT:
        if uid is None or len(msg) != 3:
            raise FrameError("FormationViolation", "malformed CALLRESULT")
        return IncomingResult(uid, msg[2])
    if kind == CALLERROR:
        if uid is None or len(msg) not in (4, 5) or not isinstance(msg[2], str):
            raise FrameError("FormationViolation", "malformed CALLERROR")
        description = msg[3] if isinstance(msg[3], str) else str(msg[3])
        details = msg[4] if len(msg) == 5 else {}
        return IncomingError(uid, msg[2], description, details)
    raise FrameError("FormationViolation", f"unknown message type {kind!r}", None)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def call_frame(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return _dumps([CALL, unique_id, action, payload])


def result_frame(unique_id: str, payload: dict[str, Any]) -> str:
    return _dumps([CALLRESULT, unique_id, payload])


def error_frame(
    unique_id: str, code: str, description: str, details: dict[str, Any] | None = None
) -> str:
    return _dumps([CALLERROR, unique_id, code, description[:255], details or {}])


def _violation(err: SchemaError) -> ProtocolViolation:
    where = "/".join(str(p) for p in err.absolute_path) or "payload"
    text = f"{where}: {err.message}"[:255]
    if err.validator == "required":
        return ProtocolViolation("OccurenceConstraintViolation", text)
    if err.validator == "additionalProperties":
        return ProtocolViolation("FormationViolation", text)
    if err.validator == "type":
        if not err.absolute_path:
            return ProtocolViolation("FormationViolation", "payload must be a JSON object")
        return ProtocolViolation("TypeConstraintViolation", text)
    if err.validator in ("maxLength", "format"):
        return ProtocolViolation("TypeConstraintViolation", text)
    # enum, minimum, maximum, multipleOf, minItems, ...
    return ProtocolViolation("PropertyConstraintViolation", text)


def _validate(message_type: int, action: str, payload: Any, use_decimal: bool) -> None:
    try:
        if use_decimal:
            validator = get_validator(message_type, action, "1.6", parse_float=decimal.Decimal)
            payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
        else:
            validator = get_validator(message_type, action, "1.6")
    except OSError:
        raise ProtocolViolation("NotImplemented", f"no schema for action {action}") from None
    error = best_match(validator.iter_errors(payload))
    if error is not None:
        raise _violation(error)


def validate_call(action: str, payload: Any) -> None:
    """Validate a CALL payload; raises ProtocolViolation with the 1.6 error code."""
    _validate(CALL, action, payload, action in _DECIMAL_CALLS)


def validate_result(action: str, payload: Any) -> None:
    """Validate a CALLRESULT payload for the CALL ``action``."""
    _validate(CALLRESULT, action, payload, action in _DECIMAL_RESULTS)
