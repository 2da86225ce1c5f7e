"""The ``device_model`` section of the configuration file: accepted values and every refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware import preflight
from firmware.config import load_config
from firmware.errors import ConfigError
from firmware.ocpp.v201.device_model import ACTUAL, MAX_SET, Component, Variable, resolve
from tests.unit.device_model_fixtures import station_config


def overrides(section: Any, **sections: Any) -> dict[tuple[str, str], str]:
    resolved = resolve(station_config(device_model=section, **sections))
    return {(o.spec.label, o.attribute.value): o.value for o in resolved.overrides}


def refusal(section: Any, **sections: Any) -> str:
    with pytest.raises(ConfigError) as err:
        resolve(station_config(device_model=section, **sections))
    return str(err.value)


def test_the_documented_example_is_accepted() -> None:
    section = {
        "TxCtrlr": {"EVConnectionTimeOut": 30, "StopTxOnInvalidId": True},
        "DeviceDataCtrlr": {"ItemsPerMessage[GetReport]": 4},
        "EVSE.1": {"AvailabilityState": "Available"},
        "Connector.1.1": {"ConnectorType": "cType2"},
        "SampledDataCtrlr": {"TxUpdatedInterval": {"Actual": 10, "MaxSet": 3600}},
    }
    assert overrides(section) == {
        ("TxCtrlr.EVConnectionTimeOut", "Actual"): "30",
        ("TxCtrlr.StopTxOnInvalidId", "Actual"): "true",
        ("DeviceDataCtrlr.ItemsPerMessage[GetReport]", "Actual"): "4",
        ("EVSE.1.AvailabilityState", "Actual"): "Available",
        ("Connector.1.1.ConnectorType", "Actual"): "cType2",
        ("SampledDataCtrlr.TxUpdatedInterval", "Actual"): "10",
        ("SampledDataCtrlr.TxUpdatedInterval", "MaxSet"): "3600",
    }


def test_values_are_kept_as_ocpp_text() -> None:
    section = {
        "txctrlr": {
            "TxStartPoint": "powerpathclosed",
            "TxStopPoint": ["Authorized", "EVConnected"],
            "stoptxoninvalidid": False,
        },
        "SmartChargingCtrlr": {"LimitChangeSignificance": 0.00001},
        "OCPPCommCtrlr": {"NetworkConfigurationPriority": "2,1"},
        "SecurityCtrlr": {"OrganizationName": 42, "BasicAuthPassword": "0123456789abcdef"},
        "Connector.1.1": {"connectortype": "CTYPE2"},
        "SampledDataCtrlr": {"TxUpdatedInterval": {"maxset": 600}, "TxEndedMeasurands": []},
    }
    assert overrides(section) == {
        ("TxCtrlr.TxStartPoint", "Actual"): "PowerPathClosed",
        ("TxCtrlr.TxStopPoint", "Actual"): "Authorized,EVConnected",
        ("TxCtrlr.StopTxOnInvalidId", "Actual"): "false",
        ("SmartChargingCtrlr.LimitChangeSignificance", "Actual"): "0.00001",
        ("OCPPCommCtrlr.NetworkConfigurationPriority", "Actual"): "2,1",
        ("SecurityCtrlr.OrganizationName", "Actual"): "42",
        ("SecurityCtrlr.BasicAuthPassword", "Actual"): "0123456789abcdef",
        ("Connector.1.1.ConnectorType", "Actual"): "cType2",
        ("SampledDataCtrlr.TxUpdatedInterval", "MaxSet"): "600",
        ("SampledDataCtrlr.TxEndedMeasurands", "Actual"): "",
    }


def test_read_only_variables_may_be_set_by_the_file() -> None:
    section = {
        "ChargingStation": {"Model": "Wallbox"},
        "OCPPCommCtrlr": {"FileTransferProtocols": "HTTPS"},
        "SecurityCtrlr": {"SecurityProfile": 2},
    }
    assert overrides(section) == {
        ("ChargingStation.Model", "Actual"): "Wallbox",
        ("OCPPCommCtrlr.FileTransferProtocols", "Actual"): "HTTPS",
        ("SecurityCtrlr.SecurityProfile", "Actual"): "2",
    }


def test_an_empty_section_and_empty_components_set_nothing() -> None:
    assert overrides(None) == {}
    assert overrides({"TxCtrlr": None}) == {}


# The file's section, then the one line that refuses it.
REFUSED: list[tuple[str, Any, str]] = [
    (
        "unknown component",
        {"TxCtrl": {"EVConnectionTimeOut": 30}},
        "device_model.TxCtrl: unknown component, did you mean 'TxCtrlr'?",
    ),
    (
        "unknown component without a close name",
        {"Zebra": {"A": 1}},
        "device_model.Zebra: unknown component (known: AlignedDataCtrlr, AuthCtrlr, "
        "AuthCacheCtrlr, ClockCtrlr, DeviceDataCtrlr, LocalAuthListCtrlr, OCPPCommCtrlr, "
        "ReservationCtrlr, SampledDataCtrlr, SecurityCtrlr, SmartChargingCtrlr, TxCtrlr, "
        "ChargingStation, EVSE, Connector)",
    ),
    (
        "EVSE the station does not have",
        {"EVSE.3": {"AvailabilityState": "Available"}},
        "device_model.EVSE.3: unknown component: this station has EVSE.1, EVSE.2",
    ),
    (
        "EVSE without its id",
        {"EVSE": {"AvailabilityState": "Available"}},
        "device_model.EVSE: unknown component: this station has EVSE.1, EVSE.2",
    ),
    (
        "connector without its id",
        {"Connector.1": {"ConnectorType": "cType2"}},
        "device_model.Connector.1: unknown component: this station has Connector.1.1, "
        "Connector.2.1",
    ),
    (
        "controller on an EVSE",
        {"TxCtrlr.1": {"EVConnectionTimeOut": 30}},
        "device_model.TxCtrlr.1: unknown component: this station has TxCtrlr",
    ),
    (
        "unreadable component",
        {"EVSE.one": {"Available": True}},
        "device_model.EVSE.one: cannot read 'EVSE.one' as a component: after the name come at "
        "most an EVSE id and a connector id, each a number from 1 (EVSE.1, Connector.1.1)",
    ),
    (
        "unknown variable",
        {"TxCtrlr": {"EVConnectionTimeOutt": 30}},
        "device_model.TxCtrlr.EVConnectionTimeOutt: unknown variable of TxCtrlr, "
        "did you mean 'EVConnectionTimeOut'?",
    ),
    (
        "variable without its instance",
        {"DeviceDataCtrlr": {"ItemsPerMessage": 4}},
        "device_model.DeviceDataCtrlr.ItemsPerMessage: unknown variable of DeviceDataCtrlr: "
        "this station has ItemsPerMessage[GetReport], ItemsPerMessage[GetVariables], "
        "ItemsPerMessage[SetVariables]",
    ),
    (
        "unreadable variable",
        {"TxCtrlr": {"EVConnectionTimeOut[": 30}},
        "device_model.TxCtrlr.EVConnectionTimeOut[: cannot read 'EVConnectionTimeOut[' as a "
        "variable (Name or Name[instance])",
    ),
    (
        "not an integer",
        {"TxCtrlr": {"EVConnectionTimeOut": "x"}},
        "device_model.TxCtrlr.EVConnectionTimeOut: must be an integer of at least 0, got 'x'",
    ),
    (
        "a boolean is no integer",
        {"TxCtrlr": {"EVConnectionTimeOut": True}},
        "device_model.TxCtrlr.EVConnectionTimeOut: must be an integer of at least 0, got True",
    ),
    (
        "below the minimum",
        {"TxCtrlr": {"EVConnectionTimeOut": -1}},
        "device_model.TxCtrlr.EVConnectionTimeOut: must be an integer of at least 0, got -1",
    ),
    (
        "above the maximum",
        {"OCPPCommCtrlr": {"HeartbeatInterval": 86401}},
        "device_model.OCPPCommCtrlr.HeartbeatInterval: must be an integer between 0 and 86400, "
        "got 86401",
    ),
    (
        "not a boolean",
        {"TxCtrlr": {"StopTxOnInvalidId": "yes"}},
        "device_model.TxCtrlr.StopTxOnInvalidId: must be true or false, got 'yes'",
    ),
    (
        "not a decimal",
        {"SmartChargingCtrlr": {"LimitChangeSignificance": "ten"}},
        "device_model.SmartChargingCtrlr.LimitChangeSignificance: must be a decimal number of "
        "at least 0, got 'ten'",
    ),
    (
        "not a finite number",
        {"SmartChargingCtrlr": {"LimitChangeSignificance": float("inf")}},
        "device_model.SmartChargingCtrlr.LimitChangeSignificance: must be a finite number, got inf",
    ),
    (
        "outside the values list",
        {"Connector.1.1": {"ConnectorType": "Type2"}},
        "device_model.Connector.1.1.ConnectorType: must be one of cCCS1, cCCS2, cChaoJi, cG105, "
        "cGBT, cTesla, cType1, cType2, s309-1P-16A, s309-1P-32A, s309-3P-16A, s309-3P-32A, "
        "sBS1361, sCEE-7-7, sType2, sType3, OppCharge, Other1PhMax16A, Other1PhOver16A, Other3Ph, "
        "Pan, wInductive, wResonant, Undetermined, Unknown, got 'Type2'",
    ),
    (
        "a list member the station cannot measure",
        {"SampledDataCtrlr": {"TxUpdatedMeasurands": ["Energy.Active.Import.Register", "RPM"]}},
        "device_model.SampledDataCtrlr.TxUpdatedMeasurands: must be a comma-separated list of "
        "distinct members of Current.Import, Current.Offered, Energy.Active.Import.Interval, "
        "Energy.Active.Import.Register, Frequency, Power.Active.Import, Power.Factor, "
        "Power.Offered, SoC, Voltage, got ['Energy.Active.Import.Register', 'RPM']",
    ),
    (
        "a list member twice",
        {"TxCtrlr": {"TxStopPoint": "EVConnected,EVConnected"}},
        "device_model.TxCtrlr.TxStopPoint: must be a comma-separated list of distinct members "
        "of EVConnected, Authorized, PowerPathClosed, "
        "got 'EVConnected,EVConnected'",
    ),
    (
        "a list inside a list",
        {"TxCtrlr": {"TxStopPoint": [["EVConnected"]]}},
        "device_model.TxCtrlr.TxStopPoint: a list holds values without commas, "
        "got [['EVConnected']]",
    ),
    (
        "too long",
        {"ChargingStation": {"Model": "M" * 21}},
        f"device_model.ChargingStation.Model: must be at most 20 characters long, got '{'M' * 21}'",
    ),
    (
        "no value",
        {"TxCtrlr": {"EVConnectionTimeOut": None}},
        "device_model.TxCtrlr.EVConnectionTimeOut: must be a string, number, boolean or a list "
        "of them, got None",
    ),
    (
        "a secret is not repeated",
        {"SecurityCtrlr": {"BasicAuthPassword": "short"}},
        "device_model.SecurityCtrlr.BasicAuthPassword: must be 16 to 40 printable ASCII "
        "characters without blanks",
    ),
    (
        "unknown attribute",
        {"SampledDataCtrlr": {"TxUpdatedInterval": {"Maxset": 3600, "MaxSte": 1}}},
        "device_model.SampledDataCtrlr.TxUpdatedInterval.MaxSte: unknown attribute, "
        "did you mean 'MaxSet'?",
    ),
    (
        "attribute the variable has not",
        {"TxCtrlr": {"EVConnectionTimeOut": {"Target": 30}}},
        "device_model.TxCtrlr.EVConnectionTimeOut.Target: EVConnectionTimeOut has no Target "
        "attribute: it has Actual",
    ),
    (
        "empty attributes",
        {"TxCtrlr": {"EVConnectionTimeOut": {}}},
        "device_model.TxCtrlr.EVConnectionTimeOut: give a value, or a mapping of attributes "
        "(it has Actual)",
    ),
    (
        "attribute value out of limits",
        {"SampledDataCtrlr": {"TxUpdatedInterval": {"MaxSet": 100000}}},
        "device_model.SampledDataCtrlr.TxUpdatedInterval.MaxSet: must be an integer between 0 "
        "and 86400, got 100000",
    ),
    (
        "Actual above MaxSet",
        {"SampledDataCtrlr": {"TxUpdatedInterval": {"Actual": 900, "MaxSet": 600}}},
        "device_model.SampledDataCtrlr.TxUpdatedInterval: the Actual value 900 is above MaxSet 600",
    ),
    (
        "built-in Actual above the file's MaxSet",
        {"SampledDataCtrlr": {"TxUpdatedInterval": {"MaxSet": 30}}},
        "device_model.SampledDataCtrlr.TxUpdatedInterval: the Actual value 60 is above MaxSet 30",
    ),
    (
        "MinSet above MaxSet",
        {"OCPPCommCtrlr": {"HeartbeatInterval": {"MinSet": 600, "MaxSet": 60, "Actual": 60}}},
        "device_model.OCPPCommCtrlr.HeartbeatInterval: MinSet 600 is above MaxSet 60",
    ),
    (
        "the same variable twice",
        {"TxCtrlr": {"EVConnectionTimeOut": 30}, "txctrlr": {"evconnectiontimeout": 40}},
        "device_model.txctrlr.evconnectiontimeout: set twice (also as "
        "device_model.TxCtrlr.EVConnectionTimeOut)",
    ),
]


@pytest.mark.parametrize(("section", "line"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_each_problem_is_one_line_naming_the_variable(section: Any, line: str) -> None:
    assert refusal(section, connectors=2) == line


# What config.py refuses before the device model is asked: the shape of the section.
SHAPES: list[tuple[str, str, str]] = [
    (
        "not a mapping",
        "device_model: [TxCtrlr]\n",
        "device_model: must be a mapping, got ['TxCtrlr']",
    ),
    (
        "component not a mapping",
        "device_model: {TxCtrlr: 30}\n",
        "device_model.TxCtrlr: must be a mapping, got 30",
    ),
    (
        "component name not a string",
        "device_model: {1: {A: 1}}\n",
        "device_model: component names must be strings, got 1",
    ),
    (
        "variable name not a string",
        "device_model: {TxCtrlr: {1: 2}}\n",
        "device_model.TxCtrlr: variable names must be strings, got 1",
    ),
]


@pytest.mark.parametrize(("text", "line"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_the_file_refuses_a_section_of_the_wrong_shape(
    tmp_path: Path, text: str, line: str
) -> None:
    path = tmp_path / "cp.yaml"
    path.write_text("ocpp: {csms_url: 'ws://h/ocpp', charge_point_id: CP-1}\n" + text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: {line}"


def test_start_up_refuses_what_the_device_model_refuses(tmp_path: Path) -> None:
    config = station_config(
        device_model={"TxCtrlr": {"EVConnectionTimeOut": "x"}}, state_dir=str(tmp_path / "s")
    )
    with pytest.raises(ConfigError, match=r"^device_model\.TxCtrlr\.EVConnectionTimeOut: "):
        preflight.check(config)
    assert not (tmp_path / "s").exists()


def test_a_good_section_is_checked_and_noticed(tmp_path: Path) -> None:
    config = station_config(
        device_model={"SampledDataCtrlr": {"TxUpdatedInterval": {"Actual": 10, "MaxSet": 3600}}},
        state_dir=str(tmp_path / "s"),
    )
    assert preflight.check(config) == (preflight.DEVICE_MODEL_NOTICE,)
    assert preflight.check(station_config(state_dir=str(tmp_path / "s"))) == ()


def test_overrides_become_the_values_at_start(tmp_path: Path) -> None:
    from tests.unit.device_model_fixtures import open_model

    model, db = open_model(
        tmp_path,
        device_model={
            "TxCtrlr": {"EVConnectionTimeOut": 30},
            "SampledDataCtrlr": {"TxUpdatedInterval": {"Actual": 10, "MaxSet": 3600}},
        },
    )
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 30
    assert model.get_int("SampledDataCtrlr", "TxUpdatedInterval") == 10
    assert (
        model.get_int(Component("SampledDataCtrlr"), Variable("TxUpdatedInterval"), MAX_SET) == 3600
    )
    assert model.get_str("TxCtrlr", "EVConnectionTimeOut", ACTUAL) == "30"
    db.close()
