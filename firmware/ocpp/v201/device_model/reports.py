"""GetBaseReport and GetReport (OCPP 2.0.1 B07, B08): the report and its NotifyReport requests.

Report bases:

- FullInventory: every variable, every attribute, with characteristics;
- ConfigurationInventory: the variables the CSMS may change, with only their
  ReadWrite and WriteOnly attributes;
- SummaryInventory: the AvailabilityState of the station, every EVSE and every
  connector, and every Problem, Tripped, Overload or Fallback that is true.

GetReport filters by ``componentVariable`` (a component without ``evse`` names
it on every EVSE and connector, without ``instance`` every instance; a
component without a variable all its variables; a variable without
``instance`` every instance) and by ``componentCriteria``: a component
matches when one of the criteria's variables (Active, Available, Enabled,
Problem) is true, and a component without such a variable counts as active,
available and enabled (never as having a problem). No match: EmptyResultSet.

A write-only attribute is reported without its value. The report is split
into NotifyReport requests (seqNo from 0, tbc true on all but the last) of at
most ``ItemsPerMessage[GetReport]`` entries and, where an entry allows,
``BytesPerMessage[GetReport]`` bytes of frame.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.v201.enums import (
    AttributeEnumType,
    ComponentCriterionEnumType,
    GenericDeviceModelStatusEnumType,
    ReportBaseEnumType,
)

from firmware.clock import iso
from firmware.ocpp.v201.device_model.catalog import ACTUAL, RW, WO, VariableSpec
from firmware.ocpp.v201.device_model.model import DeviceModel
from firmware.ocpp.v201.device_model.operations import VALUE_MAX, check_limits, limit

# The CALL frame around the payload: [2,"<message id of up to 36 characters>","NotifyReport",…]
FRAME_OVERHEAD = 64
TIERS = frozenset({"chargingstation", "evse", "connector"})
ALARMS = frozenset({"problem", "tripped", "overload", "fallback"})

Payload = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Report:
    """The answer to a report request and the NotifyReport requests that follow it."""

    response: dict[str, Any]
    notify_reports: tuple[dict[str, Any], ...]


# ---------------------------------------------------------------- entries


def entry(
    model: DeviceModel,
    spec: VariableSpec,
    kinds: Iterable[AttributeEnumType],
    value_max: int = VALUE_MAX,
) -> dict[str, Any]:
    """A ``ReportDataType`` of ``spec`` with the attributes ``kinds``."""
    attributes = []
    for kind in kinds:
        attribute = spec.attributes[kind]
        item: dict[str, Any] = {"type": kind.value}
        if attribute.mutability is not WO:
            item["value"] = model.read(spec, kind)[: min(value_max, VALUE_MAX)]
        item["mutability"] = attribute.mutability.value
        item["persistent"] = attribute.persistent
        item["constant"] = attribute.constant
        attributes.append(item)
    return {
        "component": spec.component.to_json(),
        "variable": spec.variable.to_json(),
        "variableAttribute": attributes,
        "variableCharacteristics": spec.characteristics.to_json(),
    }


def base_entries(model: DeviceModel, base: ReportBaseEnumType) -> list[dict[str, Any]]:
    size = limit(model, "ReportingValueSize", None, VALUE_MAX)
    out = []
    for spec in model.catalog:
        kinds: list[AttributeEnumType] = []
        if base is ReportBaseEnumType.full_inventory:
            kinds = list(spec.attributes)
        elif base is ReportBaseEnumType.configuration_inventory:
            kinds = [k for k, a in spec.attributes.items() if a.mutability in (RW, WO)]
        elif _in_summary(model, spec):
            kinds = [ACTUAL]
        if kinds:
            out.append(entry(model, spec, kinds, size))
    return out


def _in_summary(model: DeviceModel, spec: VariableSpec) -> bool:
    if ACTUAL not in spec.attributes:
        return False
    name = spec.variable.name.casefold()
    if name == "availabilitystate":
        return spec.component.name.casefold() in TIERS
    return name in ALARMS and model.read(spec) == "true"


def custom_entries(
    model: DeviceModel,
    component_variables: Sequence[Payload] | None,
    criteria: Sequence[str] | None,
) -> list[dict[str, Any]]:
    size = limit(model, "ReportingValueSize", None, VALUE_MAX)
    wanted = [ComponentCriterionEnumType(c) for c in criteria or ()]
    out = []
    for spec in model.catalog:
        if wanted and not _meets(model, spec, wanted):
            continue
        if component_variables and not any(_names(cv, spec) for cv in component_variables):
            continue
        out.append(entry(model, spec, spec.attributes, size))
    return out


def _meets(
    model: DeviceModel, spec: VariableSpec, criteria: Sequence[ComponentCriterionEnumType]
) -> bool:
    variables = {
        s.variable.name.casefold(): s
        for s in model.catalog.variables(spec.component)
        if s.variable.instance is None and ACTUAL in s.attributes
    }
    for criterion in criteria:
        found = variables.get(criterion.value.casefold())
        if found is None:
            if criterion is not ComponentCriterionEnumType.problem:
                return True
        elif model.read(found) == "true":
            return True
    return False


def _same(given: object, name: str | None) -> bool:
    return given is None or (name is not None and str(given).casefold() == name.casefold())


def _names(component_variable: Payload, spec: VariableSpec) -> bool:
    """Whether a ``ComponentVariableType`` filter names ``spec``."""
    component = component_variable["component"]
    c = spec.component
    if component["name"].casefold() != c.name.casefold():
        return False
    if not _same(component.get("instance"), c.instance):
        return False
    evse = component.get("evse")
    if evse is not None:
        if evse["id"] != c.evse:
            return False
        if evse.get("connectorId") is not None and evse["connectorId"] != c.connector:
            return False
    variable = component_variable.get("variable")
    if variable is None:
        return True
    v = spec.variable
    return variable["name"].casefold() == v.name.casefold() and _same(
        variable.get("instance"), v.instance
    )


# ---------------------------------------------------------------- NotifyReport


def _bytes(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def notify_reports(
    request_id: int,
    entries: Sequence[dict[str, Any]],
    *,
    now: datetime,
    items: int,
    max_bytes: int,
) -> tuple[dict[str, Any], ...]:
    """``entries`` as NotifyReport request payloads, in order."""
    head = {"requestId": request_id, "generatedAt": iso(now), "seqNo": 0, "tbc": False}
    # The payload without its entries, the "reportData":[] around them, and the frame.
    base = _bytes(head) + len(',"reportData":[]') + FRAME_OVERHEAD + 8  # seqNo digits, tbc
    chunks: list[list[dict[str, Any]]] = []
    chunk: list[dict[str, Any]] = []
    size = base
    for item in entries:
        cost = _bytes(item) + 1
        if chunk and (len(chunk) >= items or size + cost > max_bytes):
            chunks.append(chunk)
            chunk, size = [], base
        chunk.append(item)
        size += cost
    if chunk:
        chunks.append(chunk)
    return tuple(
        {**head, "seqNo": n, "tbc": n < len(chunks) - 1, "reportData": part}
        for n, part in enumerate(chunks)
    )


def _split(
    model: DeviceModel, request_id: int, entries: list[dict[str, Any]], now: datetime
) -> tuple[dict[str, Any], ...]:
    return notify_reports(
        request_id,
        entries,
        now=now,
        items=limit(model, "ItemsPerMessage", "GetReport", len(entries) or 1),
        max_bytes=limit(model, "BytesPerMessage", "GetReport", 1 << 30),
    )


def get_base_report(model: DeviceModel, request: Payload, *, now: datetime) -> Report:
    """GetBaseReportResponse (Accepted: every base is supported) and the report."""
    base = ReportBaseEnumType(request["reportBase"])
    entries = base_entries(model, base)
    status = GenericDeviceModelStatusEnumType.accepted
    if not entries:
        return Report({"status": GenericDeviceModelStatusEnumType.empty_result_set.value}, ())
    return Report({"status": status.value}, _split(model, request["requestId"], entries, now))


def get_report(
    model: DeviceModel, request: Payload, *, now: datetime, message_bytes: int | None = None
) -> Report:
    """GetReportResponse (Accepted, or EmptyResultSet) and the report; raises LimitExceeded."""
    component_variables = request.get("componentVariable")
    items = None if component_variables is None else len(component_variables)
    check_limits(model, "GetReport", items, message_bytes)
    entries = custom_entries(model, component_variables, request.get("componentCriteria"))
    if not entries:
        return Report({"status": GenericDeviceModelStatusEnumType.empty_result_set.value}, ())
    status = GenericDeviceModelStatusEnumType.accepted
    return Report({"status": status.value}, _split(model, request["requestId"], entries, now))


def iter_entries(report: Report) -> Iterator[dict[str, Any]]:
    """Every reportData entry of the NotifyReport requests of ``report``, in order."""
    for request in report.notify_reports:
        yield from request["reportData"]
