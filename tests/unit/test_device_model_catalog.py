"""The device model's catalog: required variables, built-in values, names, the three tiers."""

from __future__ import annotations

import pytest
from ocpp.v201.enums import DataEnumType, MutabilityEnumType

from firmware.ocpp.v201.device_model import (
    ACTUAL,
    AddressError,
    Catalog,
    Component,
    Variable,
    build_catalog,
    describe,
    layout,
)
from firmware.ocpp.v201.device_model.catalog import define
from firmware.ocpp.v201.device_model.overrides import bounds_problem
from firmware.ocpp.v201.device_model.values import check_characteristics, check_value
from tests.unit.device_model_fixtures import station_config

# Every component and variable OCPP 2.0.1 Part 2 marks "Required" in the referenced
# components and variables of the functional blocks this station implements (A, B, C,
# D, E, F, G, H, J, K): (component, variable, variable instance).
REQUIRED: list[tuple[str, str, str | None]] = [
    ("AlignedDataCtrlr", "Interval", None),
    ("AlignedDataCtrlr", "Measurands", None),
    ("AlignedDataCtrlr", "TxEndedInterval", None),
    ("AlignedDataCtrlr", "TxEndedMeasurands", None),
    ("AuthCtrlr", "AuthorizeRemoteStart", None),
    ("AuthCtrlr", "LocalAuthorizeOffline", None),
    ("AuthCtrlr", "LocalPreAuthorize", None),
    ("ChargingStation", "AvailabilityState", None),
    ("ChargingStation", "Available", None),
    ("ChargingStation", "SupplyPhases", None),
    ("ClockCtrlr", "DateTime", None),
    ("ClockCtrlr", "TimeSource", None),
    ("DeviceDataCtrlr", "BytesPerMessage", "GetReport"),
    ("DeviceDataCtrlr", "BytesPerMessage", "GetVariables"),
    ("DeviceDataCtrlr", "BytesPerMessage", "SetVariables"),
    ("DeviceDataCtrlr", "ItemsPerMessage", "GetReport"),
    ("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables"),
    ("DeviceDataCtrlr", "ItemsPerMessage", "SetVariables"),
    ("LocalAuthListCtrlr", "BytesPerMessage", None),
    ("LocalAuthListCtrlr", "Entries", None),
    ("LocalAuthListCtrlr", "ItemsPerMessage", None),
    ("OCPPCommCtrlr", "FileTransferProtocols", None),
    ("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"),
    ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
    ("OCPPCommCtrlr", "MessageTimeout", "Default"),
    ("OCPPCommCtrlr", "NetworkConfigurationPriority", None),
    ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", None),
    ("OCPPCommCtrlr", "OfflineThreshold", None),
    ("OCPPCommCtrlr", "ResetRetries", None),
    ("OCPPCommCtrlr", "RetryBackOffRandomRange", None),
    ("OCPPCommCtrlr", "RetryBackOffRepeatTimes", None),
    ("OCPPCommCtrlr", "RetryBackOffWaitMinimum", None),
    ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", None),
    ("OCPPCommCtrlr", "WebSocketPingInterval", None),
    ("SampledDataCtrlr", "TxEndedInterval", None),
    ("SampledDataCtrlr", "TxEndedMeasurands", None),
    ("SampledDataCtrlr", "TxStartedMeasurands", None),
    ("SampledDataCtrlr", "TxUpdatedInterval", None),
    ("SampledDataCtrlr", "TxUpdatedMeasurands", None),
    ("SecurityCtrlr", "CertificateEntries", None),
    ("SecurityCtrlr", "Identity", None),
    ("SecurityCtrlr", "OrganizationName", None),
    ("SecurityCtrlr", "SecurityProfile", None),
    ("SmartChargingCtrlr", "Entries", "ChargingProfiles"),
    ("SmartChargingCtrlr", "LimitChangeSignificance", None),
    ("SmartChargingCtrlr", "PeriodsPerSchedule", None),
    ("SmartChargingCtrlr", "ProfileStackLevel", None),
    ("SmartChargingCtrlr", "RateUnit", None),
    ("TxCtrlr", "EVConnectionTimeOut", None),
    ("TxCtrlr", "StopTxOnEVSideDisconnect", None),
    ("TxCtrlr", "StopTxOnInvalidId", None),
    ("TxCtrlr", "TxStartPoint", None),
    ("TxCtrlr", "TxStopPoint", None),
]
# What each EVSE and each connector must have.
REQUIRED_EVSE = ["AvailabilityState", "Available", "Power", "SupplyPhases"]
REQUIRED_CONNECTOR = ["AvailabilityState", "Available", "ConnectorType", "SupplyPhases"]
# Asked for besides (optional in OCPP): the variables a CSMS commonly reads or sets.
ALSO: list[tuple[str, str, str | None]] = [
    ("AuthCacheCtrlr", "Enabled", None),
    ("AuthCacheCtrlr", "LifeTime", None),
    ("AuthCacheCtrlr", "Policy", None),
    ("AuthCacheCtrlr", "Storage", None),
    ("AuthCtrlr", "MasterPassGroupId", None),
    ("AuthCtrlr", "OfflineTxForUnknownIdEnabled", None),
    ("ChargingStation", "Model", None),
    ("ChargingStation", "VendorName", None),
    ("DeviceDataCtrlr", "ConfigurationValueSize", None),
    ("DeviceDataCtrlr", "ReportingValueSize", None),
    ("LocalAuthListCtrlr", "Enabled", None),
    ("LocalAuthListCtrlr", "Storage", None),
    ("OCPPCommCtrlr", "HeartbeatInterval", None),
    ("ReservationCtrlr", "Enabled", None),
    ("ReservationCtrlr", "NonEvseSpecific", None),
    ("SecurityCtrlr", "BasicAuthPassword", None),
    ("SecurityCtrlr", "CertSigningRepeatTimes", None),
    ("SecurityCtrlr", "CertSigningWaitMinimum", None),
    ("TxCtrlr", "MaxEnergyOnInvalidId", None),
]


def catalog(**sections: object) -> Catalog:
    return build_catalog(describe(station_config(**sections)))


@pytest.mark.parametrize(("component", "name", "instance"), REQUIRED + ALSO, ids=lambda v: str(v))
def test_every_required_variable_is_there_with_a_value(
    component: str, name: str, instance: str | None
) -> None:
    spec = catalog().find(Component(component), Variable(name, instance))
    assert spec is not None
    assert ACTUAL in spec.attributes


def test_every_evse_and_connector_has_its_required_variables() -> None:
    c = catalog(connectors=3)
    for evse in (1, 2, 3):
        for name in REQUIRED_EVSE:
            assert c.find(Component("EVSE", evse=evse), Variable(name)) is not None
        for name in REQUIRED_CONNECTOR:
            assert c.find(Component("Connector", evse=evse, connector=1), Variable(name))
    assert c.component(Component("EVSE", evse=4)) is None
    assert c.component(Component("Connector", evse=1, connector=2)) is None


@pytest.mark.parametrize(
    "sections",
    [
        {},
        {"connectors": 4, "board": {"phases": 1, "has_lock": False, "has_bms": False}},
        {"ocpp": {"password": "0123456789abcdef", "response_timeout_s": 0.2}},
    ],
    ids=["default", "fixed cable, one phase", "password"],
)
def test_built_in_values_fit_their_own_characteristics(sections: dict[str, object]) -> None:
    for spec in catalog(**sections):
        values = {}
        for kind, attribute in spec.attributes.items():
            if kind is ACTUAL:
                assert check_value(spec, attribute.default) == attribute.default, spec.label
            else:
                assert check_characteristics(spec.characteristics, attribute.default) == (
                    attribute.default
                ), spec.label
            values[kind] = attribute.default
        assert bounds_problem(spec, values) is None, spec.label


def test_the_catalog_fits_the_messages_that_carry_it() -> None:
    for spec in catalog(connectors=16):
        for name in (spec.component.name, spec.variable.name, spec.variable.instance or ""):
            assert len(name) <= 50
        characteristics = spec.characteristics
        assert len(",".join(characteristics.values_list)) <= 1000  # valuesList: string(1000)
        assert characteristics.unit is None or len(characteristics.unit) <= 16
        assert characteristics.supports_monitoring is False  # no monitoring (N) yet
        if characteristics.values_list:
            assert characteristics.data_type in (
                DataEnumType.option_list,
                DataEnumType.member_list,
                DataEnumType.sequence_list,
            )
        for attribute in spec.attributes.values():
            assert len(attribute.default) <= 2500
            if attribute.mutability is MutabilityEnumType.write_only:
                assert attribute.default == ""  # nothing secret is built in


def test_build_time_values_come_from_the_configuration() -> None:
    c = catalog(
        identity={"vendor": "ACME", "model": "Wallbox 7", "firmware_version": "2.3.4"},
        connectors=2,
        board={"phases": 1, "max_current_a": 16, "nominal_voltage_v": 230, "has_lock": False},
        ocpp={"charge_point_id": "CP-77", "response_timeout_s": 7.5, "max_frame_bytes": 65536},
    )

    def value(component: Component, name: str, instance: str | None = None) -> str:
        return c.get(component, Variable(name, instance)).attributes[ACTUAL].default

    cs = Component("ChargingStation")
    assert value(cs, "VendorName") == "ACME"
    assert value(cs, "Model") == "Wallbox 7"
    assert value(cs, "VersionNumber") == "2.3.4"
    assert c.find(cs, Variable("SerialNumber")) is None  # the file gives none
    assert value(cs, "SupplyPhases") == "1"
    assert value(Component("SecurityCtrlr"), "Identity") == "CP-77"
    assert value(Component("OCPPCommCtrlr"), "MessageTimeout", "Default") == "8"
    assert value(Component("DeviceDataCtrlr"), "BytesPerMessage", "GetVariables") == "65536"
    power = c.get(Component("EVSE", evse=2), Variable("Power"))
    assert power.characteristics.max_limit == 16 * 230
    assert power.characteristics.unit == "W"
    connector = Component("Connector", evse=2, connector=1)
    assert value(connector, "ConnectorType") == "cType2"  # no lock: a fixed cable
    assert value(connector, "SupplyPhases") == "1"
    unlock = c.get(Component("OCPPCommCtrlr"), Variable("UnlockOnEVSideDisconnect"))
    assert unlock.attributes[ACTUAL].mutability is MutabilityEnumType.read_only
    assert unlock.attributes[ACTUAL].default == "false"
    socket = catalog().get(Component("Connector", evse=1, connector=1), Variable("ConnectorType"))
    assert socket.attributes[ACTUAL].default == "sType2"


def test_security_profile_follows_the_password() -> None:
    profile = Component("SecurityCtrlr"), Variable("SecurityProfile")
    assert catalog().get(*profile).attributes[ACTUAL].default == "0"
    with_password = catalog(ocpp={"password": "0123456789abcdef"})
    assert with_password.get(*profile).attributes[ACTUAL].default == "1"


def test_measurand_lists_offer_what_the_station_can_sample() -> None:
    tx_updated = Component("SampledDataCtrlr"), Variable("TxUpdatedMeasurands")
    with_bms = catalog().get(*tx_updated).characteristics.values_list
    without = catalog(board={"has_bms": False}).get(*tx_updated).characteristics.values_list
    assert "SoC" in with_bms and "SoC" not in without
    assert "Energy.Active.Import.Register" in without
    assert "Temperature" not in with_bms  # not an OCPP 2.0.1 measurand


def test_one_evse_per_connector_and_back() -> None:
    topology = layout(3)
    assert [(e.id, e.station_connectors) for e in topology] == [(1, (1,)), (2, (2,)), (3, (3,))]
    assert topology.address(2) == (2, 1)
    assert topology.station_connector(3, 1) == 3
    with pytest.raises(KeyError):
        topology.address(4)
    with pytest.raises(KeyError):
        topology.station_connector(1, 2)


@pytest.mark.parametrize(
    ("text", "component"),
    [
        ("TxCtrlr", Component("TxCtrlr")),
        ("EVSE.2", Component("EVSE", evse=2)),
        ("Connector.1.2", Component("Connector", evse=1, connector=2)),
        ("Meter[Main]", Component("Meter", "Main")),
        ("Meter[Main].3", Component("Meter", "Main", evse=3)),
    ],
)
def test_component_names_read_and_write(text: str, component: Component) -> None:
    assert Component.parse(text) == component
    assert str(component) == text
    assert Component.from_json(component.to_json()) == component


@pytest.mark.parametrize("text", ["", "EVSE.0", "EVSE.x", "Connector.1.1.1", "EVSE.", "A[b"])
def test_unreadable_component_names(text: str) -> None:
    with pytest.raises(AddressError):
        Component.parse(text)


def test_variable_names_and_case() -> None:
    assert Variable.parse("ItemsPerMessage[GetReport]") == Variable("ItemsPerMessage", "GetReport")
    assert (
        Variable("itemspermessage", "getreport").key()
        == Variable.parse("ItemsPerMessage[GetReport]").key()
    )
    c = catalog()
    found = c.find(Component("txctrlr"), Variable("evconnectiontimeout"))
    assert found is not None and found.label == "TxCtrlr.EVConnectionTimeOut"


def test_a_variable_defined_twice_is_a_programming_error() -> None:
    spec = define(Component("TxCtrlr"), "EVConnectionTimeOut", DataEnumType.integer, "1")
    with pytest.raises(ValueError, match="defined twice"):
        Catalog([spec, spec])
