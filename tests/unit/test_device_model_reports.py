"""GetBaseReport and GetReport: what each report holds, the filters, and the NotifyReport split."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.ocpp.v201.device_model import (
    DeviceModel,
    LimitExceeded,
    Report,
    get_base_report,
    get_report,
    set_variables,
)
from firmware.ocpp.v201.device_model.reports import iter_entries, notify_reports
from tests.unit.device_model_fixtures import CALL, CALLRESULT, NOW, assert_valid, open_model


@pytest.fixture
def model(tmp_path: Path) -> Iterator[DeviceModel]:
    m, db = open_model(tmp_path, connectors=2)
    yield m
    db.close()


def base_report(model: DeviceModel, base: str, request_id: int = 7) -> Report:
    request = {"requestId": request_id, "reportBase": base}
    assert_valid(CALL, "GetBaseReport", request)
    report = get_base_report(model, request, now=NOW)
    checked(report, "GetBaseReport", request_id)
    return report


def custom_report(model: DeviceModel, request_id: int = 9, **request: Any) -> Report:
    request = {"requestId": request_id, **request}
    assert_valid(CALL, "GetReport", request)
    report = get_report(model, request, now=NOW)
    checked(report, "GetReport", request_id)
    return report


def checked(report: Report, action: str, request_id: int) -> None:
    """Schema-valid answer and NotifyReport requests, numbered 0.. with tbc on all but the last."""
    assert_valid(CALLRESULT, action, report.response)
    for n, request in enumerate(report.notify_reports):
        assert_valid(CALL, "NotifyReport", request)
        assert request["requestId"] == request_id
        assert request["seqNo"] == n
        assert request["tbc"] is (n < len(report.notify_reports) - 1)
        assert request["generatedAt"] == "2030-01-02T03:04:05.000Z"


def labels(report: Report) -> list[str]:
    out = []
    for entry in iter_entries(report):
        c, v = entry["component"], entry["variable"]
        name = c["name"] + "".join(
            f".{n}"
            for n in (c.get("evse", {}).get("id"), c.get("evse", {}).get("connectorId"))
            if n
        )
        out.append(f"{name}.{v['name']}" + (f"[{v['instance']}]" if "instance" in v else ""))
    return out


def test_full_inventory_holds_every_variable_and_attribute(model: DeviceModel) -> None:
    report = base_report(model, "FullInventory")
    assert report.response == {"status": "Accepted"}
    entries = list(iter_entries(report))
    assert len(entries) == len(model.catalog)
    by_label = dict(zip(labels(report), entries, strict=True))
    interval = by_label["SampledDataCtrlr.TxUpdatedInterval"]
    assert interval["variableAttribute"] == [
        {
            "type": "Actual",
            "value": "60",
            "mutability": "ReadWrite",
            "persistent": True,
            "constant": False,
        },
        {
            "type": "MinSet",
            "value": "0",
            "mutability": "ReadOnly",
            "persistent": True,
            "constant": False,
        },
        {
            "type": "MaxSet",
            "value": "86400",
            "mutability": "ReadOnly",
            "persistent": True,
            "constant": False,
        },
    ]
    assert interval["variableCharacteristics"] == {
        "dataType": "integer",
        "unit": "s",
        "minLimit": 0,
        "maxLimit": 86400,
        "supportsMonitoring": False,
    }
    assert by_label["Connector.2.1.ConnectorType"]["component"] == {
        "name": "Connector",
        "evse": {"id": 2, "connectorId": 1},
    }
    assert by_label["DeviceDataCtrlr.ItemsPerMessage[GetReport]"]["variable"] == {
        "name": "ItemsPerMessage",
        "instance": "GetReport",
    }
    assert "valuesList" in by_label["TxCtrlr.TxStartPoint"]["variableCharacteristics"]


def test_write_only_values_never_appear(model: DeviceModel) -> None:
    model.update("SecurityCtrlr", "BasicAuthPassword", "0123456789abcdef-secret")
    for base in ("FullInventory", "ConfigurationInventory"):
        report = base_report(model, base)
        assert "secret" not in json.dumps(report.notify_reports)
        entry = dict(zip(labels(report), iter_entries(report), strict=True))[
            "SecurityCtrlr.BasicAuthPassword"
        ]
        assert entry["variableAttribute"] == [
            {"type": "Actual", "mutability": "WriteOnly", "persistent": True, "constant": False}
        ]


def test_configuration_inventory_holds_what_the_csms_may_change(model: DeviceModel) -> None:
    report = base_report(model, "ConfigurationInventory")
    entries = list(iter_entries(report))
    assert entries
    for entry in entries:
        assert {a["mutability"] for a in entry["variableAttribute"]} <= {"ReadWrite", "WriteOnly"}
    found = labels(report)
    assert "OCPPCommCtrlr.HeartbeatInterval" in found
    assert "TxCtrlr.EVConnectionTimeOut" in found
    assert "ChargingStation.Model" not in found
    assert "EVSE.1.AvailabilityState" not in found
    heartbeat = dict(zip(found, entries, strict=True))["OCPPCommCtrlr.HeartbeatInterval"]
    assert [a["type"] for a in heartbeat["variableAttribute"]] == ["Actual"]  # MinSet/MaxSet: RO


def test_summary_inventory_holds_availability_and_problems(model: DeviceModel) -> None:
    assert labels(base_report(model, "SummaryInventory")) == [
        "ChargingStation.AvailabilityState",
        "EVSE.1.AvailabilityState",
        "Connector.1.1.AvailabilityState",
        "EVSE.2.AvailabilityState",
        "Connector.2.1.AvailabilityState",
    ]
    model.update("Connector.2.1", "Problem", "true")
    model.update("EVSE.2", "AvailabilityState", "Faulted")
    report = base_report(model, "SummaryInventory")
    assert labels(report)[-2:] == ["Connector.2.1.AvailabilityState", "Connector.2.1.Problem"]
    values = [e["variableAttribute"][0]["value"] for e in iter_entries(report)]
    assert values == ["Available", "Available", "Available", "Faulted", "Available", "true"]


def test_a_report_is_split_by_items_per_message(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path, device_model={"DeviceDataCtrlr": {"ItemsPerMessage[GetReport]": 4}}
    )
    report = base_report(model, "FullInventory", request_id=3)
    sizes = [len(r["reportData"]) for r in report.notify_reports]
    assert sum(sizes) == len(model.catalog)
    assert set(sizes[:-1]) == {4} and 1 <= sizes[-1] <= 4
    assert len(report.notify_reports) == -(-len(model.catalog) // 4)
    db.close()


def test_a_report_is_split_by_bytes_per_message(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path,
        device_model={
            "DeviceDataCtrlr": {
                "ItemsPerMessage[GetReport]": 1000,
                "BytesPerMessage[GetReport]": 2048,
            }
        },
    )
    report = base_report(model, "FullInventory")
    assert len(report.notify_reports) > 1
    for request in report.notify_reports:
        frame = json.dumps([2, "0" * 36, "NotifyReport", request], separators=(",", ":"))
        assert len(frame.encode()) <= 2048
    assert len(list(iter_entries(report))) == len(model.catalog)
    db.close()


def test_an_entry_larger_than_the_byte_limit_still_goes_alone() -> None:
    big = {
        "component": {"name": "X"},
        "variable": {"name": "Y"},
        "variableAttribute": [{"value": "v" * 500}],
    }
    small = {
        "component": {"name": "X"},
        "variable": {"name": "Z"},
        "variableAttribute": [{"value": "1"}],
    }
    requests = notify_reports(1, [small, big, small], now=NOW, items=10, max_bytes=300)
    assert [[e["variable"]["name"] for e in r["reportData"]] for r in requests] == [
        ["Z"],
        ["Y"],
        ["Z"],
    ]


def test_get_report_by_component_and_variable(model: DeviceModel) -> None:
    report = custom_report(
        model,
        componentVariable=[
            {"component": {"name": "TxCtrlr"}, "variable": {"name": "EVConnectionTimeOut"}},
            {"component": {"name": "ClockCtrlr"}},
        ],
    )
    assert report.response == {"status": "Accepted"}
    assert labels(report) == [
        "ClockCtrlr.DateTime",
        "ClockCtrlr.TimeSource",
        "TxCtrlr.EVConnectionTimeOut",
    ]


def test_get_report_filters_on_the_tiers_and_instances(model: DeviceModel) -> None:
    every_connector = custom_report(
        model,
        componentVariable=[
            {"component": {"name": "connector"}, "variable": {"name": "ConnectorType"}}
        ],
    )
    assert labels(every_connector) == ["Connector.1.1.ConnectorType", "Connector.2.1.ConnectorType"]
    one_evse = custom_report(
        model, componentVariable=[{"component": {"name": "EVSE", "evse": {"id": 2}}}]
    )
    assert set(labels(one_evse)) == {
        "EVSE.2.AvailabilityState",
        "EVSE.2.Available",
        "EVSE.2.Problem",
        "EVSE.2.SupplyPhases",
        "EVSE.2.Power",
    }
    connectors_of_evse = custom_report(
        model,
        componentVariable=[
            {
                "component": {"name": "Connector", "evse": {"id": 1}},
                "variable": {"name": "Available"},
            }
        ],
    )
    assert labels(connectors_of_evse) == ["Connector.1.1.Available"]
    every_instance = custom_report(
        model,
        componentVariable=[
            {"component": {"name": "DeviceDataCtrlr"}, "variable": {"name": "ItemsPerMessage"}}
        ],
    )
    assert labels(every_instance) == [
        "DeviceDataCtrlr.ItemsPerMessage[GetReport]",
        "DeviceDataCtrlr.ItemsPerMessage[GetVariables]",
        "DeviceDataCtrlr.ItemsPerMessage[SetVariables]",
    ]
    one_instance = custom_report(
        model,
        componentVariable=[
            {
                "component": {"name": "DeviceDataCtrlr"},
                "variable": {"name": "ItemsPerMessage", "instance": "getreport"},
            }
        ],
    )
    assert labels(one_instance) == ["DeviceDataCtrlr.ItemsPerMessage[GetReport]"]


def test_get_report_by_criteria(model: DeviceModel) -> None:
    problems = custom_report(model, componentCriteria=["Problem"])
    assert problems.response == {"status": "EmptyResultSet"}
    assert problems.notify_reports == ()
    model.update("EVSE.2", "Problem", "true")
    problems = custom_report(model, componentCriteria=["Problem"])
    assert {label.rsplit(".", 1)[0] for label in labels(problems)} == {"EVSE.2"}
    # A component without the criterion's variable counts as available and enabled.
    enabled = set(labels(custom_report(model, componentCriteria=["Enabled"])))
    assert "TxCtrlr.EVConnectionTimeOut" in enabled
    assert "AuthCacheCtrlr.Enabled" in enabled
    # The CSMS disables the authorization cache.
    set_variables(
        model,
        {
            "setVariableData": [
                {
                    "component": {"name": "AuthCacheCtrlr"},
                    "variable": {"name": "Enabled"},
                    "attributeValue": "false",
                }
            ]
        },
    )
    enabled = set(labels(custom_report(model, componentCriteria=["Enabled"])))
    assert not any(label.startswith("AuthCacheCtrlr.") for label in enabled)
    both = custom_report(model, componentCriteria=["Enabled", "Problem"])
    assert any(label.startswith("EVSE.2.") for label in labels(both))
    filtered = custom_report(
        model,
        componentVariable=[
            {"component": {"name": "AuthCacheCtrlr"}},
            {"component": {"name": "EVSE"}},
        ],
        componentCriteria=["Problem"],
    )
    assert {label.rsplit(".", 1)[0] for label in labels(filtered)} == {"EVSE.2"}


def test_get_report_without_a_match(model: DeviceModel) -> None:
    for request in (
        {"componentVariable": [{"component": {"name": "NoSuchCtrlr"}}]},
        {"componentVariable": [{"component": {"name": "TxCtrlr"}, "variable": {"name": "Nope"}}]},
        {"componentVariable": [{"component": {"name": "EVSE", "evse": {"id": 9}}}]},
    ):
        report = custom_report(model, **request)
        assert report.response == {"status": "EmptyResultSet"}
        assert report.notify_reports == ()


def test_get_report_without_filters_is_everything(model: DeviceModel) -> None:
    assert len(list(iter_entries(custom_report(model)))) == len(model.catalog)


def test_get_report_over_the_limits_is_refused(tmp_path: Path) -> None:
    model, db = open_model(
        tmp_path,
        device_model={
            "DeviceDataCtrlr": {"ItemsPerMessage[GetReport]": 2, "BytesPerMessage[GetReport]": 300}
        },
    )
    three = {"requestId": 1, "componentVariable": [{"component": {"name": "TxCtrlr"}}] * 3}
    with pytest.raises(LimitExceeded):
        get_report(model, three, now=NOW)
    with pytest.raises(LimitExceeded):
        get_report(model, {"requestId": 1}, now=NOW, message_bytes=301)
    assert get_report(model, {"requestId": 1}, now=NOW, message_bytes=300).response == {
        "status": "Accepted"
    }
    db.close()
