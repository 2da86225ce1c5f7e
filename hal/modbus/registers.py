"""Meter register maps: load and validate them, plan the reads, decode and encode values.

A map is a YAML file: a built-in one by name (``sdm630`` is
``config/meters/sdm630.yaml``) or any file by path::

    model: Eastron SDM630          # free text, for messages
    function: input                # input (function 04) or holding (function 03)
    phases: 3                      # 1..3: per-phase quantities beyond are not allowed
    word_order: big                # big: high word first (default); little: low word first
    max_registers: 80              # most registers per request (default 80, at most 125)
    max_gap: 10                    # optional: most unused registers one request may span
    registers:
      energy_import: {address: 0x0048, type: float32, unit: kWh}
      power_total: {address: 0x5B14, type: int32, scale: 0.01, unit: W, invalid: [0x7FFFFFFF]}

A register's value is ``raw x scale`` in ``unit``; the unit is converted to the
``MeterReading`` units (``kWh`` x 1000 = ``Wh``). Quantities: ``energy_import``
(required), ``voltage_l1..3``, ``current_l1..3``, ``power_l1..3``,
``power_total`` (or every ``power_lN`` of the meter's phases) and
``frequency``. Types: ``uint16``, ``int16``, ``uint32``, ``int32``,
``uint64``, ``int64``, ``float32``, ``float64``. A value whose registers are
all ``0xFFFF`` (all ones), a float that is not finite, or an integer listed
in ``invalid`` is unavailable.

Conversion between registers and numbers is pymodbus's own
(``convert_from_registers`` / ``convert_to_registers``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NoReturn, cast

import yaml
from pymodbus.client.mixin import ModbusClientMixin

from hal import resources
from hal.errors import HalConfigError, MeterError
from hal.interfaces import MeterReading

Function = Literal["input", "holding"]
WordOrder = Literal["big", "little"]
DataType = ModbusClientMixin.DATATYPE

FUNCTION_CODES: Final[Mapping[str, int]] = {"holding": 3, "input": 4}
MODBUS_MAX_REGISTERS: Final = 125  # protocol limit of one read (function 03 / 04)
DEFAULT_MAX_REGISTERS: Final = 80
ALL_ONES: Final = 0xFFFF
PHASES: Final = 3

DATA_TYPES: Final[Mapping[str, DataType]] = {
    "uint16": DataType.UINT16,
    "int16": DataType.INT16,
    "uint32": DataType.UINT32,
    "int32": DataType.INT32,
    "uint64": DataType.UINT64,
    "int64": DataType.INT64,
    "float32": DataType.FLOAT32,
    "float64": DataType.FLOAT64,
}

# quantity -> dimension; per-phase quantities end in _l1.._l3
QUANTITIES: Final[Mapping[str, str]] = {
    "energy_import": "energy",
    **{f"voltage_l{n}": "voltage" for n in range(1, PHASES + 1)},
    **{f"current_l{n}": "current" for n in range(1, PHASES + 1)},
    **{f"power_l{n}": "power" for n in range(1, PHASES + 1)},
    "power_total": "power",
    "frequency": "frequency",
}

# dimension -> unit -> factor to the MeterReading unit (Wh, W, V, A, Hz)
UNITS: Final[Mapping[str, Mapping[str, float]]] = {
    "energy": {"Wh": 1.0, "kWh": 1000.0, "MWh": 1_000_000.0},
    "power": {"W": 1.0, "kW": 1000.0},
    "voltage": {"V": 1.0},
    "current": {"A": 1.0, "mA": 0.001},
    "frequency": {"Hz": 1.0},
}

_TOP_KEYS: Final = frozenset(
    {"model", "function", "phases", "word_order", "max_registers", "max_gap", "registers"}
)
_REGISTER_KEYS: Final = frozenset({"address", "type", "scale", "unit", "word_order", "invalid"})
_FLOAT32_MAX: Final = 3.4028234663852886e38


def phase_of(quantity: str) -> int | None:
    """1..3 for a per-phase quantity (``current_l2`` -> 2), None otherwise."""
    head, _, tail = quantity.rpartition("_l")
    return int(tail) if head and tail.isdigit() else None


@dataclass(frozen=True, slots=True)
class Register:
    """One quantity of a map: where it is and how to turn its registers into a number."""

    quantity: str
    address: int
    data_type: str
    unit: str
    scale: float = 1.0
    word_order: WordOrder = "big"
    invalid: frozenset[int] = frozenset()

    @property
    def count(self) -> int:
        """Number of 16-bit registers the value takes."""
        return int(DATA_TYPES[self.data_type].value[1])

    @property
    def end(self) -> int:
        """First address after the value."""
        return self.address + self.count

    @property
    def factor(self) -> float:
        """Raw value x factor = value in the ``MeterReading`` unit."""
        return self.scale * UNITS[QUANTITIES[self.quantity]][self.unit]

    @property
    def is_float(self) -> bool:
        return self.data_type.startswith("float")

    def _int_range(self) -> tuple[int, int]:
        bits = 16 * self.count
        if self.data_type.startswith("int"):
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

    def decode(self, registers: Sequence[int]) -> float | None:
        """The value in ``MeterReading`` units, None when the meter marks it unavailable."""
        if len(registers) != self.count:
            raise ValueError(
                f"{self.quantity}: {self.count} register(s) expected, got {len(registers)}"
            )
        if all(word == ALL_ONES for word in registers):
            return None
        raw = ModbusClientMixin.convert_from_registers(
            list(registers), DATA_TYPES[self.data_type], word_order=self.word_order
        )
        if isinstance(raw, float):
            return raw * self.factor if math.isfinite(raw) else None
        if isinstance(raw, int):
            return None if raw in self.invalid else raw * self.factor
        raise TypeError(f"{self.quantity}: unexpected conversion result {raw!r}")

    def encode(self, value: float) -> list[int]:
        """Registers holding ``value`` (``MeterReading`` units); NaN/inf encode unavailable."""
        if not math.isfinite(value):
            return [ALL_ONES] * self.count
        raw = value / self.factor
        if self.is_float:
            if self.data_type == "float32":
                raw = min(max(raw, -_FLOAT32_MAX), _FLOAT32_MAX)
            return ModbusClientMixin.convert_to_registers(
                float(raw), DATA_TYPES[self.data_type], word_order=self.word_order
            )
        low, high = self._int_range()
        number = min(max(round(raw), low), high)
        all_ones = -1 if low < 0 else high
        while number == all_ones or number in self.invalid:
            number = 0 if number == -1 else number - 1
        return ModbusClientMixin.convert_to_registers(
            number, DATA_TYPES[self.data_type], word_order=self.word_order
        )


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers from ``address``."""

    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count

    def __str__(self) -> str:
        return f"registers 0x{self.address:04X}..0x{self.end - 1:04X}"


def plan_blocks(
    spans: Iterable[tuple[int, int]],
    max_registers: int = DEFAULT_MAX_REGISTERS,
    max_gap: int | None = None,
) -> tuple[Block, ...]:
    """Cover ``(address, count)`` spans with as few contiguous blocks as possible.

    A block holds at most ``max_registers`` registers and, when ``max_gap`` is
    given, never spans more than ``max_gap`` unused registers between two
    values. A value is never split between blocks.
    """
    blocks: list[Block] = []
    start = end = -1
    for address, count in sorted(spans):
        if count > max_registers:
            raise ValueError(f"a value of {count} registers does not fit {max_registers}")
        fits = start >= 0 and address + count - start <= max_registers
        if fits and (max_gap is None or address - end <= max_gap):
            end = max(end, address + count)
            continue
        if start >= 0:
            blocks.append(Block(start, end - start))
        start, end = address, address + count
    if start >= 0:
        blocks.append(Block(start, end - start))
    return tuple(blocks)


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A validated meter map and its read plan."""

    name: str
    source: str
    model: str
    function: Function
    phases: int
    registers: Mapping[str, Register]  # quantity -> register, by address
    blocks: tuple[Block, ...]

    @property
    def function_code(self) -> int:
        """Modbus function that reads the map: 3 (holding) or 4 (input)."""
        return FUNCTION_CODES[self.function]

    def decode(
        self, values: Mapping[int, int], *, last_energy_wh: float | None = None
    ) -> MeterReading:
        """Turn register values (address -> word) into a reading.

        Unavailable values: the energy keeps ``last_energy_wh`` (``MeterError``
        when there is none), voltages, currents and power read 0, frequency
        None. Phases the meter does not have read 0.
        """

        def get(quantity: str) -> float | None:
            register = self.registers.get(quantity)
            if register is None:
                return None
            words: list[int] = []
            for address in range(register.address, register.end):
                if address not in values:
                    raise MeterError(
                        f"meter map {self.name}: register 0x{address:04X} ({quantity}) not read"
                    )
                words.append(values[address])
            return register.decode(words)

        def phases(prefix: str) -> tuple[float, float, float]:
            l1, l2, l3 = (get(f"{prefix}_l{n}") or 0.0 for n in range(1, PHASES + 1))
            return l1, l2, l3

        energy_wh = get("energy_import")
        if energy_wh is None:
            if last_energy_wh is None:
                raise MeterError(
                    f"meter map {self.name}: energy register unavailable and no earlier value"
                )
            energy_wh = last_energy_wh
        power_w = get("power_total")
        if power_w is None:
            power_w = sum(phases("power"))
        return MeterReading(
            energy_wh=energy_wh,
            power_w=power_w,
            current_a=phases("current"),
            voltage_v=phases("voltage"),
            frequency_hz=get("frequency"),
        )

    def encode(self, reading: MeterReading) -> dict[int, int]:
        """Register values (address -> word) a meter measuring ``reading`` would hold.

        Per-phase power is voltage x current of the phase; NaN encodes as unavailable.
        """
        quantities: dict[str, float] = {
            "energy_import": reading.energy_wh,
            "power_total": reading.power_w,
            "frequency": math.nan if reading.frequency_hz is None else reading.frequency_hz,
        }
        for n in range(1, PHASES + 1):
            volts, amps = reading.voltage_v[n - 1], reading.current_a[n - 1]
            quantities[f"voltage_l{n}"] = volts
            quantities[f"current_l{n}"] = amps
            quantities[f"power_l{n}"] = math.nan if math.isnan(reading.power_w) else volts * amps
        image: dict[int, int] = {}
        for quantity, register in self.registers.items():
            for offset, word in enumerate(register.encode(quantities[quantity])):
                image[register.address + offset] = word
        return image


# ---------------------------------------------------------------- loading


def load_map(name: str) -> RegisterMap:
    """Load a built-in map by name (``sdm630``) or a map file by path; validate it."""
    path = resources.find("meters", name, ".yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise HalConfigError(f"meter map {path}: cannot be read: {err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise HalConfigError(f"meter map {path}: not valid YAML: {err}") from err
    return parse_map(data, source=str(path), name=path.stem)


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> NoReturn:
        raise HalConfigError(f"meter map {self.source}: {key or 'top level'}: {problem}")

    def integer(self, key: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"must be a whole number {low}..{high}, got {value!r}")
        return value

    def choice(self, key: str, value: object, choices: Iterable[str]) -> str:
        options = sorted(choices)
        if not isinstance(value, str) or value not in options:
            self.fail(key, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def mapping(self, key: str, value: object, known: Iterable[str]) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a mapping, got {value!r}")
        allowed = sorted(known)
        for child in value:
            if child not in allowed:
                where = f"{key}.{child}" if key else str(child)
                self.fail(where, f"unknown key (known: {', '.join(allowed)})")
        return cast(Mapping[str, object], value)


def _word_order(check: _Checker, key: str, value: object) -> WordOrder:
    return cast(WordOrder, check.choice(key, value, ("big", "little")))


def _register(
    check: _Checker, quantity: str, value: object, phases: int, word_order: WordOrder
) -> Register:
    key = f"registers.{quantity}"
    if quantity not in QUANTITIES:
        check.fail(key, f"unknown quantity (known: {', '.join(QUANTITIES)})")
    phase = phase_of(quantity)
    if phase is not None and phase > phases:
        check.fail(key, f"the meter has {phases} phase(s), so no L{phase} values")
    spec = check.mapping(key, value, _REGISTER_KEYS)
    for required in ("address", "type", "unit"):
        if required not in spec:
            check.fail(f"{key}.{required}", "missing")
    data_type = check.choice(f"{key}.type", spec["type"], DATA_TYPES)
    width = int(DATA_TYPES[data_type].value[1])
    address = check.integer(f"{key}.address", spec["address"], 0, 0x10000 - width)
    dimension = QUANTITIES[quantity]
    unit = check.choice(f"{key}.unit", spec["unit"], UNITS[dimension])
    scale = spec.get("scale", 1.0)
    if (
        isinstance(scale, bool)
        or not isinstance(scale, int | float)
        or not math.isfinite(scale)
        or scale == 0
    ):
        check.fail(f"{key}.scale", f"must be a finite non-zero number, got {scale!r}")
    order = _word_order(check, f"{key}.word_order", spec.get("word_order", word_order))
    invalid_spec = spec.get("invalid", [])
    invalid_list = invalid_spec if isinstance(invalid_spec, list) else [invalid_spec]
    invalid: set[int] = set()
    if invalid_list and data_type.startswith("float"):
        check.fail(f"{key}.invalid", "only for integer types (floats use NaN)")
    bits = 16 * width
    low = -(1 << (bits - 1)) if data_type.startswith("int") else 0
    high = (1 << bits) - 1
    for item in invalid_list:
        invalid.add(check.integer(f"{key}.invalid", item, low, high))
    return Register(
        quantity=quantity,
        address=address,
        data_type=data_type,
        unit=unit,
        scale=float(scale),
        word_order=order,
        invalid=frozenset(invalid),
    )


def parse_map(data: object, *, source: str, name: str) -> RegisterMap:
    """Validate a map already parsed from YAML; ``HalConfigError`` names the file and key."""
    check = _Checker(source)
    top = check.mapping("", data, _TOP_KEYS)
    for required in ("function", "phases", "registers"):
        if required not in top:
            check.fail(required, "missing")
    function = cast(Function, check.choice("function", top["function"], FUNCTION_CODES))
    phases = check.integer("phases", top["phases"], 1, PHASES)
    word_order = _word_order(check, "word_order", top.get("word_order", "big"))
    max_registers = check.integer(
        "max_registers", top.get("max_registers", DEFAULT_MAX_REGISTERS), 4, MODBUS_MAX_REGISTERS
    )
    max_gap_spec = top.get("max_gap")
    max_gap = None if max_gap_spec is None else check.integer("max_gap", max_gap_spec, 0, 0xFFFF)
    model = top.get("model", name)
    if not isinstance(model, str):
        check.fail("model", f"must be text, got {model!r}")
    specs = check.mapping("registers", top["registers"], QUANTITIES)
    registers = sorted(
        (_register(check, str(q), spec, phases, word_order) for q, spec in specs.items()),
        key=lambda register: register.address,
    )
    for before, after in itertools.pairwise(registers):
        if after.address < before.end:
            check.fail(f"registers.{after.quantity}", f"overlaps {before.quantity}")
    by_quantity = {register.quantity: register for register in registers}
    if "energy_import" not in by_quantity:
        check.fail("registers.energy_import", "missing")
    per_phase = [f"power_l{n}" for n in range(1, phases + 1)]
    if "power_total" not in by_quantity and not all(q in by_quantity for q in per_phase):
        check.fail("registers.power_total", f"missing (give it or all of {', '.join(per_phase)})")
    blocks = plan_blocks(((r.address, r.count) for r in registers), max_registers, max_gap)
    return RegisterMap(
        name=name,
        source=source,
        model=model,
        function=function,
        phases=phases,
        registers=by_quantity,
        blocks=blocks,
    )
