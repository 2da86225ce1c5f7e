from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16.enums import Measurand

from firmware.errors import ConfigError
from firmware.metering import Sample, next_aligned, sampled_values, supported_measurands
from firmware.ocpp import frames
from firmware.ocpp.v16.configuration import ConfigurationStore, StationFacts
from firmware.storage.db import Database
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


# ---------------------------------------------------------------- what the station can know

ALL_16 = {m.value for m in Measurand}


def by_measurand(values: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for v in values:
        out.setdefault(v["measurand"], []).append(v)
    return out


@pytest.mark.parametrize(
    ("phases", "volts", "expected"),
    [(3, 230.0, "11040.0"), (1, 230.0, "3680.0"), (3, 120.0, "5760.0")],
)
def test_power_offered_is_the_offered_current_at_nominal_voltage(
    phases: int, volts: float, expected: str
) -> None:
    sample = Sample(READING, 16.0, None, phases, volts)
    (value,) = sampled_values(sample, ["Power.Offered"], "Sample.Periodic")
    assert (value["value"], value["unit"], value["location"]) == (expected, "W", "Outlet")
    assert "phase" not in value


def test_power_offered_is_zero_while_nothing_is_offered() -> None:
    (value,) = sampled_values(Sample(READING, 0.0, None, 3), ["Power.Offered"], "Sample.Clock")
    assert value["value"] == "0.0"


def test_power_factor_is_active_over_apparent_power() -> None:
    three = sampled_values(Sample(READING, 16.0, None, 3), ["Power.Factor"], "Sample.Periodic")
    assert [(v["value"], v.get("unit")) for v in three] == [("1.000", None)]
    lagging = MeterReading(1000.0, 9936.0, (16.0, 16.0, 16.0), (230.0, 230.0, 230.0))
    (value,) = sampled_values(Sample(lagging, 16.0, None, 3), ["Power.Factor"], "Trigger")
    assert value["value"] == "0.900"
    # Only the board's phases count: a single-phase board ignores L2 and L3.
    single = MeterReading(1000.0, 3312.0, (16.0, 9.0, 9.0), (230.0, 230.0, 230.0))
    (value,) = sampled_values(Sample(single, 16.0, None, 1), ["Power.Factor"], "Trigger")
    assert value["value"] == "0.900"


def test_power_factor_is_left_out_without_current() -> None:
    idle = MeterReading(1000.0, 0.0, (0.05, 0.0, 0.0), (230.0, 230.0, 230.0))
    assert sampled_values(Sample(idle, 16.0, None, 3), ["Power.Factor"], "Sample.Clock") == []


def test_interval_energy_only_where_an_interval_ended() -> None:
    measurands = ["Energy.Active.Import.Interval", "Energy.Active.Import.Register"]
    values = sampled_values(Sample(READING, 16.0, None, 3, interval_wh=12.34), measurands, "X")
    interval, register = values
    assert (interval["measurand"], interval["value"], interval["unit"]) == (
        "Energy.Active.Import.Interval",
        "12.3",
        "Wh",
    )
    assert register["measurand"] == "Energy.Active.Import.Register"
    without = sampled_values(Sample(READING, 16.0, None, 3), measurands, "Trigger")
    assert [v["measurand"] for v in without] == ["Energy.Active.Import.Register"]


def test_every_supported_measurand_is_an_ocpp_one_and_gives_a_value() -> None:
    supported = supported_measurands(has_bms=True, has_temperature=True)
    assert supported <= ALL_16
    reading = MeterReading(
        1234.0, 11040.0, (16.0, 16.0, 16.0), (230.0, 230.0, 230.0), 50.0, temperature_c=41.0
    )
    sample = Sample(reading, 16.0, 55.0, 3, interval_wh=5.0)
    values = sampled_values(sample, sorted(supported), "Sample.Periodic")
    assert set(by_measurand(values)) == supported
    frames.validate_call(
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": values}],
        },
    )


def test_what_the_station_cannot_know_stays_unsupported() -> None:
    plain = supported_measurands(has_bms=False)
    assert {"SoC", "Temperature"}.isdisjoint(plain)
    assert "SoC" in supported_measurands(has_bms=True)
    never = {
        "Current.Export",
        "Energy.Active.Export.Register",
        "Energy.Active.Export.Interval",
        "Energy.Reactive.Export.Register",
        "Energy.Reactive.Import.Register",
        "Energy.Reactive.Export.Interval",
        "Energy.Reactive.Import.Interval",
        "Power.Active.Export",
        "Power.Reactive.Export",
        "Power.Reactive.Import",
        "RPM",
    }
    assert never.isdisjoint(supported_measurands(has_bms=True, has_temperature=True))
    assert ALL_16 - never - {"SoC", "Temperature"} == plain


@pytest.mark.parametrize(
    "key",
    [
        "MeterValuesSampledData",
        "MeterValuesAlignedData",
        "StopTxnSampledData",
        "StopTxnAlignedData",
    ],
)
def test_every_measurand_list_takes_the_new_measurands(tmp_path: Path, key: str) -> None:
    db = Database(tmp_path / "state.db")
    facts = StationFacts(1, supported_measurands(has_bms=False))
    config = ConfigurationStore(db, {}, facts)
    value = "Power.Offered,Energy.Active.Import.Interval,Power.Factor"
    assert config.change(key, value) == "Accepted"
    assert config.get_csl(key) == value.split(",")
    assert config.change(key, "Power.Offered,RPM") == "Rejected"
    db.close()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("Temperature", "'Temperature' is not supported: this station has no source for it"),
        ("Power.Reactive.Import", "'Power.Reactive.Import' is not supported: this station has"),
        ("Power.Offerd", "'Power.Offerd' is not supported: not an OCPP 1.6 measurand"),
    ],
)
def test_a_refused_measurand_says_why(tmp_path: Path, value: str, why: str) -> None:
    db = Database(tmp_path / "state.db")
    facts = StationFacts(1, supported_measurands(has_bms=False))
    with pytest.raises(ConfigError) as caught:
        ConfigurationStore(db, {"MeterValuesSampledData": value}, facts)
    assert str(caught.value).startswith(f"ocpp.config.MeterValuesSampledData: measurand {why}")
    db.close()
