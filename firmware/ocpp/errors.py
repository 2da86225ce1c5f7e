"""Errors of the OCPP layer, and the CALLERROR codes of each OCPP-J version."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from firmware.errors import FirmwareError
from firmware.ocpp.versions import V16, V201

# OCPP-J 1.6 §4.2.3, with the two misspellings its errata keep ("will not be fixed").
_CODES_16: Final = frozenset(
    {
        "FormationViolation",
        "GenericError",
        "InternalError",
        "NotImplemented",
        "NotSupported",
        "OccurenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "SecurityError",
        "TypeConstraintViolation",
    }
)
# OCPP-J 2.0.1 (Part 4) §4.3, "RPC Framework Error Codes", spelled as its table spells them.
_CODES_201: Final = frozenset(
    {
        "FormatViolation",
        "GenericError",
        "InternalError",
        "MessageTypeNotSupported",
        "NotImplemented",
        "NotSupported",
        "OccurrenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "RpcFrameworkError",
        "SecurityError",
        "TypeConstraintViolation",
    }
)
CALLERROR_CODES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {V16: _CODES_16, V201: _CODES_201}
)
# The same error under the other version's name.
_RENAMED: Final = {
    V16: {
        "FormatViolation": "FormationViolation",
        "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
        "RpcFrameworkError": "FormationViolation",
    },
    V201: {
        "FormationViolation": "FormatViolation",
        "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
    },
}


def callerror_code(code: str, version: str) -> str:
    """``code`` as OCPP-J ``version`` names it; a code that version lacks is a GenericError."""
    named = _RENAMED[version].get(code, code)
    return named if named in CALLERROR_CODES[version] else "GenericError"


class OcppError(FirmwareError):
    """Root of the OCPP layer's errors."""


class ProtocolViolation(OcppError):
    """A CSMS request we must answer with a CALLERROR ``code``.

    Handlers raise it for requests the schema allows but the station cannot
    take (e.g. an unparseable date: TypeConstraintViolation).
    """

    def __init__(self, code: str, description: str, details: dict[str, Any] | None = None):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}


class CallFailed(OcppError):
    """One of our own CALLs did not get a usable CALLRESULT."""


class NotConnected(CallFailed, ConnectionError):
    """There is no connection to the CSMS (or it was lost before the answer)."""


class CallTimeout(CallFailed, TimeoutError):
    """The CSMS did not answer within the response timeout.

    ``link_alive`` tells later whether the CSMS was there to answer: it becomes
    True once a later CALL on the same connection is answered, False when the
    connection is declared dead or lost first (None: not known).
    """

    def __init__(self, message: str, link_alive: asyncio.Future[bool] | None = None) -> None:
        super().__init__(message)
        self.link_alive = link_alive


class LinkBusy(CallFailed, TimeoutError):
    """Another CALL held the link for longer than the caller could wait; nothing was sent."""


class CallErrorReceived(CallFailed):
    """The CSMS answered with a CALLERROR."""

    def __init__(self, code: str, description: str, details: Any = None) -> None:
        super().__init__(f"CALLERROR {code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class InvalidResponse(CallFailed):
    """The CSMS answered with a CALLRESULT that violates the response schema."""


class InvalidRequest(CallFailed):
    """Our own CALL payload violates its schema; it is never sent."""
