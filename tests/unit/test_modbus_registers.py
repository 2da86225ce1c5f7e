"""Meter register maps: loading, validation, read planning, decoding and encoding."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from hal.errors import HalConfigError, MeterError
from hal.interfaces import MeterReading
from hal.modbus.registers import Block, RegisterMap, load_map, plan_blocks

NAN32 = [0x7FC0, 0x0000]


def approx(value: Any) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


def words(pairs: dict[int, int], width: int = 2) -> dict[int, int]:
    """``{address: value}`` of ``width``-register big-endian values -> ``{address: word}``."""
    out: dict[int, int] = {}
    for address, value in pairs.items():
        for i in range(width):
            out[address + i] = (value >> (16 * (width - 1 - i))) & 0xFFFF
    return out


def fill(meter_map: RegisterMap, values: dict[int, int]) -> dict[int, int]:
    """Every address of the map's blocks, zero where ``values`` has nothing."""
    out = {a: 0 for block in meter_map.blocks for a in range(block.address, block.end)}
    out.update(values)
    return out


def write_map(tmp_path: Path, text: str, name: str = "custom.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


MINIMAL = """\
function: input
phases: 1
registers:
  energy_import: {address: 0x48, type: float32, unit: kWh}
  power_l1: {address: 0x0C, type: float32, unit: W}
"""


# ---------------------------------------------------------------- loading and planning


def test_builtin_maps_load_with_their_functions_phases_and_blocks() -> None:
    sdm630 = load_map("sdm630")
    assert (sdm630.function, sdm630.function_code, sdm630.phases) == ("input", 4, 3)
    assert sdm630.blocks == (Block(0x0000, 0x4A),)
    sdm120 = load_map("sdm120")
    assert (sdm120.function, sdm120.phases) == ("input", 1)
    assert "voltage_l2" not in sdm120.registers
    abb = load_map("abb_b23")
    assert (abb.function, abb.function_code, abb.phases) == ("holding", 3, 3)
    assert abb.blocks == (Block(0x5000, 4), Block(0x5B00, 0x2D))
    assert abb.registers["energy_import"].factor == approx(10.0)  # 0.01 kWh -> Wh
    assert sdm630.registers["energy_import"].factor == approx(1000.0)  # kWh -> Wh


@pytest.mark.parametrize("name", ["sdm630", "sdm120", "abb_b23"])
def test_every_register_of_a_builtin_map_lies_in_one_block_of_at_most_80(name: str) -> None:
    meter_map = load_map(name)
    assert all(block.count <= 80 for block in meter_map.blocks)
    for register in meter_map.registers.values():
        assert any(
            b.address <= register.address and register.end <= b.end for b in meter_map.blocks
        )


def test_a_map_is_found_by_path(tmp_path: Path) -> None:
    meter_map = load_map(write_map(tmp_path, MINIMAL))
    assert meter_map.name == "custom"
    assert meter_map.blocks == (Block(0x0C, 0x48 + 2 - 0x0C),)


def test_unknown_map_name_is_a_config_error() -> None:
    with pytest.raises(HalConfigError, match="sdm630"):
        load_map("no_such_meter")


def test_planning_splits_at_the_register_limit_and_never_splits_a_value() -> None:
    spans = [(0, 2), (10, 2), (78, 4), (100, 1), (300, 4), (302, 2)]
    assert plan_blocks(spans, max_registers=80) == (
        Block(0, 12),
        Block(78, 23),
        Block(300, 4),
    )
    assert plan_blocks(spans, max_registers=80, max_gap=10) == (
        Block(0, 12),
        Block(78, 4),
        Block(100, 1),
        Block(300, 4),
    )
    assert plan_blocks([]) == ()
    assert plan_blocks([(0, 2)] * 3) == (Block(0, 2),)


def test_planning_covers_many_values_with_full_blocks() -> None:
    spans = [(address, 2) for address in range(0, 400, 2)]
    blocks = plan_blocks(spans, max_registers=80)
    assert [b.count for b in blocks] == [80] * 5
    assert blocks[1].address == 80


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("function: input\n", "phases"),
        ("- 1\n- 2\n", "top level"),
        (MINIMAL.replace("function: input", "function: coils"), "function"),
        (MINIMAL.replace("phases: 1", "phases: 4"), "phases"),
        (MINIMAL + "colour: red\n", "colour"),
        (MINIMAL + "max_registers: 200\n", "max_registers"),
        (MINIMAL + "word_order: middle\n", "word_order"),
        (MINIMAL + "  energy_export: {address: 0x4A, type: float32, unit: kWh}\n", "energy_export"),
        (MINIMAL + "  voltage_l2: {address: 0x02, type: float32, unit: V}\n", "voltage_l2"),
        (MINIMAL + "  frequency: {address: 0x46, type: float16, unit: Hz}\n", "frequency.type"),
        (MINIMAL + "  frequency: {address: 0x46, type: float32, unit: kV}\n", "frequency.unit"),
        (MINIMAL + "  frequency: {type: float32, unit: Hz}\n", "frequency.address"),
        (MINIMAL + "  frequency: {address: '70', type: float32, unit: Hz}\n", "frequency.address"),
        (MINIMAL + "  frequency: {address: 0x46, type: float32, unit: Hz, scale: 0}\n", "scale"),
        (MINIMAL + "  frequency: {address: 0x46, type: float32, unit: Hz, gain: 2}\n", "gain"),
        (
            MINIMAL + "  frequency: {address: 0x46, type: float32, unit: Hz, invalid: 1}\n",
            "invalid",
        ),
        (
            MINIMAL + "  frequency: {address: 0x46, type: uint16, unit: Hz, invalid: -1}\n",
            "invalid",
        ),
        (MINIMAL + "  frequency: {address: 0x49, type: float32, unit: Hz}\n", "overlaps"),
        (
            MINIMAL.replace("  energy_import: {address: 0x48, type: float32, unit: kWh}\n", ""),
            "energy_import",
        ),
        (
            MINIMAL.replace("  power_l1: {address: 0x0C, type: float32, unit: W}\n", ""),
            "power_total",
        ),
    ],
)
def test_a_bad_map_is_a_config_error_naming_file_and_key(
    tmp_path: Path, text: str, key: str
) -> None:
    path = write_map(tmp_path, text)
    with pytest.raises(HalConfigError) as err:
        load_map(path)
    assert path in str(err.value)
    assert key in str(err.value)


def test_a_map_that_is_not_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = write_map(tmp_path, "function: [input\n")
    with pytest.raises(HalConfigError, match="YAML"):
        load_map(path)


# ---------------------------------------------------------------- decoding vectors


def test_sdm630_float32_vector() -> None:
    sdm630 = load_map("sdm630")
    values = words(
        {
            0x00: 0x43660000,  # 230.0 V
            0x02: 0x43678000,  # 231.5 V
            0x04: 0x43654000,  # 229.25 V
            0x06: 0x41800000,  # 16.0 A
            0x08: 0x41780000,  # 15.5 A
            0x0A: 0x3E800000,  # 0.25 A
            0x0C: 0x45660000,  # 3680.0 W
            0x34: 0x45E4EC80,  # 7325.5625 W total
            0x46: 0x4247EB85,  # 49.98 Hz
            0x48: 0x449A5000,  # 1234.5 kWh
        }
    )
    reading = sdm630.decode(fill(sdm630, values))
    assert reading.energy_wh == approx(1_234_500.0)
    assert reading.voltage_v == approx((230.0, 231.5, 229.25))
    assert reading.current_a == approx((16.0, 15.5, 0.25))
    assert reading.power_w == approx(7325.5625)
    assert reading.frequency_hz == pytest.approx(49.98, abs=1e-5)


def test_sdm120_single_phase_vector_has_zeros_for_missing_phases() -> None:
    sdm120 = load_map("sdm120")
    values = words({0x00: 0x43660000, 0x06: 0x41800000, 0x0C: 0x45660000, 0x48: 0x449A5000})
    reading = sdm120.decode(fill(sdm120, values))
    assert reading.voltage_v == approx((230.0, 0.0, 0.0))
    assert reading.current_a == approx((16.0, 0.0, 0.0))
    assert reading.power_w == approx(3680.0)  # no total register: the sum of the phases
    assert reading.energy_wh == approx(1_234_500.0)


def test_abb_b23_scaled_integer_vector() -> None:
    abb = load_map("abb_b23")
    values = {
        **words({0x5000: 123456}, width=4),  # 1234.56 kWh
        **words({0x5B00: 2301, 0x5B02: 2300, 0x5B04: 2299}),  # 0.1 V
        **words({0x5B0C: 1600, 0x5B0E: 1550, 0x5B10: 25}),  # 0.01 A
        **words({0x5B14: 0xFFFFFB2E}),  # -12.34 W (signed)
        0x5B2C: 5000,  # 50.00 Hz (uint16)
    }
    reading = abb.decode(fill(abb, values))
    assert reading.energy_wh == approx(1_234_560.0)
    assert reading.voltage_v == approx((230.1, 230.0, 229.9))
    assert reading.current_a == approx((16.0, 15.5, 0.25))
    assert reading.power_w == approx(-12.34)
    assert reading.frequency_hz == approx(50.0)


def test_abb_all_ones_means_unavailable() -> None:
    abb = load_map("abb_b23")
    values = {
        **words({0x5000: 0xFFFF_FFFF_FFFF_FFFF}, width=4),
        **words({0x5B00: 0xFFFFFFFF, 0x5B02: 2300, 0x5B0C: 0xFFFFFFFF, 0x5B0E: 1000}),
        **words({0x5B14: 0xFFFFFFFF, 0x5B16: 0x7FFFFFFF, 0x5B18: 1000, 0x5B1A: 2000}),
        0x5B2C: 0xFFFF,
    }
    reading = abb.decode(fill(abb, values), last_energy_wh=5000.0)
    assert reading.energy_wh == 5000.0  # the last good value
    assert reading.voltage_v == approx((0.0, 230.0, 0.0))
    assert reading.current_a == approx((0.0, 10.0, 0.0))
    assert reading.power_w == approx(30.0)  # total unavailable: the phases, L1 invalid -> 0
    assert reading.frequency_hz is None
    with pytest.raises(MeterError, match="energy"):
        abb.decode(fill(abb, values))


def test_sdm_nan_means_unavailable() -> None:
    sdm630 = load_map("sdm630")
    values = fill(sdm630, {})
    for address in (0x00, 0x06, 0x34, 0x46, 0x48):
        values[address], values[address + 1] = NAN32
    reading = sdm630.decode(values, last_energy_wh=42.0)
    assert reading.energy_wh == 42.0
    assert reading.voltage_v[0] == 0.0 and reading.current_a[0] == 0.0
    assert reading.power_w == 0.0
    assert reading.frequency_hz is None


def test_little_word_order(tmp_path: Path) -> None:
    meter_map = load_map(
        write_map(
            tmp_path,
            """\
function: holding
phases: 1
word_order: little
registers:
  energy_import: {address: 0, type: uint32, scale: 1, unit: Wh}
  power_total: {address: 2, type: int32, scale: 0.1, unit: kW, word_order: big}
""",
        )
    )
    reading = meter_map.decode({0: 0x5678, 1: 0x1234, 2: 0x0000, 3: 0x0010})
    assert reading.energy_wh == 0x12345678
    assert reading.power_w == approx(1600.0)  # 16 x 0.1 kW


def test_a_missing_register_is_a_meter_error() -> None:
    with pytest.raises(MeterError, match="0x0048"):
        load_map("sdm630").decode({})


# ---------------------------------------------------------------- encoding (the emulator's side)

READING = MeterReading(
    energy_wh=1_234_567.0,
    power_w=11_040.0,
    current_a=(16.0, 16.0, 16.0),
    voltage_v=(230.0, 230.0, 230.0),
    frequency_hz=50.0,
)


@pytest.mark.parametrize(("name", "wh"), [("sdm630", 0.1), ("abb_b23", 10.0)])
def test_encode_then_decode_round_trips(name: str, wh: float) -> None:
    meter_map = load_map(name)
    image = meter_map.encode(READING)
    assert set(image) <= {a for b in meter_map.blocks for a in range(b.address, b.end)}
    reading = meter_map.decode(fill(meter_map, image))
    assert reading.energy_wh == pytest.approx(READING.energy_wh, abs=wh)
    assert reading.power_w == pytest.approx(READING.power_w, abs=0.01)
    assert reading.current_a == pytest.approx(READING.current_a, abs=0.01)
    assert reading.voltage_v == pytest.approx(READING.voltage_v, abs=0.1)
    assert reading.frequency_hz == pytest.approx(50.0, abs=0.01)


def test_encode_single_phase_keeps_only_l1() -> None:
    sdm120 = load_map("sdm120")
    one_phase = MeterReading(100.0, 3680.0, (16.0, 0.0, 0.0), (230.0, 0.0, 0.0), 50.0)
    reading = sdm120.decode(fill(sdm120, sdm120.encode(one_phase)))
    assert reading.power_w == approx(3680.0)
    assert reading.current_a == approx((16.0, 0.0, 0.0))


def test_encode_nan_marks_unavailable_and_integers_never_collide_with_it() -> None:
    abb = load_map("abb_b23")
    unavailable = MeterReading(math.nan, math.nan, (math.nan,) * 3, (math.nan,) * 3, None)
    image = abb.encode(unavailable)
    assert set(image.values()) == {0xFFFF}
    huge = MeterReading(1e30, -0.001, (1e12, 0.0, 0.0), (-5.0, 0.0, 0.0), 50.0)
    reading = abb.decode(fill(abb, abb.encode(huge)))
    assert reading.energy_wh == approx((2**64 - 2) * 10.0)  # clamped below all ones
    assert reading.power_w == 0.0  # -0.1 raw rounds to 0, never to -1 (all ones)
    assert reading.current_a[0] == approx((2**32 - 2) * 0.01)
    assert reading.voltage_v[0] == 0.0
