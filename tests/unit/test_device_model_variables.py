"""GetVariables and SetVariables: every status, the limits, and schema-valid answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v201.enums import DataEnumType

from firmware.errors import StorageError
from firmware.ocpp.v201.device_model import (
    Catalog,
    Component,
    DeviceModel,
    Limit,
    LimitExceeded,
    get_variables,
    set_variables,
)
from firmware.ocpp.v201.device_model.catalog import RO, define
from firmware.storage.db import Database
from tests.unit.device_model_fixtures import CALL, CALLRESULT, assert_valid, open_model


@pytest.fixture
def model(tmp_path: Path) -> Iterator[DeviceModel]:
    m, db = open_model(tmp_path, connectors=2)
    yield m
    db.close()


def data(
    component: dict[str, Any] | str, variable: dict[str, Any] | str, **extra: Any
) -> dict[str, Any]:
    if isinstance(component, str):
        component = {"name": component}
    if isinstance(variable, str):
        variable = {"name": variable}
    return {"component": component, "variable": variable, **extra}


def get_one(model: DeviceModel, entry: dict[str, Any]) -> dict[str, Any]:
    request = {"getVariableData": [entry]}
    assert_valid(CALL, "GetVariables", request)
    response = get_variables(model, request)
    assert_valid(CALLRESULT, "GetVariables", response)
    result: dict[str, Any] = response["getVariableResult"][0]
    return result


def set_one(model: DeviceModel, entry: dict[str, Any]) -> dict[str, Any]:
    request = {"setVariableData": [entry]}
    assert_valid(CALL, "SetVariables", request)
    response = set_variables(model, request)
    assert_valid(CALLRESULT, "SetVariables", response)
    result: dict[str, Any] = response["setVariableResult"][0]
    return result


EVSE1 = {"name": "EVSE", "evse": {"id": 1}}
CONNECTOR11 = {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}

# request entry, attributeStatus, attributeValue, reasonCode
GETS: list[tuple[str, dict[str, Any], str, str | None, str | None]] = [
    ("actual by default", data("TxCtrlr", "EVConnectionTimeOut"), "Accepted", "60", None),
    (
        "case of the names",
        data("txctrlr", "evconnectiontimeout", attributeType="Actual"),
        "Accepted",
        "60",
        None,
    ),
    (
        "variable instance",
        data("DeviceDataCtrlr", {"name": "ItemsPerMessage", "instance": "GetVariables"}),
        "Accepted",
        "50",
        None,
    ),
    (
        "MaxSet",
        data("OCPPCommCtrlr", "HeartbeatInterval", attributeType="MaxSet"),
        "Accepted",
        "86400",
        None,
    ),
    ("on an EVSE", data(EVSE1, "AvailabilityState"), "Accepted", "Available", None),
    ("on a connector", data(CONNECTOR11, "ConnectorType"), "Accepted", "sType2", None),
    ("unknown component", data("TxCtrl", "EVConnectionTimeOut"), "UnknownComponent", None, None),
    (
        "EVSE the station does not have",
        data({"name": "EVSE", "evse": {"id": 3}}, "AvailabilityState"),
        "UnknownComponent",
        None,
        None,
    ),
    ("EVSE without its id", data("EVSE", "AvailabilityState"), "UnknownComponent", None, None),
    (
        "connector without its id",
        data({"name": "Connector", "evse": {"id": 1}}, "ConnectorType"),
        "UnknownComponent",
        None,
        None,
    ),
    (
        "controller named on an EVSE",
        data({"name": "TxCtrlr", "evse": {"id": 1}}, "EVConnectionTimeOut"),
        "UnknownComponent",
        None,
        None,
    ),
    ("unknown variable", data("TxCtrlr", "NoSuchThing"), "UnknownVariable", None, None),
    (
        "variable without its instance",
        data("DeviceDataCtrlr", "ItemsPerMessage"),
        "UnknownVariable",
        None,
        None,
    ),
    (
        "attribute it has not",
        data("TxCtrlr", "EVConnectionTimeOut", attributeType="Target"),
        "NotSupportedAttributeType",
        None,
        None,
    ),
    ("write-only", data("SecurityCtrlr", "BasicAuthPassword"), "Rejected", None, "WriteOnly"),
]


@pytest.mark.parametrize(
    ("entry", "status", "value", "reason"), [g[1:] for g in GETS], ids=[g[0] for g in GETS]
)
def test_get_variables_answers_each_entry(
    model: DeviceModel, entry: dict[str, Any], status: str, value: str | None, reason: str | None
) -> None:
    result = get_one(model, entry)
    assert result["attributeStatus"] == status
    assert result.get("attributeValue") == value
    assert result.get("attributeStatusInfo", {}).get("reasonCode") == reason
    # The entry comes back as the CSMS named it.
    assert result["component"] == entry["component"]
    assert result["variable"] == entry["variable"]
    assert result["attributeType"] == entry.get("attributeType", "Actual")


def test_get_variables_answers_in_order_and_in_one_response(model: DeviceModel) -> None:
    request = {
        "getVariableData": [
            data("OCPPCommCtrlr", "HeartbeatInterval"),
            data("Nope", "Nothing"),
            data("ClockCtrlr", "DateTime"),
        ]
    }
    results = get_variables(model, request)["getVariableResult"]
    assert [r["attributeStatus"] for r in results] == ["Accepted", "UnknownComponent", "Accepted"]
    assert results[2]["attributeValue"] == "2030-01-02T03:04:05.000Z"


def test_long_values_are_cut_to_the_reporting_size(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path,
        device_model={"DeviceDataCtrlr": {"ReportingValueSize": 5}},
    )
    assert get_one(model, data("ClockCtrlr", "DateTime"))["attributeValue"] == "2030-"
    db.close()


# request entry, attributeStatus, reasonCode
SETS: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("accepted", data("TxCtrlr", "EVConnectionTimeOut", attributeValue="30"), "Accepted", None),
    (
        "accepted on a list",
        data(
            "TxCtrlr",
            "TxStopPoint",
            attributeValue="Authorized,EVConnected",
            attributeType="Actual",
        ),
        "Accepted",
        None,
    ),
    (
        "a point the station's sessions cannot follow",
        data("TxCtrlr", "TxStartPoint", attributeValue="EnergyTransfer"),
        "Rejected",
        "InvalidValue",
    ),
    (
        "another start point",
        data("TxCtrlr", "TxStartPoint", attributeValue="EVConnected"),
        "Accepted",
        None,
    ),
    (
        "write-only",
        data("SecurityCtrlr", "BasicAuthPassword", attributeValue="0123456789abcdef"),
        "Accepted",
        None,
    ),
    (
        "unknown component",
        data("TxCtrl", "EVConnectionTimeOut", attributeValue="30"),
        "UnknownComponent",
        None,
    ),
    (
        "unknown variable",
        data("TxCtrlr", "EVConnectionTime", attributeValue="30"),
        "UnknownVariable",
        None,
    ),
    (
        "attribute it has not",
        data("TxCtrlr", "EVConnectionTimeOut", attributeValue="30", attributeType="MaxSet"),
        "NotSupportedAttributeType",
        None,
    ),
    ("read-only", data("ChargingStation", "Model", attributeValue="X"), "Rejected", "ReadOnly"),
    (
        "read-only attribute",
        data("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="60", attributeType="MaxSet"),
        "Rejected",
        "ReadOnly",
    ),
    (
        "not an integer",
        data("TxCtrlr", "EVConnectionTimeOut", attributeValue="soon"),
        "Rejected",
        "InvalidValue",
    ),
    (
        "too low",
        data("TxCtrlr", "EVConnectionTimeOut", attributeValue="-5"),
        "Rejected",
        "ValueTooLow",
    ),
    (
        "too high",
        data("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="99999"),
        "Rejected",
        "ValueTooHigh",
    ),
    (
        "not a boolean",
        data("TxCtrlr", "StopTxOnInvalidId", attributeValue="1"),
        "Rejected",
        "InvalidValue",
    ),
    (
        "not in the list",
        data("TxCtrlr", "TxStartPoint", attributeValue="ParkingBayOccupancy"),
        "Rejected",
        "InvalidValue",
    ),
    (
        "not a decimal",
        data("SmartChargingCtrlr", "LimitChangeSignificance", attributeValue="1,5"),
        "Rejected",
        "InvalidValue",
    ),
    (
        "too long",
        data("AuthCtrlr", "MasterPassGroupId", attributeValue="G" * 37),
        "Rejected",
        "TooLargeElement",
    ),
    (
        "own rule",
        data("SecurityCtrlr", "BasicAuthPassword", attributeValue="short"),
        "Rejected",
        "InvalidValue",
    ),
]


@pytest.mark.parametrize(
    ("entry", "status", "reason"), [s[1:] for s in SETS], ids=[s[0] for s in SETS]
)
def test_set_variables_answers_each_entry(
    model: DeviceModel, entry: dict[str, Any], status: str, reason: str | None
) -> None:
    before = get_one(model, {k: v for k, v in entry.items() if k != "attributeValue"})
    result = set_one(model, entry)
    assert result["attributeStatus"] == status
    assert result.get("attributeStatusInfo", {}).get("reasonCode") == reason
    assert result["component"] == entry["component"]
    assert result["variable"] == entry["variable"]
    after = get_one(model, {k: v for k, v in entry.items() if k != "attributeValue"})
    if status == "Accepted" and after["attributeStatus"] == "Accepted":
        assert after["attributeValue"] == entry["attributeValue"]
    else:
        assert after == before  # nothing changed


def test_rejections_say_why_without_repeating_a_secret(model: DeviceModel) -> None:
    result = set_one(
        model, data("SecurityCtrlr", "BasicAuthPassword", attributeValue="tiny secret")
    )
    assert result["attributeStatusInfo"] == {
        "reasonCode": "InvalidValue",
        "additionalInfo": "BasicAuthPassword must be 16 to 40 printable ASCII characters without "
        "blanks",
    }
    result = set_one(model, data("TxCtrlr", "EVConnectionTimeOut", attributeValue="-5"))
    assert result["attributeStatusInfo"] == {
        "reasonCode": "ValueTooLow",
        "additionalInfo": "EVConnectionTimeOut must be an integer of at least 0",
    }


def test_actual_stays_between_min_set_and_max_set(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path,
        device_model={"SampledDataCtrlr": {"TxUpdatedInterval": {"MinSet": 10, "MaxSet": 3600}}},
    )
    interval = ("SampledDataCtrlr", "TxUpdatedInterval")
    assert set_one(model, data(*interval, attributeValue="3600"))["attributeStatus"] == "Accepted"
    for value in ("3601", "9"):
        result = set_one(model, data(*interval, attributeValue=value))
        assert result["attributeStatus"] == "Rejected"
        assert result["attributeStatusInfo"]["reasonCode"] == "ValueOutOfRange"
    assert model.get_int(*interval) == 3600
    db.close()


def test_entries_of_one_request_apply_in_order(model: DeviceModel) -> None:
    heard: list[str] = []
    model.subscribe(lambda change: heard.append(change.value))
    request = {
        "setVariableData": [
            data("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="30"),
            data("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="x"),
            data("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="45"),
        ]
    }
    results = set_variables(model, request)["setVariableResult"]
    assert [r["attributeStatus"] for r in results] == ["Accepted", "Rejected", "Accepted"]
    assert heard == ["30", "45"]
    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 45


def test_a_variable_that_needs_a_restart_answers_reboot_required(tmp_path: Path) -> None:
    station = Component("ACMEWidgetCtrlr")
    catalog = Catalog(
        [
            define(
                station,
                "Mode",
                DataEnumType.option_list,
                "eco",
                values=("eco", "boost"),
                reboot_required=True,
            ),
            define(station, "Serial", DataEnumType.string, "1", mutability=RO),
        ]
    )
    db = Database(tmp_path / "state.db")
    model = DeviceModel(catalog, db)
    result = set_one(model, data("ACMEWidgetCtrlr", "Mode", attributeValue="boost"))
    assert result["attributeStatus"] == "RebootRequired"
    assert model.get_str(station, "Mode") == "boost"
    db.close()
    assert DeviceModel(catalog, Database(tmp_path / "state.db")).get_str(station, "Mode") == "boost"


def test_a_value_that_cannot_be_stored_is_rejected_and_not_used(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    db.execute("DROP TABLE device_model")  # the database refuses the write
    result = set_one(model, data("TxCtrlr", "EVConnectionTimeOut", attributeValue="30"))
    assert result["attributeStatus"] == "Rejected"
    assert result["attributeStatusInfo"]["reasonCode"] == "InternalError"
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 60
    with pytest.raises(StorageError):
        model.update("SecurityCtrlr", "SecurityProfile", "2")
    db.close()


def test_too_many_entries_are_refused_as_a_whole(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path,
        device_model={
            "DeviceDataCtrlr": {
                "ItemsPerMessage[GetVariables]": 2,
                "ItemsPerMessage[SetVariables]": 1,
            }
        },
    )
    three = {"getVariableData": [data("TxCtrlr", "EVConnectionTimeOut")] * 3}
    with pytest.raises(LimitExceeded) as err:
        get_variables(model, three)
    assert err.value.limit is Limit.ITEMS
    assert str(err.value) == "3 entries in GetVariables; ItemsPerMessage[GetVariables] is 2"
    assert (
        len(
            get_variables(model, {"getVariableData": three["getVariableData"][:2]})[
                "getVariableResult"
            ]
        )
        == 2
    )
    two = {"setVariableData": [data("TxCtrlr", "EVConnectionTimeOut", attributeValue="1")] * 2}
    with pytest.raises(LimitExceeded):
        set_variables(model, two)
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 60  # nothing applied
    db.close()


def test_too_many_bytes_are_refused_as_a_whole(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path,
        device_model={
            "DeviceDataCtrlr": {
                "BytesPerMessage[GetVariables]": 200,
                "BytesPerMessage[SetVariables]": 200,
            }
        },
    )
    request = {"getVariableData": [data("TxCtrlr", "EVConnectionTimeOut")]}
    frame = json.dumps([2, "1", "GetVariables", request])
    assert get_variables(model, request, message_bytes=len(frame.encode()))
    with pytest.raises(LimitExceeded) as err:
        get_variables(model, request, message_bytes=201)
    assert err.value.limit is Limit.BYTES
    assert str(err.value) == "201 bytes in GetVariables; BytesPerMessage[GetVariables] is 200"
    setting = {"setVariableData": [data("TxCtrlr", "EVConnectionTimeOut", attributeValue="1")]}
    with pytest.raises(LimitExceeded):
        set_variables(model, setting, message_bytes=250)
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 60
    db.close()
