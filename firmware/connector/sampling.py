"""Meter samples of one connector: periodic, clock-aligned, and for transactionData."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from firmware.connector.context import ConnectorContext
from firmware.metering import Sample, meter_value, sampled_values


class Sampler:
    def __init__(self, ctx: ConnectorContext, connector_id: int) -> None:
        self.ctx = ctx
        self.connector_id = connector_id

    def _message(self, values: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
        return {"connectorId": self.connector_id, "meterValue": [meter_value(at, values)]}

    def keep_for_stop(
        self, local_id: int, key: str, context: str, at: datetime, sample: Sample | None
    ) -> None:
        """Keep a sample of the ``key`` (StopTxn*Data) measurands for transactionData."""
        measurands = self.ctx.config.get_csl(key)
        if measurands and sample is not None:
            values = sampled_values(sample, measurands, context)
            if values:
                self.ctx.transactions.add_sample(local_id, meter_value(at, values))

    def periodic(self, local_id: int, sample: Sample, at: datetime) -> None:
        """Sample.Periodic MeterValues of a transaction, queued (committed but not
        fsync'd: a periodic sample is not worth a flash write cycle; Start/Stop are)."""
        with self.ctx.db.transaction(durable=False):
            self.ctx.transactions.record_meter(local_id, sample.reading.energy_wh, at)
            values = sampled_values(
                sample, self.ctx.config.get_csl("MeterValuesSampledData"), "Sample.Periodic"
            )
            if values:
                self.ctx.outbox.enqueue("MeterValues", self._message(values, at), local_id)
            self.keep_for_stop(local_id, "StopTxnSampledData", "Sample.Periodic", at, sample)

    def aligned(self, local_id: int | None, sample: Sample, at: datetime) -> dict[str, Any] | None:
        """Sample.Clock MeterValues: queued in a transaction, returned for sending otherwise."""
        values = sampled_values(
            sample, self.ctx.config.get_csl("MeterValuesAlignedData"), "Sample.Clock"
        )
        if local_id is None:
            return self._message(values, at) if values else None
        with self.ctx.db.transaction(durable=False):
            if values:
                self.ctx.outbox.enqueue("MeterValues", self._message(values, at), local_id)
            self.keep_for_stop(local_id, "StopTxnAlignedData", "Sample.Clock", at, sample)
        return None
