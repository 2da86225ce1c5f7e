"""GetVariables and SetVariables (OCPP 2.0.1 B06, B05) on the device model.

The functions take the request payload, already checked against the OCA
schema, and return the response payload. A request over the station's limits
(``DeviceDataCtrlr`` ``ItemsPerMessage[...]``, ``BytesPerMessage[...]``) raises
``LimitExceeded``: the front-end answers it with a CALLERROR, the
occurrence-constraint code of OCPP-J 2.0.1 for too many items (B05.FR.11,
B06.FR.16, B08.FR.17) and ``FormatViolation`` for too many bytes (B05.FR.12,
B06.FR.17, B08.FR.18). Everything else gets a result per entry, never a
CALLERROR: an unknown component, variable or attribute type is
UnknownComponent, UnknownVariable or NotSupportedAttributeType.

Entries of one SetVariables request are applied in their order, each as if it
came alone (a later entry sees what an earlier one set).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from ocpp.v201.enums import (
    AttributeEnumType,
    GetVariableStatusEnumType,
    SetVariableStatusEnumType,
    StatusInfoReasonType,
)

from firmware.errors import StorageError
from firmware.ocpp.v201.device_model.addressing import Component, Variable
from firmware.ocpp.v201.device_model.catalog import ACTUAL, RO, WO, VariableSpec
from firmware.ocpp.v201.device_model.errors import DeviceModelError
from firmware.ocpp.v201.device_model.model import DeviceModel, Source
from firmware.ocpp.v201.device_model.values import InvalidValue

DEVICE_DATA = Component("DeviceDataCtrlr")
INFO_MAX = 512  # StatusInfoType.additionalInfo
VALUE_MAX = 2500  # GetVariableResult.attributeValue, VariableAttribute.value
SET_VALUE_MAX = 1000  # SetVariableData.attributeValue

Payload = Mapping[str, Any]


class Limit(StrEnum):
    ITEMS = "ItemsPerMessage"
    BYTES = "BytesPerMessage"


class LimitExceeded(DeviceModelError):
    """A request larger than the station takes (answered with a CALLERROR)."""

    def __init__(self, limit: Limit, message: str, allowed: int, given: int) -> None:
        what = "entries" if limit is Limit.ITEMS else "bytes"
        super().__init__(f"{given} {what} in {message}; {limit.value}[{message}] is {allowed}")
        self.limit = limit
        self.allowed = allowed
        self.given = given


def limit(model: DeviceModel, name: str, instance: str | None, default: int) -> int:
    """An integer of DeviceDataCtrlr, or ``default`` where the station has no such variable."""
    spec = model.catalog.find(DEVICE_DATA, Variable(name, instance))
    return default if spec is None else int(model.read(spec))


def check_limits(
    model: DeviceModel, message: str, items: int | None, message_bytes: int | None
) -> None:
    """Raise LimitExceeded when a ``message`` request is over the station's limits.

    ``message_bytes``: the size of the CALL frame in UTF-8 bytes (None: not known)."""
    if items is not None:
        allowed = limit(model, Limit.ITEMS.value, message, items)
        if items > allowed:
            raise LimitExceeded(Limit.ITEMS, message, allowed, items)
    if message_bytes is not None:
        allowed = limit(model, Limit.BYTES.value, message, message_bytes)
        if message_bytes > allowed:
            raise LimitExceeded(Limit.BYTES, message, allowed, message_bytes)


def _status_info(reason: StatusInfoReasonType, info: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"reasonCode": reason.value}
    if info:
        out["additionalInfo"] = info[:INFO_MAX]
    return out


def _find(model: DeviceModel, data: Payload) -> tuple[VariableSpec | None, str | None]:
    """The spec a request entry names, or the status saying why there is none."""
    component = Component.from_json(data["component"])
    if model.catalog.component(component) is None:
        return None, "UnknownComponent"
    spec = model.catalog.find(component, Variable.from_json(data["variable"]))
    if spec is None:
        return None, "UnknownVariable"
    return spec, None


# ---------------------------------------------------------------- GetVariables


def get_variables(
    model: DeviceModel, request: Payload, *, message_bytes: int | None = None
) -> dict[str, Any]:
    """GetVariablesResponse for a GetVariablesRequest; raises LimitExceeded."""
    entries = request["getVariableData"]
    check_limits(model, "GetVariables", len(entries), message_bytes)
    size = limit(model, "ReportingValueSize", None, VALUE_MAX)
    return {"getVariableResult": [get_variable(model, entry, size) for entry in entries]}


def get_variable(model: DeviceModel, data: Payload, value_max: int = VALUE_MAX) -> dict[str, Any]:
    kind = AttributeEnumType(data.get("attributeType", ACTUAL.value))
    result: dict[str, Any] = {
        "attributeType": kind.value,
        "component": data["component"],
        "variable": data["variable"],
    }
    spec, missing = _find(model, data)
    if spec is None:
        return {"attributeStatus": missing, **result}
    attribute = spec.attribute(kind)
    if attribute is None:
        status = GetVariableStatusEnumType.not_supported_attribute_type
        return {"attributeStatus": status.value, **result}
    if attribute.mutability is WO:
        return {
            "attributeStatus": GetVariableStatusEnumType.rejected.value,
            "attributeStatusInfo": _status_info(StatusInfoReasonType.write_only),
            **result,
        }
    value = model.read(spec, kind)[: min(value_max, VALUE_MAX)]
    return {
        "attributeStatus": GetVariableStatusEnumType.accepted.value,
        "attributeValue": value,
        **result,
    }


# ---------------------------------------------------------------- SetVariables


def set_variables(
    model: DeviceModel, request: Payload, *, message_bytes: int | None = None
) -> dict[str, Any]:
    """SetVariablesResponse for a SetVariablesRequest; raises LimitExceeded.

    Accepted values are stored and subscribers told before this returns."""
    entries = request["setVariableData"]
    check_limits(model, "SetVariables", len(entries), message_bytes)
    return {"setVariableResult": [set_variable(model, entry) for entry in entries]}


def set_variable(model: DeviceModel, data: Payload) -> dict[str, Any]:
    kind = AttributeEnumType(data.get("attributeType", ACTUAL.value))
    result: dict[str, Any] = {
        "attributeType": kind.value,
        "component": data["component"],
        "variable": data["variable"],
    }
    spec, missing = _find(model, data)
    if spec is None:
        return {"attributeStatus": missing, **result}
    attribute = spec.attribute(kind)
    if attribute is None:
        status = SetVariableStatusEnumType.not_supported_attribute_type
        return {"attributeStatus": status.value, **result}

    def rejected(reason: StatusInfoReasonType, info: str | None = None) -> dict[str, Any]:
        return {
            "attributeStatus": SetVariableStatusEnumType.rejected.value,
            "attributeStatusInfo": _status_info(reason, info),
            **result,
        }

    if attribute.mutability is RO:
        return rejected(StatusInfoReasonType.read_only)
    raw = str(data["attributeValue"])
    size = limit(model, "ConfigurationValueSize", None, SET_VALUE_MAX)
    if len(raw) > size:
        return rejected(StatusInfoReasonType.too_large_element, f"at most {size} characters")
    try:
        value = model.check(spec, kind, raw)
    except InvalidValue as err:
        return rejected(err.reason, f"{spec.variable} {err.problem}")
    try:
        model.apply(spec, kind, value, Source.CSMS)
    except StorageError:
        return rejected(StatusInfoReasonType.internal_error, "the value could not be stored")
    if spec.reboot_required:
        return {"attributeStatus": SetVariableStatusEnumType.reboot_required.value, **result}
    return {"attributeStatus": SetVariableStatusEnumType.accepted.value, **result}
