from __future__ import annotations

from datetime import UTC, datetime

import pytest

from firmware.metering import Sample, next_aligned, sampled_values
from firmware.ocpp import frames
from hal.interfaces import MeterReading

READING = MeterReading(1234.6, 11040.0, (16.0, 16.0, 16.0), (230.0, 230.0, 230.0), 50.0)


def test_three_phase_values_have_phase_unit_and_context() -> None:
    sample = Sample(READING, 16.0, 55.0, 3)
    values = sampled_values(
        sample,
        ["Energy.Active.Import.Register", "Current.Import", "Voltage", "SoC", "Current.Offered"],
        "Sample.Periodic",
    )
    by = [(v["measurand"], v.get("phase"), v.get("unit"), v["value"]) for v in values]
    assert by[0] == ("Energy.Active.Import.Register", None, "Wh", "1235")
    assert [p for m, p, _, _ in by if m == "Current.Import"] == ["L1", "L2", "L3"]
    assert [p for m, p, _, _ in by if m == "Voltage"] == ["L1-N", "L2-N", "L3-N"]
    assert ("SoC", None, "Percent", "55") in by
    assert all(v["context"] == "Sample.Periodic" for v in values)
    soc = next(v for v in values if v["measurand"] == "SoC")
    assert soc["location"] == "EV"
    frames.validate_call(
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": values}],
        },
    )


def test_single_phase_and_missing_soc() -> None:
    values = sampled_values(Sample(READING, 16.0, None, 1), ["Current.Import", "SoC"], "Trigger")
    assert [v.get("phase") for v in values] == ["L1"]


@pytest.mark.parametrize(
    ("now", "interval", "expected"),
    [
        ("2026-01-01T10:07:00", 900, "2026-01-01T10:15:00"),
        ("2026-01-01T10:15:00", 900, "2026-01-01T10:30:00"),
        ("2026-01-01T23:59:59", 7, "2026-01-02T00:00:00"),
        ("2026-01-01T00:00:00.5", 1, "2026-01-01T00:00:01"),
    ],
)
def test_next_aligned(now: str, interval: int, expected: str) -> None:
    got = next_aligned(datetime.fromisoformat(now).replace(tzinfo=UTC), interval)
    assert got == datetime.fromisoformat(expected).replace(tzinfo=UTC)
