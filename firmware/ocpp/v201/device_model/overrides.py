"""The ``device_model`` section of the configuration file: values that replace built-in ones.

    device_model:
      TxCtrlr: {EVConnectionTimeOut: 30, StopTxOnInvalidId: true}
      DeviceDataCtrlr: {"ItemsPerMessage[GetReport]": 4}
      "EVSE.1": {AvailabilityState: Available}
      "Connector.1.1": {ConnectorType: cType2}
      SampledDataCtrlr: {TxUpdatedInterval: {Actual: 10, MaxSet: 3600}}

A scalar sets the Actual value; a mapping sets the attributes it names. Any
variable may be set, read-only ones included: mutability restricts the CSMS,
not the integrator. Names match without regard to case. Every problem raises
one ``ConfigError`` naming ``device_model.Component.Variable``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from ocpp.v201.enums import AttributeEnumType

from firmware.clock import iso
from firmware.errors import ConfigError
from firmware.ocpp.v201.device_model.addressing import AddressError, Component, Variable
from firmware.ocpp.v201.device_model.catalog import (
    ACTUAL,
    ATTRIBUTE_ORDER,
    MAX_SET,
    MIN_SET,
    NUMBER_TYPES,
    WO,
    Catalog,
    VariableSpec,
)
from firmware.ocpp.v201.device_model.values import (
    InvalidValue,
    check_characteristics,
    check_value,
)

SECTION = "device_model"

Section = Mapping[str, Mapping[str, object]]


@dataclass(frozen=True, slots=True)
class Override:
    """One attribute value the file sets, already checked against the variable."""

    spec: VariableSpec
    attribute: AttributeEnumType
    value: str
    path: str  # device_model.Component.Variable, as the file writes it


def resolve_overrides(catalog: Catalog, section: Section) -> tuple[Override, ...]:
    """Check ``section`` against ``catalog``; raises ConfigError naming the first problem."""
    found: dict[tuple[object, AttributeEnumType], Override] = {}
    for component_text, variables in section.items():
        component = _component(catalog, component_text)
        for variable_text, given in variables.items():
            path = f"{SECTION}.{component_text}.{variable_text}"
            spec = _variable(catalog, component, variable_text, path)
            for attribute, raw, where in _attributes(spec, given, path):
                override = Override(spec, attribute, _checked(spec, attribute, raw, where), path)
                earlier = found.get((spec.key, attribute))
                if earlier is not None:
                    raise ConfigError(f"{where}: set twice (also as {earlier.path})")
                found[(spec.key, attribute)] = override
    overrides = tuple(found.values())
    _check_bounds(overrides)
    return overrides


def _fail(path: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {problem}")


def _component(catalog: Catalog, text: str) -> Component:
    path = f"{SECTION}.{text}"
    try:
        wanted = Component.parse(text)
    except AddressError as err:
        raise _fail(path, str(err)) from None
    known = catalog.component(wanted)
    if known is not None:
        return known
    same_name = [c for c in catalog.components() if c.name.casefold() == wanted.name.casefold()]
    if same_name:
        raise _fail(path, f"unknown component: this station has {_list(same_name)}")
    names = list(dict.fromkeys(c.name for c in catalog.components()))
    raise _fail(path, f"unknown component{_hint(wanted.name, names)}")


def _variable(catalog: Catalog, component: Component, text: str, path: str) -> VariableSpec:
    try:
        wanted = Variable.parse(text)
    except AddressError as err:
        raise _fail(path, str(err)) from None
    spec = catalog.find(component, wanted)
    if spec is not None:
        return spec
    specs = catalog.variables(component)
    same_name = [s.variable for s in specs if s.variable.name.casefold() == wanted.name.casefold()]
    if same_name:
        raise _fail(path, f"unknown variable of {component}: this station has {_list(same_name)}")
    names = list(dict.fromkeys(s.variable.name for s in specs))
    raise _fail(path, f"unknown variable of {component}{_hint(wanted.name, names)}")


def _list(items: Iterable[object]) -> str:
    return ", ".join(str(i) for i in items)


def _hint(name: str, known: list[str]) -> str:
    folded = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.7)
    if close:
        return f", did you mean {folded[close[0]]!r}?"
    return f" (known: {', '.join(known)})"


def _attributes(
    spec: VariableSpec, given: object, path: str
) -> Iterable[tuple[AttributeEnumType, object, str]]:
    """(attribute, value, dotted path) for a scalar (Actual) or a mapping of attributes."""
    if not isinstance(given, Mapping):
        if ACTUAL not in spec.attributes:
            raise _fail(path, f"{spec.variable} has no Actual attribute: {_has(spec)}")
        return [(ACTUAL, given, path)]
    if not given:
        raise _fail(path, f"give a value, or a mapping of attributes ({_has(spec)})")
    by_name = {a.value.casefold(): a for a in ATTRIBUTE_ORDER}
    out = []
    for key, raw in given.items():
        where = f"{path}.{key}"
        attribute = by_name.get(key.casefold()) if isinstance(key, str) else None
        if attribute is None:
            names = [a.value for a in ATTRIBUTE_ORDER]
            raise _fail(where, f"unknown attribute{_hint(str(key), names)}")
        if attribute not in spec.attributes:
            raise _fail(where, f"{spec.variable} has no {attribute.value} attribute: {_has(spec)}")
        out.append((attribute, raw, where))
    return out


def _has(spec: VariableSpec) -> str:
    return f"it has {', '.join(a.value for a in spec.attributes)}"


def text_of(raw: object) -> str:
    """A YAML value as OCPP text; raises ValueError for what cannot be one."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | str):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError("must be a finite number")
        return format(Decimal(repr(raw)), "f")
    if isinstance(raw, datetime):
        return iso(raw)
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, list):
        items = [text_of(item) for item in raw if not isinstance(item, list | dict)]
        if len(items) != len(raw) or any("," in item for item in items):
            raise ValueError("a list holds values without commas")
        return ",".join(items)
    raise ValueError("must be a string, number, boolean or a list of them")


def _checked(spec: VariableSpec, attribute: AttributeEnumType, raw: object, where: str) -> str:
    secret = spec.attributes[attribute].mutability is WO
    shown = "" if secret else f", got {raw!r}"
    try:
        text = text_of(raw)
        if attribute is ACTUAL:
            return check_value(spec, text)
        return check_characteristics(spec.characteristics, text)
    except InvalidValue as err:
        raise _fail(where, f"{err.problem}{shown}") from None
    except ValueError as err:
        raise _fail(where, f"{err}{shown}") from None


def _check_bounds(overrides: tuple[Override, ...]) -> None:
    """The file's MinSet, Actual and MaxSet of a variable must be in that order."""
    given: dict[object, dict[AttributeEnumType, Override]] = {}
    for o in overrides:
        given.setdefault(o.spec.key, {})[o.attribute] = o
    for attributes in given.values():
        spec = next(iter(attributes.values())).spec
        problem = bounds_problem(spec, {a: o.value for a, o in attributes.items()})
        if problem is not None:
            raise _fail(next(iter(attributes.values())).path, problem)


def bounds_problem(spec: VariableSpec, values: Mapping[AttributeEnumType, str]) -> str | None:
    """Why ``values`` (attributes given, the rest built in) break MinSet <= Actual <= MaxSet."""
    if spec.data_type not in NUMBER_TYPES or not ({MIN_SET, MAX_SET} & spec.attributes.keys()):
        return None

    def value(kind: AttributeEnumType) -> float | None:
        if kind in values:
            return float(values[kind])
        attribute = spec.attributes.get(kind)
        return None if attribute is None else float(attribute.default)

    low, actual, high = value(MIN_SET), value(ACTUAL), value(MAX_SET)
    if low is not None and high is not None and low > high:
        return f"MinSet {_n(low)} is above MaxSet {_n(high)}"
    if actual is not None and low is not None and actual < low:
        return f"the Actual value {_n(actual)} is below MinSet {_n(low)}"
    if actual is not None and high is not None and actual > high:
        return f"the Actual value {_n(actual)} is above MaxSet {_n(high)}"
    return None


def _n(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)
