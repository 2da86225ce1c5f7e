"""The OCPP versions the station can speak, and the websocket subprotocol of each.

``ocpp.version`` in the configuration is one of these versions or ``auto``:
the station offers the subprotocols of ``offered(setting)`` in its handshake
and speaks the one the CSMS selects (OCPP-J: the CSMS picks one of the
offered subprotocols; the client's order states its preference).
"""

from __future__ import annotations

from typing import Final

V16: Final = "1.6"
V201: Final = "2.0.1"
AUTO: Final = "auto"

# Newest first: with ``auto`` the station prefers 2.0.1 and accepts 1.6.
VERSIONS: Final = (V201, V16)
SUBPROTOCOLS: Final = {V16: "ocpp1.6", V201: "ocpp2.0.1"}


def offered(setting: str) -> tuple[str, ...]:
    """The versions to offer, in order of preference, for ``ocpp.version``."""
    if setting == AUTO:
        return VERSIONS
    if setting not in SUBPROTOCOLS:
        raise ValueError(f"unknown OCPP version {setting!r}")
    return (setting,)


def version_of(subprotocol: str | None) -> str | None:
    """The version a websocket subprotocol stands for (None: not an OCPP one we know)."""
    for version, name in SUBPROTOCOLS.items():
        if name == subprotocol:
            return version
    return None
