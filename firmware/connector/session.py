"""What a connector remembers about its current authorization and transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware.auth.cache import IdTagInfo
from firmware.connector.transactions import TxRecord


@dataclass(slots=True)
class PendingAuth:
    """An accepted authorization waiting for the vehicle (tap-first, remote start)."""

    id_tag: str
    info: IdTagInfo
    offline: bool
    expires_at: float
    charging_profile: dict[str, Any] | None = None


@dataclass(slots=True)
class ActiveTx:
    record: TxRecord
    info: IdTagInfo
    offline: bool
    start_seq: int
    confirmed: bool = False
    energy_allowed: bool = False
    invalid: bool = False  # StartTransaction.conf not Accepted, energy withheld
    energy_cap_wh: float | None = None  # MaxEnergyOnInvalidId
    next_sample_at: float = 0.0
    charging_profile: dict[str, Any] | None = None
    # False: started by the vehicle plugging in, before a token (TxStartPoint EVConnected).
    authorized: bool = True
    # Started by a token before the vehicle (TxStartPoint Authorized): ends (Timeout) when
    # no vehicle has plugged in by then (monotonic).
    ev_deadline: float | None = None
    # The authorization ended (reason, who ended it) and the transaction goes on until
    # the vehicle leaves (TxStopPoint without Authorized).
    deauthorized: tuple[str, str | None] | None = None

    @property
    def local_id(self) -> int:
        return self.record.local_id

    @property
    def id_tag(self) -> str:
        return self.record.id_tag
