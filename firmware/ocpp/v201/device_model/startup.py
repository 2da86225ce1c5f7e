"""The device model of a configured station: what start-up checks and what it opens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from firmware.config import Config
from firmware.ocpp.v201.device_model.catalog import Catalog
from firmware.ocpp.v201.device_model.model import DeviceModel
from firmware.ocpp.v201.device_model.overrides import Override, resolve_overrides
from firmware.ocpp.v201.device_model.standard import build_catalog
from firmware.ocpp.v201.device_model.topology import Station, describe
from firmware.storage.db import Database


@dataclass(frozen=True, slots=True)
class Resolved:
    station: Station
    catalog: Catalog
    overrides: tuple[Override, ...]


def resolve(config: Config) -> Resolved:
    """The catalog of the station ``config`` describes, and the file's ``device_model``
    values checked against it; raises ConfigError naming ``device_model.Component.Variable``.
    Opens nothing: ``chargepoint check-config`` and ``chargepoint run`` both run it."""
    station = describe(config)
    catalog = build_catalog(station)
    return Resolved(station, catalog, resolve_overrides(catalog, config.device_model))


def open_device_model(
    config: Config,
    db: Database,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DeviceModel:
    """The running station's device model, with its stored values."""
    resolved = resolve(config)
    return DeviceModel(resolved.catalog, db, resolved.overrides, clock=clock)
