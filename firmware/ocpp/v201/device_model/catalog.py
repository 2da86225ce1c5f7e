"""The variables a station has: their attributes, mutability, persistence and characteristics.

A ``VariableSpec`` is one variable of one component, fixed for as long as the
station runs: its characteristics (data type, unit, limits, values list) and,
per attribute (Actual, Target, MinSet, MaxSet), the mutability, whether the
value survives a restart (``persistent``), whether the station ever changes it
(``constant``) and its built-in value. A ``Catalog`` holds every spec of the
station and finds one by name, without regard to case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ocpp.v201.enums import AttributeEnumType, DataEnumType, MutabilityEnumType

from firmware.ocpp.v201.device_model.addressing import Component, Variable

ACTUAL = AttributeEnumType.actual
TARGET = AttributeEnumType.target
MIN_SET = AttributeEnumType.min_set
MAX_SET = AttributeEnumType.max_set
ATTRIBUTE_ORDER = (ACTUAL, TARGET, MIN_SET, MAX_SET)

RO = MutabilityEnumType.read_only
RW = MutabilityEnumType.read_write
WO = MutabilityEnumType.write_only

# The data types OCPP 2.0.1 knows (the enum of the ``ocpp`` package also has 2.1's).
DATA_TYPES_201 = frozenset(
    {
        DataEnumType.string,
        DataEnumType.decimal,
        DataEnumType.integer,
        DataEnumType.date_time,
        DataEnumType.boolean,
        DataEnumType.option_list,
        DataEnumType.sequence_list,
        DataEnumType.member_list,
    }
)
LIST_TYPES = frozenset({DataEnumType.member_list, DataEnumType.sequence_list})
NUMBER_TYPES = frozenset({DataEnumType.integer, DataEnumType.decimal})

ComponentKey = tuple[str, str, int | None, int | None]
VariableKey = tuple[ComponentKey, tuple[str, str]]
# An extra rule of one variable beyond its characteristics; raises InvalidValue.
Check = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Characteristics:
    """``VariableCharacteristicsType``. For strings and lists ``max_limit`` is the
    longest value in characters, for numbers the largest value."""

    data_type: DataEnumType
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] = ()
    supports_monitoring: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dataType": self.data_type.value}
        if self.unit is not None:
            out["unit"] = self.unit
        if self.min_limit is not None:
            out["minLimit"] = _number(self.min_limit)
        if self.max_limit is not None:
            out["maxLimit"] = _number(self.max_limit)
        if self.values_list:
            out["valuesList"] = ",".join(self.values_list)
        out["supportsMonitoring"] = self.supports_monitoring
        return out


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """One attribute of a variable: who may change it and its built-in value."""

    mutability: MutabilityEnumType
    default: str
    persistent: bool
    constant: bool


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """One variable of one component."""

    component: Component
    variable: Variable
    characteristics: Characteristics
    attributes: Mapping[AttributeEnumType, AttributeSpec]
    # The CSMS's change takes effect after a restart: SetVariables answers RebootRequired.
    reboot_required: bool = False
    # A stored value below the file's (or the built-in one) is not used: SecurityProfile.
    only_raised: bool = False
    check: Check | None = field(default=None, compare=False)

    @property
    def key(self) -> VariableKey:
        return (self.component.key(), self.variable.key())

    @property
    def data_type(self) -> DataEnumType:
        return self.characteristics.data_type

    def attribute(self, kind: AttributeEnumType) -> AttributeSpec | None:
        return self.attributes.get(kind)

    @property
    def label(self) -> str:
        """``Component.Variable`` as the YAML file and the log name it."""
        return f"{self.component}.{self.variable}"


def define(
    component: Component,
    name: str,
    data_type: DataEnumType,
    default: str,
    *,
    instance: str | None = None,
    mutability: MutabilityEnumType = RW,
    unit: str | None = None,
    min_limit: float | None = None,
    max_limit: float | None = None,
    values: Iterable[str] = (),
    persistent: bool | None = None,
    constant: bool = False,
    reboot_required: bool = False,
    only_raised: bool = False,
    check: Check | None = None,
) -> VariableSpec:
    """A variable with an Actual attribute.

    ``persistent`` defaults to True for what the CSMS may write and for constant
    values, False for read-only values the station keeps up to date (a state)."""
    if persistent is None:
        persistent = mutability is not RO or constant
    return VariableSpec(
        component=component,
        variable=Variable(name, instance),
        characteristics=Characteristics(
            data_type=data_type,
            unit=unit,
            min_limit=min_limit,
            max_limit=max_limit,
            values_list=tuple(values),
        ),
        attributes=MappingProxyType(
            {ACTUAL: AttributeSpec(mutability, default, persistent=persistent, constant=constant)}
        ),
        reboot_required=reboot_required,
        only_raised=only_raised,
        check=check,
    )


def with_attribute(
    spec: VariableSpec,
    kind: AttributeEnumType,
    default: str,
    *,
    mutability: MutabilityEnumType = RO,
    persistent: bool = True,
    constant: bool = False,
) -> VariableSpec:
    """``spec`` with one more attribute (MinSet, MaxSet, Target)."""
    attributes = dict(spec.attributes)
    attributes[kind] = AttributeSpec(mutability, default, persistent=persistent, constant=constant)
    ordered = {k: attributes[k] for k in ATTRIBUTE_ORDER if k in attributes}
    return replace(spec, attributes=MappingProxyType(ordered))


def with_bounds(spec: VariableSpec, minimum: str, maximum: str) -> VariableSpec:
    """``spec`` with read-only MinSet and MaxSet: the range the CSMS may set Actual in.

    Only the configuration file sets them (the integrator's bounds)."""
    return with_attribute(with_attribute(spec, MIN_SET, minimum), MAX_SET, maximum)


class Catalog:
    """Every variable of the station, found by component and variable without regard to case."""

    def __init__(self, specs: Iterable[VariableSpec]) -> None:
        self._components: dict[ComponentKey, Component] = {}
        self._variables: dict[ComponentKey, dict[tuple[str, str], VariableSpec]] = {}
        for spec in specs:
            ckey = spec.component.key()
            variables = self._variables.setdefault(ckey, {})
            self._components.setdefault(ckey, spec.component)
            if spec.variable.key() in variables:
                raise ValueError(f"{spec.label} is defined twice")
            if spec.data_type not in DATA_TYPES_201:
                raise ValueError(f"{spec.label}: {spec.data_type} is not an OCPP 2.0.1 data type")
            if ACTUAL not in spec.attributes and not spec.attributes:
                raise ValueError(f"{spec.label} has no attribute")
            variables[spec.variable.key()] = spec

    def __iter__(self) -> Iterator[VariableSpec]:
        for variables in self._variables.values():
            yield from variables.values()

    def __len__(self) -> int:
        return sum(len(v) for v in self._variables.values())

    def components(self) -> list[Component]:
        """Every component, in the order of definition (canonical spelling)."""
        return list(self._components.values())

    def component(self, component: Component) -> Component | None:
        """The component as the catalog spells it, or None when the station has none such."""
        return self._components.get(component.key())

    def variables(self, component: Component) -> list[VariableSpec]:
        return list(self._variables.get(component.key(), {}).values())

    def find(self, component: Component, variable: Variable) -> VariableSpec | None:
        return self._variables.get(component.key(), {}).get(variable.key())

    def get(self, component: Component, variable: Variable) -> VariableSpec:
        """The spec; raises KeyError naming the variable."""
        spec = self.find(component, variable)
        if spec is None:
            raise KeyError(f"{component}.{variable}")
        return spec
