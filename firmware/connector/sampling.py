"""Meter samples of one connector: periodic, clock-aligned, and kept for the stop
message; the journal (``ConnectorContext.journal``) makes them messages.

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

from firmware.connector.context import ConnectorContext
from firmware.connector.transactions import TxRecord
from firmware.metering import Sample
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

    def _periodic_base(self, local_id: int) -> float | None:
        since = self._periodic_since
        return since[1] if since is not None and since[0] == local_id else None

    def keep_for_stop(
        self, local_id: int, kind: Measurands, context: str, at: datetime, sample: Sample | None
    ) -> None:
        """Keep a sample of the ``kind`` measurands for the stop message's transaction data."""
        measurands = self.ctx.settings.measurands(kind)
        if measurands and sample is not None:
            self.ctx.journal.kept(local_id, sample, measurands, context, at)

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

    def periodic(self, record: TxRecord, sample: Sample, at: datetime) -> None:
        """Sample.Periodic of a transaction, queued (committed but not fsync'd: a
        periodic sample is not worth a flash write cycle; a start or stop is)."""
        local_id = record.local_id
        sample = _interval(sample, self._periodic_base(local_id))
        self._periodic_since = (local_id, sample.reading.energy_wh)
        with self.ctx.db.transaction(durable=False):
            self.ctx.transactions.record_meter(local_id, sample.reading.energy_wh, at)
            measurands = self.ctx.settings.measurands(Measurands.PERIODIC)
            self.ctx.journal.sampled(record, sample, measurands, "Sample.Periodic", at)
            self.keep_for_stop(local_id, Measurands.STOP_PERIODIC, "Sample.Periodic", at, sample)

    def aligned(self, record: TxRecord | None, sample: Sample, at: datetime) -> None:
        """Sample.Clock: queued in a transaction, sent at once (when online) outside one."""
        sample = _interval(sample, self._aligned_since)
        self._aligned_since = sample.reading.energy_wh
        measurands = self.ctx.settings.measurands(Measurands.ALIGNED)
        if record is None:
            self.ctx.journal.outside(self.connector_id, sample, measurands, at)
            return
        with self.ctx.db.transaction(durable=False):
            self.ctx.journal.sampled(record, sample, measurands, "Sample.Clock", at)
            self.keep_for_stop(record.local_id, Measurands.STOP_ALIGNED, "Sample.Clock", at, sample)
