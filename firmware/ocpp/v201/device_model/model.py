"""The device model of a running station: current values, persistence, typed reads, changes.

The value of an attribute at start:

1. the built-in value (``controllers``, ``tiers``: from the configuration's
   identity, board and connectors);
2. replaced by the file's ``device_model`` section, if it sets the attribute;
3. replaced by the value stored at run time, if there is one: what the CSMS set
   with SetVariables (or the station itself set) for a persistent attribute.

So, as for the OCPP 1.6 configuration keys, a value the CSMS set wins over the
file after a restart; the file's values apply at every start otherwise. The
exception is SecurityProfile (``only_raised``): the file may raise the stored
profile, never lower it. A stored value that no longer fits the variable (a
firmware with other limits) is ignored with a warning.

Changes reach subscribers after they are stored, so the station applies a new
HeartbeatInterval at once. Write-only values (BasicAuthPassword) are never
logged; subscribers get them, the CSMS never does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from ocpp.v201.enums import AttributeEnumType, DataEnumType, StatusInfoReasonType

from firmware.clock import iso
from firmware.ocpp.v201.device_model.addressing import Component, Variable, component, variable
from firmware.ocpp.v201.device_model.catalog import (
    ACTUAL,
    ATTRIBUTE_ORDER,
    LIST_TYPES,
    NUMBER_TYPES,
    WO,
    Catalog,
    Check,
    VariableKey,
    VariableSpec,
)
from firmware.ocpp.v201.device_model.overrides import Override, bounds_problem
from firmware.ocpp.v201.device_model.store import DeviceModelStore
from firmware.ocpp.v201.device_model.values import InvalidValue, check_characteristics, check_value
from firmware.storage.db import Database

log = logging.getLogger("firmware.ocpp.device_model")

CLOCK = Component("ClockCtrlr")
DATE_TIME = Variable("DateTime")
_OUT_OF_RANGE = StatusInfoReasonType.value_out_of_range


class Source(StrEnum):
    CSMS = "csms"  # SetVariables
    STATION = "station"  # the station's own bookkeeping (a state, a count)


@dataclass(frozen=True, slots=True)
class Change:
    """One attribute that took a new value. ``value`` of a write-only attribute is a secret."""

    component: Component
    variable: Variable
    attribute: AttributeEnumType
    value: str
    source: Source


Subscriber = Callable[[Change], None]
Reader = Callable[[], str]


class DeviceModel:
    """Every variable of the station with its current values."""

    def __init__(
        self,
        catalog: Catalog,
        db: Database,
        overrides: Iterable[Override] = (),
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.catalog = catalog
        self._store = DeviceModelStore(db)
        self._values: dict[tuple[VariableKey, AttributeEnumType], str] = {
            (spec.key, kind): attribute.default
            for spec in catalog
            for kind, attribute in spec.attributes.items()
        }
        self._readers: dict[VariableKey, Reader] = {}
        self._guards: dict[VariableKey, Check] = {}
        self._subscribers: list[Subscriber] = []
        for override in overrides:
            self._values[(override.spec.key, override.attribute)] = override.value
        self._overlay_stored()
        if catalog.find(CLOCK, DATE_TIME) is not None:
            self.provide(CLOCK, DATE_TIME, lambda: iso(clock()))

    # ------------------------------------------------------------ start-up

    def _overlay_stored(self) -> None:
        rows = sorted(self._store.load(), key=lambda row: row.attribute == ACTUAL.value)
        for row in rows:
            spec = self.catalog.find(row.component, row.variable)
            kind = _attribute(row.attribute)
            attribute = None if spec is None or kind is None else spec.attribute(kind)
            if spec is None or kind is None or attribute is None:
                log.debug("ignoring stored %s.%s %s", row.component, row.variable, row.attribute)
                continue
            if not attribute.persistent or attribute.constant:
                continue
            shown = "***" if attribute.mutability is WO else repr(row.value)
            try:
                value = self._checked(spec, kind, row.value)
            except InvalidValue as err:
                log.warning("ignoring the stored %s of %s (%s): %s", kind, spec.label, shown, err)
                continue
            current = self._values[(spec.key, kind)]
            if spec.only_raised and int(value) < int(current):
                log.info(
                    "%s: the configured %s wins over the stored %s", spec.label, current, value
                )
                continue
            self._values[(spec.key, kind)] = value

    def _checked(self, spec: VariableSpec, kind: AttributeEnumType, raw: str) -> str:
        """``raw`` as kept for ``kind`` of ``spec``, within MinSet..MaxSet; raises InvalidValue."""
        if kind is ACTUAL:
            value = check_value(spec, raw)
        else:
            value = check_characteristics(spec.characteristics, raw)
        problem = bounds_problem(spec, {**self.attributes(spec), kind: value})
        if problem is not None:
            raise InvalidValue(_OUT_OF_RANGE, problem)
        return value

    # ------------------------------------------------------------ reading

    def spec(self, component_: Component | str, variable_: Variable | str) -> VariableSpec:
        """The variable; raises KeyError for one the station does not have."""
        return self.catalog.get(component(component_), variable(variable_))

    def read(self, spec: VariableSpec, kind: AttributeEnumType = ACTUAL) -> str:
        """The current value of ``kind`` of ``spec`` (write-only ones too: for the station)."""
        reader = self._readers.get(spec.key) if kind is ACTUAL else None
        if reader is not None:
            return reader()
        return self._values[(spec.key, kind)]

    def attributes(self, spec: VariableSpec) -> dict[AttributeEnumType, str]:
        """Every attribute's current value, in OCPP's order."""
        return {kind: self.read(spec, kind) for kind in ATTRIBUTE_ORDER if kind in spec.attributes}

    def get_str(
        self,
        component_: Component | str,
        variable_: Variable | str,
        attribute: AttributeEnumType = ACTUAL,
    ) -> str:
        spec = self.spec(component_, variable_)
        if attribute not in spec.attributes:
            raise KeyError(f"{spec.label} has no {attribute.value} attribute")
        return self.read(spec, attribute)

    def _typed(
        self,
        component_: Component | str,
        variable_: Variable | str,
        attribute: AttributeEnumType,
        kinds: frozenset[DataEnumType],
        wanted: str,
    ) -> str:
        spec = self.spec(component_, variable_)
        if spec.data_type not in kinds:
            raise TypeError(f"{spec.label} is a {spec.data_type.value} variable, not {wanted}")
        return self.get_str(spec.component, spec.variable, attribute)

    def get_int(
        self,
        component_: Component | str,
        variable_: Variable | str,
        attribute: AttributeEnumType = ACTUAL,
    ) -> int:
        kinds = frozenset({DataEnumType.integer})
        return int(self._typed(component_, variable_, attribute, kinds, "an integer"))

    def get_decimal(
        self,
        component_: Component | str,
        variable_: Variable | str,
        attribute: AttributeEnumType = ACTUAL,
    ) -> float:
        return float(self._typed(component_, variable_, attribute, NUMBER_TYPES, "a number"))

    def get_bool(
        self,
        component_: Component | str,
        variable_: Variable | str,
        attribute: AttributeEnumType = ACTUAL,
    ) -> bool:
        kinds = frozenset({DataEnumType.boolean})
        return self._typed(component_, variable_, attribute, kinds, "a boolean") == "true"

    def get_list(
        self,
        component_: Component | str,
        variable_: Variable | str,
        attribute: AttributeEnumType = ACTUAL,
    ) -> list[str]:
        value = self._typed(component_, variable_, attribute, LIST_TYPES, "a list")
        return [item for item in value.split(",") if item]

    # ------------------------------------------------------------ changing

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(change)`` after every change of a value (stored first when
        persistent). Callbacks run synchronously and must not block."""
        self._subscribers.append(callback)

    def provide(
        self, component_: Component | str, variable_: Variable | str, reader: Reader
    ) -> None:
        """Read the Actual value of a read-only variable from ``reader`` whenever it is read
        (a state the station knows better than a stored copy: the clock)."""
        spec = self.spec(component_, variable_)
        self._readers[spec.key] = reader

    def guard(self, component_: Component | str, variable_: Variable | str, check: Check) -> None:
        """Check every Actual value the CSMS sets for the variable with ``check`` too (it
        raises InvalidValue): a rule over the station's state at run time, such as which
        network profiles NetworkConfigurationPriority may name."""
        spec = self.spec(component_, variable_)
        self._guards[spec.key] = check

    def update(
        self,
        component_: Component | str,
        variable_: Variable | str,
        value: str,
        attribute: AttributeEnumType = ACTUAL,
    ) -> None:
        """The station's own change of a value, whatever its mutability: a state
        (AvailabilityState, Problem), a count (CertificateEntries), a raised
        SecurityProfile. Raises KeyError, InvalidValue, or StorageError."""
        spec = self.spec(component_, variable_)
        if attribute not in spec.attributes:
            raise KeyError(f"{spec.label} has no {attribute.value} attribute")
        self.apply(spec, attribute, self._checked(spec, attribute, value), Source.STATION)

    def check(self, spec: VariableSpec, kind: AttributeEnumType, raw: str) -> str:
        """``raw`` as it would be kept for ``kind`` of ``spec`` when the CSMS sets it;
        raises InvalidValue."""
        value = self._checked(spec, kind, raw)
        guard = self._guards.get(spec.key) if kind is ACTUAL else None
        if guard is not None:
            guard(value)
        return value

    def apply(
        self, spec: VariableSpec, kind: AttributeEnumType, value: str, source: Source
    ) -> None:
        """Keep an already checked value: stored (durably) first when the attribute is
        persistent, then subscribers are told if it changed. Raises StorageError."""
        attribute = spec.attributes[kind]
        if attribute.persistent and not attribute.constant:
            self._store.save(spec.component, spec.variable, kind, value)
        old = self._values[(spec.key, kind)]
        self._values[(spec.key, kind)] = value
        shown = "***" if attribute.mutability is WO else repr(value)
        # The station's own bookkeeping (states, counts) changes often: not at INFO.
        level = logging.INFO if source is Source.CSMS else logging.DEBUG
        log.log(level, "%s %s set to %s by the %s", spec.label, kind.value, shown, source.value)
        if value != old:
            change = Change(spec.component, spec.variable, kind, value, source)
            for callback in list(self._subscribers):
                try:
                    callback(change)
                except Exception:
                    log.exception("device model subscriber failed for %s", spec.label)


def _attribute(name: str) -> AttributeEnumType | None:
    try:
        return AttributeEnumType(name)
    except ValueError:
        return None
