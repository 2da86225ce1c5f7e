"""Which queued MeterValues may ride in one request, and the request they make.

OCPP 1.6 allows one CALL in flight, so a backlog replayed one sample per
request costs one round trip per sample. A MeterValues request carries a list
of ``meterValue`` entries, each with its own timestamp, so consecutive samples
of one transaction on one connector can go out as one request with their
entries in queue order. Nothing else is ever merged: a StartTransaction or
StopTransaction, a message of another transaction or connector, or anything
the queue holds without a local transaction ends a pack.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

# The CALL frame around the payload ([2,"<id of up to 36 characters>","MeterValues",…])
# and the transactionId filled in at send time, which the stored payload lacks.
FRAME_OVERHEAD = 128

_PACKABLE_KEYS = frozenset({"connectorId", "meterValue"})


class Queued(Protocol):
    """The part of a queued message packing looks at."""

    @property
    def action(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...

    @property
    def local_tx(self) -> int | None: ...

    @property
    def attempts(self) -> int: ...


def _dumps(value: Any) -> str:
    # As the frame is written (firmware.ocpp.frames): compact, UTF-8.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def packable(message: Queued) -> bool:
    """Whether ``message`` may take part in a pack: a MeterValues of a tracked
    transaction that has never failed (a message that failed goes alone)."""
    payload = message.payload
    return (
        message.action == "MeterValues"
        and message.local_tx is not None
        and message.attempts == 0
        and payload.keys() <= _PACKABLE_KEYS
        and isinstance(payload.get("meterValue"), list)
        and isinstance(payload.get("connectorId"), int)
    )


def joins(head: Queued, message: Queued) -> bool:
    """Whether ``message``, queued right after the pack that ``head`` opens, may join it."""
    return (
        packable(message)
        and message.local_tx == head.local_tx
        and message.payload["connectorId"] == head.payload["connectorId"]
    )


def frame_bytes(payload: dict[str, Any]) -> int:
    """Bytes of the CALL frame that sends ``payload`` (an upper bound)."""
    return FRAME_OVERHEAD + len(_dumps(payload).encode())


def entries_bytes(payload: dict[str, Any]) -> int:
    """Bytes the ``meterValue`` entries of ``payload`` add to a pack (with their commas)."""
    return sum(len(_dumps(entry).encode()) + 1 for entry in payload["meterValue"])


def merge(head: dict[str, Any], rest: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The request for ``head`` (its transactionId already filled in) and ``rest``."""
    entries = [entry for payload in (head, *rest) for entry in payload["meterValue"]]
    return {**head, "meterValue": entries}
