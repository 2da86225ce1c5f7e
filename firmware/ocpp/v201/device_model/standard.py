"""The catalog of a station: its controller components and its three tiers."""

from __future__ import annotations

from firmware.ocpp.v201.device_model.catalog import Catalog
from firmware.ocpp.v201.device_model.controllers import controllers
from firmware.ocpp.v201.device_model.tiers import charging_station, evses
from firmware.ocpp.v201.device_model.topology import Station


def build_catalog(station: Station) -> Catalog:
    """Every component and variable of ``station``, with built-in values."""
    return Catalog([*controllers(station), *charging_station(station), *evses(station)])
