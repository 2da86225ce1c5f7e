"""What a connector controller needs from the rest of the station."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from firmware.clock import Clock
from firmware.connector.availability import AvailabilityStore
from firmware.connector.journal import TransactionJournal
from firmware.connector.transactions import TransactionStore
from firmware.metrics import TapLatency
from firmware.settings import StationSettings
from firmware.storage.db import Database
from hal.interfaces import BoardSettings


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    db: Database
    transactions: TransactionStore
    journal: TransactionJournal
    settings: StationSettings
    availability: AvailabilityStore
    clock: Clock
    board: BoardSettings
    spawn: Callable[[Coroutine[Any, Any, None]], None]
    online: Callable[[], bool]
    offline_decision: Callable[[str], bool]
    response_timeout_s: float
    meter_poll_s: float
    overcurrent_margin_a: float = 2.0
    overcurrent_time_s: float = 5.0
    taps: TapLatency = field(default_factory=TapLatency)
