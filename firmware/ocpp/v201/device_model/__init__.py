"""The OCPP 2.0.1 device model: components, variables, their values and the CSMS's access.

- ``catalog``, ``controllers``, ``tiers``, ``standard``: what the station has;
- ``topology``: EVSEs and connectors from the configuration;
- ``overrides``: the configuration file's ``device_model`` section;
- ``model`` and ``store``: current values, persisted, with typed reads and changes;
- ``operations``: GetVariables and SetVariables; ``reports``: GetBaseReport, GetReport
  and their NotifyReport requests;
- ``startup``: the model of a configured station.
"""

from firmware.ocpp.v201.device_model.addressing import AddressError, Component, Variable
from firmware.ocpp.v201.device_model.catalog import (
    ACTUAL,
    MAX_SET,
    MIN_SET,
    TARGET,
    AttributeSpec,
    Catalog,
    Characteristics,
    VariableSpec,
)
from firmware.ocpp.v201.device_model.errors import DeviceModelError
from firmware.ocpp.v201.device_model.model import Change, DeviceModel, Source
from firmware.ocpp.v201.device_model.operations import (
    Limit,
    LimitExceeded,
    get_variables,
    set_variables,
)
from firmware.ocpp.v201.device_model.overrides import Override, resolve_overrides
from firmware.ocpp.v201.device_model.reports import Report, get_base_report, get_report
from firmware.ocpp.v201.device_model.standard import build_catalog
from firmware.ocpp.v201.device_model.startup import open_device_model, resolve
from firmware.ocpp.v201.device_model.topology import Evse, Station, Topology, describe, layout
from firmware.ocpp.v201.device_model.values import InvalidValue

__all__ = [
    "ACTUAL",
    "MAX_SET",
    "MIN_SET",
    "TARGET",
    "AddressError",
    "AttributeSpec",
    "Catalog",
    "Change",
    "Characteristics",
    "Component",
    "DeviceModel",
    "DeviceModelError",
    "Evse",
    "InvalidValue",
    "Limit",
    "LimitExceeded",
    "Override",
    "Report",
    "Source",
    "Station",
    "Topology",
    "Variable",
    "VariableSpec",
    "build_catalog",
    "describe",
    "get_base_report",
    "get_report",
    "get_variables",
    "layout",
    "open_device_model",
    "resolve",
    "resolve_overrides",
    "set_variables",
]
