"""Meter samples of one connector: periodic, clock-aligned, and for transactionData.

Energy.Active.Import.Interval needs the register reading at the start of the
interval: the previous periodic sample of the transaction (at first its
Transaction.Begin reading) for Sample.Periodic and Transaction.End, the
previous clock-aligned sample of the connector for Sample.Clock. Both are kept
here, in memory: a transaction does not survive a restart, and the first
clock-aligned sample after one has no interval value.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from firmware.connector.context import ConnectorContext
from firmware.metering import Sample, meter_value, sampled_values
from firmware.settings import Measurands


def _interval(sample: Sample, since_wh: float | None) -> Sample:
    energy = sample.reading.energy_wh
    if since_wh is None or energy < since_wh:
        return replace(sample, interval_wh=None)
    return replace(sample, interval_wh=energy - since_wh)


class Sampler:
    def __init__(self, ctx: ConnectorContext, connector_id: int) -> None:
        self.ctx = ctx
        self.connector_id = connector_id
        self._periodic_since: tuple[int, float] | None = None  # (local_id, register Wh)
        self._aligned_since: float | None = None

    def _message(self, values: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
        return {"connectorId": self.connector_id, "meterValue": [meter_value(at, values)]}

    def _periodic_base(self, local_id: int) -> float | None:
        since = self._periodic_since
        return since[1] if since is not None and since[0] == local_id else None

    def keep_for_stop(
        self, local_id: int, kind: Measurands, context: str, at: datetime, sample: Sample | None
    ) -> None:
        """Keep a sample of the ``kind`` measurands for the stop message's transaction data."""
        measurands = self.ctx.settings.measurands(kind)
        if measurands and sample is not None:
            values = sampled_values(sample, measurands, context)
            if values:
                self.ctx.transactions.add_sample(local_id, meter_value(at, values))

    def begin(
        self, local_id: int, meter_start_wh: float, at: datetime, sample: Sample | None
    ) -> None:
        """Transaction.Begin: the periodic intervals of the transaction count from here."""
        self._periodic_since = (local_id, meter_start_wh)
        if sample is not None:
            sample = replace(sample, interval_wh=None)
        self.keep_for_stop(local_id, Measurands.STOP_PERIODIC, "Transaction.Begin", at, sample)

    def end(self, local_id: int, at: datetime, sample: Sample | None) -> None:
        """Transaction.End: its interval is the rest since the last periodic sample."""
        if sample is not None:
            sample = _interval(sample, self._periodic_base(local_id))
        self._periodic_since = None
        self.keep_for_stop(local_id, Measurands.STOP_PERIODIC, "Transaction.End", at, sample)

    def periodic(self, local_id: int, sample: Sample, at: datetime) -> None:
        """Sample.Periodic MeterValues of a transaction, queued (committed but not
        fsync'd: a periodic sample is not worth a flash write cycle; Start/Stop are)."""
        sample = _interval(sample, self._periodic_base(local_id))
        self._periodic_since = (local_id, sample.reading.energy_wh)
        with self.ctx.db.transaction(durable=False):
            self.ctx.transactions.record_meter(local_id, sample.reading.energy_wh, at)
            values = sampled_values(
                sample, self.ctx.settings.measurands(Measurands.PERIODIC), "Sample.Periodic"
            )
            if values:
                self.ctx.outbox.enqueue("MeterValues", self._message(values, at), local_id)
            self.keep_for_stop(local_id, Measurands.STOP_PERIODIC, "Sample.Periodic", at, sample)

    def aligned(self, local_id: int | None, sample: Sample, at: datetime) -> dict[str, Any] | None:
        """Sample.Clock MeterValues: queued in a transaction, returned for sending otherwise."""
        sample = _interval(sample, self._aligned_since)
        self._aligned_since = sample.reading.energy_wh
        values = sampled_values(
            sample, self.ctx.settings.measurands(Measurands.ALIGNED), "Sample.Clock"
        )
        if local_id is None:
            return self._message(values, at) if values else None
        with self.ctx.db.transaction(durable=False):
            if values:
                self.ctx.outbox.enqueue("MeterValues", self._message(values, at), local_id)
            self.keep_for_stop(local_id, Measurands.STOP_ALIGNED, "Sample.Clock", at, sample)
        return None
