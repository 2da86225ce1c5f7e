"""The three tiers as components: ChargingStation, each EVSE and each connector.

Their built-in values come from the configuration (identity, board, connectors).
AvailabilityState, Problem and EVSE Power are states (read-only, not
persisted): a 2.0.1 station keeps AvailabilityState and Problem from its
statuses (``ocpp/v201/states.py``); EVSE Power keeps its built-in value. The
rest describe the hardware and never change while the station runs (constant).
"""

from __future__ import annotations

from collections.abc import Iterator

from ocpp.v201.enums import ConnectorEnumType, DataEnumType

from firmware.ocpp.v201.device_model.addressing import Component
from firmware.ocpp.v201.device_model.catalog import (
    MAX_SET,
    RO,
    VariableSpec,
    define,
    with_attribute,
)
from firmware.ocpp.v201.device_model.topology import Station

# AvailabilityState: the connector statuses of StatusNotification (ConnectorStatusEnumType).
AVAILABILITY_STATES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
CONNECTOR_TYPES = tuple(c.value for c in ConnectorEnumType)
SOCKET_TYPE2 = ConnectorEnumType.s_type2.value  # an outlet with a cable lock
CABLE_TYPE2 = ConnectorEnumType.c_type2.value  # a fixed cable

BOOLEAN = DataEnumType.boolean
INTEGER = DataEnumType.integer


def _common(component: Component, phases: int) -> Iterator[VariableSpec]:
    """What ChargingStation, EVSE and Connector all have."""
    yield define(
        component,
        "AvailabilityState",
        DataEnumType.option_list,
        "Available",
        mutability=RO,
        values=AVAILABILITY_STATES,
    )
    yield define(component, "Available", BOOLEAN, "true", mutability=RO, constant=True)
    yield define(component, "Problem", BOOLEAN, "false", mutability=RO)
    yield define(
        component,
        "SupplyPhases",
        INTEGER,
        str(phases),
        mutability=RO,
        min_limit=0,
        max_limit=3,
        constant=True,
    )


def charging_station(station: Station) -> Iterator[VariableSpec]:
    cs = Component("ChargingStation")
    yield from _common(cs, station.phases)
    text = DataEnumType.string
    yield define(cs, "Model", text, station.model, mutability=RO, max_limit=20, constant=True)
    yield define(cs, "VendorName", text, station.vendor, mutability=RO, max_limit=50, constant=True)
    if station.serial_number is not None:
        yield define(
            cs,
            "SerialNumber",
            text,
            station.serial_number,
            mutability=RO,
            max_limit=25,
            constant=True,
        )
    if station.firmware_version is not None:
        yield define(
            cs,
            "VersionNumber",
            text,
            station.firmware_version,
            mutability=RO,
            max_limit=50,
            constant=True,
        )


def evses(station: Station) -> Iterator[VariableSpec]:
    for evse in station.topology:
        component = Component("EVSE", evse=evse.id)
        yield from _common(component, station.phases)
        # maxLimit: the most this EVSE can deliver (required by OCPP); Actual: the power
        # now; MaxSet: the most it may deliver now (the smart charging limit).
        power = define(
            component,
            "Power",
            DataEnumType.decimal,
            "0",
            mutability=RO,
            unit="W",
            min_limit=0,
            max_limit=station.max_power_w,
        )
        yield with_attribute(power, MAX_SET, _decimal(station.max_power_w), persistent=False)
        for connector_id in evse.connector_ids:
            yield from connector(
                station, Component("Connector", evse=evse.id, connector=connector_id)
            )


def connector(station: Station, component: Component) -> Iterator[VariableSpec]:
    yield from _common(component, station.phases)
    yield define(
        component,
        "ConnectorType",
        DataEnumType.option_list,
        SOCKET_TYPE2 if station.has_lock else CABLE_TYPE2,
        mutability=RO,
        values=CONNECTOR_TYPES,
        constant=True,
    )


def _decimal(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
