"""The link to the CSMS over time: up or down since when, and when the next try comes.

``Connection`` reports each ``LinkState`` as it happens; this keeps the moment
the link last came up or went down (the "connecting" attempts of an outage
belong to the outage: offline since the link was lost, or since the daemon
started when it never came up) and turns the retry delay into a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from firmware.clock import iso
from firmware.logs import redact
from firmware.ocpp.connection import LinkState


class LinkTracker:
    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self.state: LinkState | None = None
        self.since = now()
        self.retry_at: datetime | None = None

    @property
    def up(self) -> bool:
        return self.state is not None and self.state.phase == "connected"

    def update(self, state: LinkState) -> None:
        now = self._now()
        if (state.phase == "connected") != self.up:
            self.since = now
        retry_s = state.retry_s
        self.retry_at = now + timedelta(seconds=retry_s) if retry_s is not None else None
        self.state = state

    def summary(self) -> dict[str, Any]:
        """``state`` connecting/connected/offline, ``detail``, ``since`` (the link up, or
        down, since then), ``retry_at`` (the next attempt while offline); times in ISO."""
        state = self.state
        return {
            "state": state.phase if state is not None else "connecting",
            "detail": redact(state.detail) if state is not None else "",
            "since": iso(self.since),
            "retry_at": iso(self.retry_at) if self.retry_at is not None else None,
        }
