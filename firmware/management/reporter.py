"""How a long-running job reports itself, and its progress for the API.

A job (firmware update, diagnostics, log upload) reports each status it
reaches; the protocol front-end delivers them (``firmware.ocpp.status_reporter``:
in order while registered, only the newest while not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class Reporter(Protocol):
    on_delivered: Callable[[str], None] | None
    """Called with each status once the CSMS has it."""

    def report(self, status: str, request_id: int | None = None) -> None:
        """``status`` reached (of the request ``request_id``, where the job has one)."""

    async def flush(self, timeout: float) -> bool:
        """Wait until every status is delivered (or ``timeout``); True if they were."""


@dataclass(slots=True)
class TransferView:
    """What the local API shows of a download or upload."""

    status: str = "Idle"
    location: str | None = None  # password hidden
    bytes: int = 0
    total: int | None = None

    def progress(self, done: int, total: int | None) -> None:
        self.bytes, self.total = done, total

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "location": self.location,
            "bytes": self.bytes,
            "total": self.total,
        }
