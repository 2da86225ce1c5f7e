"""What the station announces of its transactions, for the CSMS to learn.

The connector controller and the station say what happened: a transaction
started, a meter sample was taken, a transaction ended. A protocol front-end
(``firmware.ocpp.v16.transactions``) turns each into its version's messages and
queues them durably. Every call but ``outside`` and ``answered`` runs inside
the caller's database transaction, so the transaction record and its messages
are committed together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from firmware.connector.transactions import TxRecord
from firmware.metering import Sample


class TxChange(StrEnum):
    """A change within a transaction that does not start or end it (OCPP 2.0.1's
    TransactionEvent Updated; 1.6 has no message for these, its rules never make them)."""

    EV_CONNECTED = "EVConnected"  # a vehicle plugged in (the transaction began before it)
    EV_DISCONNECTED = "EVDisconnected"  # the vehicle left; the transaction goes on
    DEAUTHORIZED = "Deauthorized"  # the authorization ended; the transaction goes on


class TransactionJournal(Protocol):
    def started(self, record: TxRecord) -> int:
        """``record`` began (its meter start, time and reservation); the handle
        ``answered`` waits on."""

    async def answered(self, handle: int) -> bool:
        """Wait until the CSMS answered the start ``handle`` names; False when the
        message was given up. The answer itself reaches the station as a command."""

    def sampled(
        self, record: TxRecord, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        """A sample of ``record``'s connector during it (Sample.Periodic, Sample.Clock)."""

    def kept(
        self, local_id: int, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        """A sample kept for the message that ends the transaction."""

    def ended(
        self, record: TxRecord, meter_stop_wh: int, at: datetime, reason: str, id_tag: str | None
    ) -> None:
        """``record`` ended (``id_tag``: who ended it, when a token did). Called before
        the record is closed, while the samples kept for it are still there."""

    def authorized(self, record: TxRecord, at: datetime) -> int:
        """A token authorized ``record``, which began without one (its id_tag is set now);
        the handle ``answered`` waits on."""

    def changed(
        self,
        record: TxRecord,
        change: TxChange,
        at: datetime,
        reason: str | None = None,
        id_tag: str | None = None,
    ) -> None:
        """``change`` happened within ``record`` (``reason``, ``id_tag``: the stop reason
        and who gave it, for DEAUTHORIZED)."""

    def outside(
        self, connector_id: int, sample: Sample, measurands: list[str], at: datetime
    ) -> None:
        """A clock-aligned sample of a connector without a transaction: sent while
        online, never queued."""
