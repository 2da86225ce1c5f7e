"""Shared pieces of the device model tests: a configured station and its model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.messages import get_validator

from firmware.config import Config, parse_config
from firmware.ocpp.v201.device_model import DeviceModel, open_device_model
from firmware.storage.db import Database

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
CALL, CALLRESULT = 2, 3


def station_config(**sections: Any) -> Config:
    ocpp = {"csms_url": "ws://127.0.0.1:1/ocpp", "charge_point_id": "CP-DM-1"}
    ocpp.update(sections.pop("ocpp", {}))
    return parse_config({"ocpp": ocpp, **sections})


def open_model(
    tmp_path: Path, clock: Callable[[], datetime] = lambda: NOW, **sections: Any
) -> tuple[DeviceModel, Database]:
    """The model of a station configured with ``sections``, on the database in ``tmp_path``."""
    db = Database(tmp_path / "state.db")
    return open_device_model(station_config(**sections), db, clock=clock), db


def assert_valid(message_type: int, action: str, payload: dict[str, Any]) -> None:
    """``payload`` is valid against the OCA OCPP 2.0.1 schema of ``action``."""
    get_validator(message_type, action, "2.0.1").validate(payload)
