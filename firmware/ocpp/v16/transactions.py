"""The station's transactions as OCPP 1.6 messages: StartTransaction,
MeterValues and StopTransaction (with its transactionData), queued durably in
the outbox; the transactionId of a queued message is filled in when it is sent
(``firmware.queue``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from firmware.auth.cache import IdTagInfo
from firmware.clock import iso
from firmware.connector.journal import TxChange
from firmware.connector.transactions import TransactionStore, TxRecord
from firmware.metering import Sample, meter_value, sampled_values
from firmware.queue import Outbox
from firmware.station import Station

log = logging.getLogger("firmware.ocpp.transactions")

REASONS = frozenset(
    {
        "DeAuthorized",
        "EmergencyStop",
        "EVDisconnected",
        "HardReset",
        "Local",
        "Other",
        "PowerLoss",
        "Reboot",
        "Remote",
        "SoftReset",
        "UnlockCommand",
    }
)


class V16Journal:
    """``firmware.connector.journal.TransactionJournal`` in OCPP 1.6 messages."""

    def __init__(
        self,
        outbox: Outbox,
        transactions: TransactionStore,
        send: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.outbox = outbox
        self.transactions = transactions
        self.send = send  # a message that is not queued; dropped while offline

    def answers_to(self, station: Station) -> None:
        """StartTransaction.conf and StopTransaction.conf become the station's commands."""

        def start(local_id: int | None, result: dict[str, Any]) -> None:
            if local_id is not None:
                info = IdTagInfo.from_payload(result["idTagInfo"])
                station.start_answered(local_id, int(result["transactionId"]), info)

        def stop(local_id: int | None, result: dict[str, Any]) -> None:
            info = result.get("idTagInfo")
            if local_id is not None:
                station.stop_answered(
                    local_id, IdTagInfo.from_payload(info) if info is not None else None
                )

        self.outbox.on_result("StartTransaction", start)
        self.outbox.on_result("StopTransaction", stop)

    def started(self, record: TxRecord) -> int:
        payload: dict[str, Any] = {
            "connectorId": record.connector_id,
            "idTag": record.id_tag,
            "meterStart": record.meter_start_wh,
            "timestamp": iso(record.started_at),
        }
        if record.reservation_id is not None:
            payload["reservationId"] = record.reservation_id
        return self.outbox.enqueue("StartTransaction", payload, record.local_id)

    async def answered(self, handle: int) -> bool:
        return await self.outbox.delivered(handle)

    def sampled(
        self, record: TxRecord, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        values = sampled_values(sample, measurands, context)
        if values:
            message = {"connectorId": record.connector_id, "meterValue": [meter_value(at, values)]}
            self.outbox.enqueue("MeterValues", message, record.local_id)

    def kept(
        self, local_id: int, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        self.transactions.keep_sample(local_id, sample, measurands, context, at)

    def ended(
        self, record: TxRecord, meter_stop_wh: int, at: datetime, reason: str, id_tag: str | None
    ) -> None:
        payload: dict[str, Any] = {
            "meterStop": meter_stop_wh,
            "timestamp": iso(at),
            # A reason 1.6 does not have (a 2.0.1 master pass ended it, with auto) is Other.
            "reason": reason if reason in REASONS else "Other",
        }
        if id_tag is not None:
            payload["idTag"] = id_tag
        data = self.transactions.samples(record.local_id)
        if data:
            payload["transactionData"] = data
        self.outbox.enqueue("StopTransaction", payload, record.local_id)

    def authorized(self, record: TxRecord, at: datetime) -> int:
        """Never called: 1.6's rule starts a transaction with its token (PowerPathClosed)."""
        log.error("transaction %d: 1.6 has no message for a later token", record.local_id)
        return -1

    def changed(
        self,
        record: TxRecord,
        change: TxChange,
        at: datetime,
        reason: str | None = None,
        id_tag: str | None = None,
    ) -> None:
        """1.6 has no message for a change within a transaction."""

    def outside(
        self, connector_id: int, sample: Sample, measurands: list[str], at: datetime
    ) -> None:
        values = sampled_values(sample, measurands, "Sample.Clock")
        if values:
            self.send(
                "MeterValues",
                {"connectorId": connector_id, "meterValue": [meter_value(at, values)]},
            )
