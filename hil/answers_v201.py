"""What the bench CSMS answers by default to a station's OCPP 2.0.1 CALL.

The bench's ``id_tags`` table (idToken → AuthorizationStatus) and
``parent_id_tags`` (idToken → group) serve both versions: in 2.0.1 they give
``idTokenInfo.status`` and ``groupIdToken``. An action without an answer here
is answered NotSupported if 2.0.1 defines it (the ISO 15118 certificate
messages, a CSMS-to-station action sent the wrong way), NotImplemented if not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

# Answers without a required field: the CSMS only acknowledges.
_EMPTY: Final = frozenset(
    {
        "ClearedChargingLimit",
        "FirmwareStatusNotification",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "StatusNotification",
    }
)


class BenchState(Protocol):
    """What the default answers read from the bench."""

    boot_status: str
    heartbeat_interval: int
    id_tags: dict[str, str]
    default_id_tag_status: str
    parent_id_tags: dict[str, str]


def id_token_info(bench: BenchState, id_token: Mapping[str, Any]) -> dict[str, Any]:
    token = str(id_token.get("idToken", ""))
    info: dict[str, Any] = {"status": bench.id_tags.get(token, bench.default_id_tag_status)}
    if token in bench.parent_id_tags:
        info["groupIdToken"] = {"idToken": bench.parent_id_tags[token], "type": "Central"}
    return info


def default_answer(
    bench: BenchState, action: str, payload: dict[str, Any], now: Callable[[], str]
) -> dict[str, Any] | None:
    if action == "BootNotification":
        interval = bench.heartbeat_interval
        return {"status": bench.boot_status, "currentTime": now(), "interval": interval}
    if action == "Heartbeat":
        return {"currentTime": now()}
    if action == "Authorize":
        return {"idTokenInfo": id_token_info(bench, payload["idToken"])}
    if action == "TransactionEvent":
        # The CSMS answers the idToken of any event that carries one (E01-E07).
        token = payload.get("idToken")
        return {"idTokenInfo": id_token_info(bench, token)} if isinstance(token, dict) else {}
    if action == "DataTransfer":
        return {"status": "UnknownVendorId"}
    if action == "SignCertificate":
        return {"status": "Accepted"}
    return {} if action in _EMPTY else None
