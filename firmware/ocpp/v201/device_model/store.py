"""Attribute values the station keeps across restarts, in the state database.

One row per (component, variable, attribute) written at run time, names in the
catalog's spelling. Every write is durable (fsync'd) before the CSMS hears
Accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocpp.v201.enums import AttributeEnumType

from firmware.ocpp.v201.device_model.addressing import Component, Variable
from firmware.storage.db import Database


@dataclass(frozen=True, slots=True)
class StoredValue:
    component: Component
    variable: Variable
    attribute: str  # as stored: may name an attribute this firmware no longer has
    value: str


class DeviceModelStore:
    """The ``device_model`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self) -> list[StoredValue]:
        rows = self._db.query(
            "SELECT component, component_instance, evse_id, connector_id, variable, "
            "variable_instance, attribute, value FROM device_model"
        )
        return [
            StoredValue(
                component=Component(
                    str(row["component"]),
                    str(row["component_instance"]) or None,
                    int(row["evse_id"]) or None,
                    int(row["connector_id"]) or None,
                ),
                variable=Variable(str(row["variable"]), str(row["variable_instance"]) or None),
                attribute=str(row["attribute"]),
                value=str(row["value"]),
            )
            for row in rows
            # A connector without its EVSE cannot be named: a row no firmware wrote.
            if int(row["connector_id"]) == 0 or int(row["evse_id"]) != 0
        ]

    def save(
        self, component: Component, variable: Variable, attribute: AttributeEnumType, value: str
    ) -> None:
        """Store one value (raises StorageError)."""
        self._db.execute(
            "INSERT INTO device_model (component, component_instance, evse_id, connector_id, "
            "variable, variable_instance, attribute, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (component, component_instance, evse_id, connector_id, variable, "
            "variable_instance, attribute) DO UPDATE SET value = excluded.value",
            (
                component.name,
                component.instance or "",
                component.evse or 0,
                component.connector or 0,
                variable.name,
                variable.instance or "",
                attribute.value,
                value,
            ),
        )
