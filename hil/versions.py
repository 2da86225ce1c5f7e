"""The OCPP versions the bench CSMS speaks: subprotocols, actions and CALLERROR codes of each.

Kept apart from the firmware's own tables on purpose: the bench checks the
station, so it must not share the station's mistakes.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

V16: Final = "1.6"
V201: Final = "2.0.1"
SUBPROTOCOLS: Final = {V16: "ocpp1.6", V201: "ocpp2.0.1"}

# OCPP-J 1.6 §4.2.3, misspellings included (its errata keep them).
_CODES_16: Final = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)
# OCPP-J 2.0.1 (Part 4) §4.3, as its table spells them: "OccurrenceConstraintViolation"
# with two r (the ``ocpp`` package accepts that spelling only for 2.1).
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
CALLERROR_CODES: Final = {V16: _CODES_16, V201: _CODES_201}


def version_of(subprotocol: str | None) -> str | None:
    for version, name in SUBPROTOCOLS.items():
        if name == subprotocol:
            return version
    return None


def check_versions(versions: object) -> list[str]:
    """``versions`` as a list, or ValueError naming what is wrong with it."""
    if isinstance(versions, str) or not isinstance(versions, list | tuple):
        raise ValueError(f"versions must be a list of {list(SUBPROTOCOLS)}, got {versions!r}")
    unknown = [v for v in versions if v not in SUBPROTOCOLS]
    if unknown or not versions or len(set(versions)) != len(versions):
        raise ValueError(f"versions must be distinct ones of {list(SUBPROTOCOLS)}: {versions!r}")
    return list(versions)


def _actions(version: str) -> frozenset[str]:
    folder = resources.files("ocpp") / f"v{version.replace('.', '')}" / "schemas"
    names = [entry.name for entry in folder.iterdir()]
    if version == V16:
        return frozenset(
            n.removesuffix(".json")
            for n in names
            if n.endswith(".json") and not n.endswith("Response.json")
        )
    return frozenset(n.removesuffix("Request.json") for n in names if n.endswith("Request.json"))


# Every action each version defines (the ``ocpp`` package's schema files).
KNOWN_ACTIONS: Final = {version: _actions(version) for version in SUBPROTOCOLS}
