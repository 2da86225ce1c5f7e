"""OCPP-J frames of 1.6 and 2.0.1: parse, build, and validate payloads against the OCA schemas.

Schemas come from the ``ocpp`` package (``ocpp.messages.get_validator``); this
module maps a malformed frame or a schema violation to the CALLERROR code the
version of the connection names for it (the package's own mapping differs).
Every function takes the version; 1.6 is the default.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match
from ocpp.messages import get_validator

from firmware.ocpp.errors import ProtocolViolation
from firmware.ocpp.versions import SUBPROTOCOLS, V16, V201

CALL = 2
CALLRESULT = 3
CALLERROR = 4

MAX_ID_LENGTH = 36

# The 1.6 schemas of these messages use multipleOf 0.1 on floats; they must be
# validated with Decimal parsing, as the ocpp package does (no 2.0.1 schema does).
_DECIMAL_CALLS = frozenset({"SetChargingProfile", "RemoteStartTransaction"})
_DECIMAL_RESULTS = frozenset({"GetCompositeSchedule"})


def _schema_actions(version: str) -> frozenset[str]:
    """Every action the ``ocpp`` package has a request schema for in ``version``.

    1.6 (with the security whitepaper) names them ``<Action>.json``, 2.0.1
    ``<Action>Request.json``; both have ``<Action>Response.json``.
    """
    folder = resources.files("ocpp") / f"v{version.replace('.', '')}" / "schemas"
    names = [entry.name for entry in folder.iterdir() if entry.name.endswith(".json")]
    if version == V16:
        return frozenset(n[: -len(".json")] for n in names if not n.endswith("Response.json"))
    return frozenset(n[: -len("Request.json")] for n in names if n.endswith("Request.json"))


# Every action each version defines. An action not in its set is unknown
# (NotImplemented); a known one without a handler is NotSupported.
KNOWN_ACTIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {version: _schema_actions(version) for version in SUBPROTOCOLS}
)


@dataclass(frozen=True, slots=True)
class Rules:
    """How one OCPP-J version names what is wrong with a frame or a payload."""

    format: str  # a payload that is not what its schema describes, an oversized frame
    occurrence: str  # a field missing, or an array with too few or too many items
    occurrence_validators: frozenset[str]
    frame: str  # not an RPC message of this version (answered when its id can be read)
    unknown_type: str | None  # an unknown message type number (None: dropped unanswered)


RULES: Final[Mapping[str, Rules]] = MappingProxyType(
    {
        # OCPP-J 1.6 §4.2.3: one code for every malformed frame; unknown types are dropped.
        V16: Rules(
            "FormationViolation",
            "OccurenceConstraintViolation",
            frozenset({"required"}),
            "FormationViolation",
            None,
        ),
        # OCPP-J 2.0.1 §4.3: cardinality is an occurrence constraint; a frame that is
        # no RPC message is an RpcFrameworkError; a message type other than 2, 3
        # or 4 (2.0.1 has no CALLRESULTERROR or SEND) is MessageTypeNotSupported.
        V201: Rules(
            "FormatViolation",
            "OccurrenceConstraintViolation",
            frozenset({"required", "minItems", "maxItems"}),
            "RpcFrameworkError",
            "MessageTypeNotSupported",
        ),
    }
)


def rules(version: str) -> Rules:
    try:
        return RULES[version]
    except KeyError:
        raise ValueError(f"unknown OCPP version {version!r}") from None


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

    ``unique_id`` is set when the frame can be answered with a CALLERROR: a
    CALL whose id could be read, or (2.0.1) a message of a type the version
    does not have, with a readable id. Otherwise the frame is dropped.
    """

    def __init__(self, code: str, description: str, unique_id: str | None = None) -> None:
        super().__init__(code, description)
        self.unique_id = unique_id


def parse(text: str | bytes, version: str = V16) -> Incoming:
    """Parse one websocket text frame of a connection speaking ``version``."""
    code = rules(version).frame
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(code, "frame is not UTF-8") from None
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise FrameError(code, "frame is not valid JSON") from None
    if not isinstance(msg, list) or not msg:
        raise FrameError(code, "frame is not a JSON array")
    kind = msg[0]
    uid = msg[1] if len(msg) > 1 and isinstance(msg[1], str) else None
    if kind == CALL:
        if uid is None or len(uid) > MAX_ID_LENGTH:
            raise FrameError(code, "CALL without a valid unique id")
        if len(msg) != 4:
            raise FrameError(code, "CALL must have 4 elements", uid)
        if not isinstance(msg[2], str):
            raise FrameError(code, "CALL action must be a string", uid)
        return IncomingCall(uid, msg[2], msg[3])
    if kind == CALLRESULT:
        if uid is None or len(msg) != 3:
            raise FrameError(code, "malformed CALLRESULT")
        return IncomingResult(uid, msg[2])
    if kind == CALLERROR:
        if uid is None or len(msg) not in (4, 5) or not isinstance(msg[2], str):
            raise FrameError(code, "malformed CALLERROR")
        description = msg[3] if isinstance(msg[3], str) else str(msg[3])
        details = msg[4] if len(msg) == 5 else {}
        return IncomingError(uid, msg[2], description, details)
    raise _unknown_type(kind, uid, version)


def _unknown_type(kind: object, uid: str | None, version: str) -> FrameError:
    known = rules(version)
    if uid is not None and len(uid) > MAX_ID_LENGTH:
        uid = None  # not a message id: nothing can be answered under it
    if known.unknown_type is None:
        return FrameError(known.frame, f"unknown message type {kind!r}", None)
    if isinstance(kind, int) and not isinstance(kind, bool):
        return FrameError(known.unknown_type, f"message type {kind} is not supported", uid)
    return FrameError(known.frame, f"message type {kind!r} is not a number", uid)


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


def _violation(err: SchemaError, version: str) -> ProtocolViolation:
    known = rules(version)
    where = "/".join(str(p) for p in err.absolute_path) or "payload"
    text = f"{where}: {err.message}"[:255]
    if err.validator in known.occurrence_validators:
        return ProtocolViolation(known.occurrence, text)
    if err.validator == "additionalProperties":
        return ProtocolViolation(known.format, text)
    if err.validator == "type":
        if not err.absolute_path:
            return ProtocolViolation(known.format, "payload must be a JSON object")
        return ProtocolViolation("TypeConstraintViolation", text)
    if err.validator in ("maxLength", "format"):
        return ProtocolViolation("TypeConstraintViolation", text)
    # enum, minimum, maximum, multipleOf, minItems (1.6), ...
    return ProtocolViolation("PropertyConstraintViolation", text)


def _validate(
    message_type: int, action: str, payload: Any, version: str, use_decimal: bool
) -> None:
    rules(version)  # an unknown version is a programming error, not a CSMS's
    try:
        if use_decimal:
            validator = get_validator(message_type, action, version, parse_float=decimal.Decimal)
            payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
        else:
            validator = get_validator(message_type, action, version)
    except OSError:
        raise ProtocolViolation("NotImplemented", f"no schema for action {action}") from None
    error = best_match(validator.iter_errors(payload))
    if error is not None:
        raise _violation(error, version)


def validate_call(action: str, payload: Any, version: str = V16) -> None:
    """Validate a CALL payload; raises ProtocolViolation with ``version``'s error code."""
    decimal_schema = version == V16 and action in _DECIMAL_CALLS
    _validate(CALL, action, payload, version, decimal_schema)


def validate_result(action: str, payload: Any, version: str = V16) -> None:
    """Validate a CALLRESULT payload for the CALL ``action``."""
    decimal_schema = version == V16 and action in _DECIMAL_RESULTS
    _validate(CALLRESULT, action, payload, version, decimal_schema)
