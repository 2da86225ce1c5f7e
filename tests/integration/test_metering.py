"""Item 5: sampled and clock-aligned meter values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from tests.integration.harness import Daemon, charge_session_start

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]

MEASURANDS = (
    "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,Current.Offered,SoC"
)


@pytest.mark.emulated
async def test_sampled_meter_values(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={"config": {"MeterValueSampleInterval": 1, "MeterValuesSampledData": MEASURANDS}}
    )
    await d.sim(soc=40)
    await charge_session_start(d)
    c = await d.connector()
    first = await d.log.wait_for("MeterValues", lambda p: "transactionId" in p)
    second = await d.log.wait_for("MeterValues", lambda p: p is not first and p != first, timeout=5)
    assert first["transactionId"] == c["transaction_id"] and first["connectorId"] == 1
    values = first["meterValue"][0]["sampledValue"]
    by_measurand: dict[str, list[dict[str, str]]] = {}
    for v in values:
        by_measurand.setdefault(v["measurand"], []).append(v)
        assert v["context"] == "Sample.Periodic"
    assert [v["phase"] for v in by_measurand["Current.Import"]] == ["L1", "L2", "L3"]
    assert [v["phase"] for v in by_measurand["Voltage"]] == ["L1-N", "L2-N", "L3-N"]
    assert by_measurand["Energy.Active.Import.Register"][0]["unit"] == "Wh"
    assert by_measurand["Power.Active.Import"][0]["unit"] == "W"
    assert by_measurand["Current.Offered"][0]["value"] == "32.0"
    assert (
        by_measurand["SoC"][0]["unit"] == "Percent" and by_measurand["SoC"][0]["location"] == "EV"
    )
    t1 = datetime.fromisoformat(first["meterValue"][0]["timestamp"].replace("Z", "+00:00"))
    t2 = datetime.fromisoformat(second["meterValue"][0]["timestamp"].replace("Z", "+00:00"))
    assert 0.5 <= (t2 - t1).total_seconds() <= 2.5
    e1 = float(by_measurand["Energy.Active.Import.Register"][0]["value"])
    e2 = float(
        next(
            v["value"]
            for v in second["meterValue"][0]["sampledValue"]
            if v["measurand"] == "Energy.Active.Import.Register"
        )
    )
    assert e2 >= e1


def values_of(meter_values: list[dict[str, Any]], measurand: str) -> list[dict[str, Any]]:
    return [v for mv in meter_values for v in mv["sampledValue"] if v["measurand"] == measurand]


@pytest.mark.emulated
async def test_power_offered_and_interval_energy_set_by_the_csms(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(ocpp={"config": {"MeterValueSampleInterval": 1}})
    for key, value in (
        ("MeterValuesSampledData", "Power.Offered,Current.Offered,Energy.Active.Import.Interval"),
        ("StopTxnSampledData", "Energy.Active.Import.Interval"),
    ):
        answer = await d.log.call("ChangeConfiguration", {"key": key, "value": value})
        assert answer["status"] == "Accepted", key
    start = await charge_session_start(d)
    sample = await d.log.wait_for("MeterValues", lambda p: "transactionId" in p)
    (offered,) = values_of(sample["meterValue"], "Power.Offered")
    (current,) = values_of(sample["meterValue"], "Current.Offered")
    # Offered current x nominal voltage (230 V) x phases (3), in W.
    assert offered["unit"] == "W" and offered["context"] == "Sample.Periodic"
    assert offered["value"] == f"{float(current['value']) * 230 * 3:.1f}"
    assert float(offered["value"]) > 0
    (interval,) = values_of(sample["meterValue"], "Energy.Active.Import.Interval")
    assert interval["unit"] == "Wh" and float(interval["value"]) >= 0
    await d.log.wait_for("MeterValues", lambda p: p != sample and "transactionId" in p)
    await d.tap("AABBCCDD")
    stop = await d.log.wait_for("StopTransaction")
    # The interval energies of the transaction add up to what it delivered.
    intervals = values_of(stop["transactionData"], "Energy.Active.Import.Interval")
    assert intervals[-1]["context"] == "Transaction.End" and len(intervals) >= 3
    delivered = stop["meterStop"] - start["meterStart"]
    assert abs(sum(float(v["value"]) for v in intervals) - delivered) <= 1 + 0.05 * len(intervals)


async def test_clock_aligned_meter_values(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={
            "config": {
                "ClockAlignedDataInterval": 1,
                "MeterValuesAlignedData": "Energy.Active.Import.Register,Frequency",
            }
        }
    )
    idle = await d.log.wait_for("MeterValues", timeout=4)
    assert "transactionId" not in idle
    sample = idle["meterValue"][0]
    assert sample["sampledValue"][0]["context"] == "Sample.Clock"
    assert datetime.fromisoformat(sample["timestamp"].replace("Z", "+00:00")).microsecond == 0
    assert {v["measurand"] for v in sample["sampledValue"]} == {
        "Energy.Active.Import.Register",
        "Frequency",
    }
    await charge_session_start(d)
    c = await d.connector()
    in_tx = await d.log.wait_for("MeterValues", lambda p: "transactionId" in p, timeout=4)
    assert in_tx["transactionId"] == c["transaction_id"]


async def test_unsupported_measurand_is_rejected(daemon: Daemon) -> None:
    answer = await daemon.log.call(
        "ChangeConfiguration", {"key": "MeterValuesSampledData", "value": "Temperature"}
    )
    assert answer["status"] == "Rejected"
