"""Meter values: which measurands the hardware gives and how they are reported.

Pure functions: a meter reading plus context in, OCPP ``MeterValue`` dicts out.
The connector controller decides when to sample (MeterValueSampleInterval,
ClockAlignedDataInterval) and where the result goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from firmware.clock import iso
from hal.interfaces import MeterReading

ENERGY = "Energy.Active.Import.Register"
ENERGY_INTERVAL = "Energy.Active.Import.Interval"

# Measurands every station knows: from every meter reading (energy register,
# total power, current and voltage per phase, frequency), from the offer it
# makes (Current.Offered; Power.Offered = offered current x nominal voltage x
# phases), and worked out from readings: Power.Factor = P / sum(V x I) of the
# phases, and the energy of an interval (Energy.Active.Import.Interval) as the
# difference of two register readings (see ``Sample.interval_wh``).
# SoC and Temperature depend on the board. Export, reactive and RPM
# measurands have no source on any supported meter or board.
BASE_MEASURANDS = frozenset(
    {
        ENERGY,
        ENERGY_INTERVAL,
        "Power.Active.Import",
        "Power.Factor",
        "Power.Offered",
        "Current.Import",
        "Voltage",
        "Current.Offered",
        "Frequency",
    }
)
# Below this apparent power the power factor is noise: it is left out.
MIN_APPARENT_POWER_VA = 50.0


def supported_measurands(*, has_bms: bool, has_temperature: bool = False) -> frozenset[str]:
    extra = set()
    if has_bms:
        extra.add("SoC")
    if has_temperature:
        extra.add("Temperature")
    return BASE_MEASURANDS | extra


@dataclass(frozen=True, slots=True)
class Sample:
    """What one connector measures at one moment.

    ``interval_wh`` is the energy imported since the previous sample of the
    same series (the connector's clock-aligned samples; a transaction's
    periodic samples, from its start); None where no interval ended (a
    transaction's first instant, the first clock-aligned sample after a start,
    a Trigger) or the register went backwards (a meter replaced).
    """

    reading: MeterReading
    offered_current_a: float
    soc_percent: float | None
    phases: int
    nominal_voltage_v: float = 230.0
    interval_wh: float | None = None

    @property
    def offered_power_w(self) -> float:
        return self.offered_current_a * self.nominal_voltage_v * _phase_count(self.phases)

    @property
    def power_factor(self) -> float | None:
        r = self.reading
        apparent = sum(r.voltage_v[i] * r.current_a[i] for i in range(_phase_count(self.phases)))
        if apparent < MIN_APPARENT_POWER_VA:
            return None
        return max(-1.0, min(1.0, r.power_w / apparent))


def _phase_count(phases: int) -> int:
    return max(1, min(3, phases))


def _value(
    value: float,
    measurand: str,
    context: str,
    unit: str | None,
    *,
    decimals: int = 1,
    phase: str | None = None,
    location: str = "Outlet",
) -> dict[str, Any]:
    sampled: dict[str, Any] = {
        "value": f"{value:.{decimals}f}",
        "context": context,
        "format": "Raw",
        "measurand": measurand,
        "location": location,
    }
    if phase is not None:
        sampled["phase"] = phase
    if unit is not None:
        sampled["unit"] = unit
    return sampled


def sampled_values(sample: Sample, measurands: list[str], context: str) -> list[dict[str, Any]]:
    """SampledValue entries for ``measurands`` (those the sample cannot give are skipped)."""
    r = sample.reading
    phases = range(_phase_count(sample.phases))
    out: list[dict[str, Any]] = []
    for measurand in measurands:
        if measurand == ENERGY:
            out.append(_value(r.energy_wh, measurand, context, "Wh", decimals=0))
        elif measurand == "Power.Active.Import":
            out.append(_value(r.power_w, measurand, context, "W"))
        elif measurand == "Current.Import":
            out.extend(
                _value(r.current_a[i], measurand, context, "A", phase=f"L{i + 1}") for i in phases
            )
        elif measurand == "Voltage":
            out.extend(
                _value(r.voltage_v[i], measurand, context, "V", phase=f"L{i + 1}-N") for i in phases
            )
        elif measurand == ENERGY_INTERVAL and sample.interval_wh is not None:
            out.append(_value(sample.interval_wh, measurand, context, "Wh"))
        elif measurand == "Power.Factor" and (factor := sample.power_factor) is not None:
            out.append(_value(factor, measurand, context, None, decimals=3))
        elif measurand == "Current.Offered":
            out.append(_value(sample.offered_current_a, measurand, context, "A"))
        elif measurand == "Power.Offered":
            out.append(_value(sample.offered_power_w, measurand, context, "W"))
        elif measurand == "Frequency" and r.frequency_hz is not None:
            out.append(_value(r.frequency_hz, measurand, context, None, decimals=2))
        elif measurand == "SoC" and sample.soc_percent is not None:
            out.append(
                _value(sample.soc_percent, measurand, context, "Percent", decimals=0, location="EV")
            )
        elif measurand == "Temperature" and r.temperature_c is not None:
            out.append(_value(r.temperature_c, measurand, context, "Celsius", location="Body"))
    return out


def meter_value(at: datetime, values: list[dict[str, Any]]) -> dict[str, Any]:
    return {"timestamp": iso(at), "sampledValue": values}


def next_aligned(now: datetime, interval_s: int) -> datetime:
    """The next clock-aligned instant: intervals are counted from midnight UTC."""
    if interval_s <= 0:
        raise ValueError("interval must be positive")
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (now - midnight).total_seconds()
    steps = int(elapsed // interval_s) + 1
    candidate = midnight + timedelta(seconds=steps * interval_s)
    next_midnight = midnight + timedelta(days=1)
    return min(candidate, next_midnight)
