"""What the page shows of the station: ``GET /api/v1/status`` with the idTags masked.

With the station speaking OCPP 2.0.1 the page shows each connector as 2.0.1 reports
it (its EVSE and connector there, its connectorStatus, the string transactionId), and
the station's own finer state next to it: the status has what it needs for both.

The status of the local API names idTags in full (it is for the bench and
scripts on the station itself); the page shows them as the logs do
(``****B2C3``). The uptime is left out: it changes every second and comes with
the push channel's ticks instead, so that an unchanged station sends nothing.
"""

from __future__ import annotations

from typing import Any

from hal.interfaces import Fault
from hal.tokens import mask_id_tag

# Faults a plant takes on connector 0 (the rest need a connector; hal.sim.plant).
STATION_FAULTS = (Fault.EMERGENCY_STOP.value, Fault.READER_OFFLINE.value)
CONNECTOR_FAULTS = tuple(f.value for f in Fault)
CONNECTOR_FIELDS = (
    "id",
    "status",
    "error_code",
    "pilot",
    "relay_closed",
    "locked",
    "offered_current_a",
    "limit_a",
    "power_w",
    "energy_wh",
    "session_energy_wh",
    "transaction_id",
    "faults",
    "evse_id",
    "evse_connector_id",
    "connector_status",
)


def _masked(tag: object) -> str | None:
    return mask_id_tag(tag) if isinstance(tag, str) else None


def page_state(status: dict[str, Any]) -> dict[str, Any]:
    ocpp = status["ocpp"]
    station = {
        "charge_point_id": status["charge_point_id"],
        "firmware_version": status.get("firmware_version"),
        "csms_url": status.get("csms_url"),
        "hal_backend": status.get("hal_backend"),
        "started_at": status.get("started_at"),
        "ocpp_version": ocpp.get("version"),
        "connected": ocpp["connected"],
        "link": ocpp.get("link"),
        "registration": ocpp["registration"],
        "queued": ocpp["queued"],
        "dropped": ocpp.get("dropped"),
        "thinned": ocpp.get("thinned"),
        "reconnects": ocpp.get("reconnects"),
        **{k: status["station"].get(k) for k in ("status", "error_code", "faults")},
        "firmware": status.get("firmware"),
        "diagnostics": status.get("diagnostics"),
    }
    connectors = [
        {**{k: c.get(k) for k in CONNECTOR_FIELDS}, "id_tag": _masked(c.get("id_tag"))}
        for c in status["connectors"]
    ]
    return {"station": station, "connectors": connectors}


def controls(has_plant: bool) -> dict[str, Any] | None:
    """The bench controls the page offers (None: a board, no plant to drive)."""
    if not has_plant:
        return None
    return {"station_faults": list(STATION_FAULTS), "connector_faults": list(CONNECTOR_FAULTS)}
