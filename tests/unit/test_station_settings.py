"""The station's settings over the OCPP 1.6 configuration keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.metering import supported_measurands
from firmware.ocpp.v16.configuration import ConfigurationStore, StationFacts
from firmware.ocpp.v16.settings import KEYS, MEASURAND_KEYS, ConfigurationSettings
from firmware.settings import Measurands, StationSettings
from firmware.storage.db import Database

FACTS = StationFacts(2, supported_measurands(has_bms=False))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


# Each setting, the YAML value that differs from the key's default, and what it reads as.
GIVEN = {
    "connection_timeout_s": ("47", 47),
    "stop_on_ev_disconnect": ("false", False),
    "unlock_on_ev_disconnect": ("false", False),
    "stop_on_invalid_id": ("false", False),
    "max_energy_on_invalid_id_wh": ("1234", 1234),
    "sample_interval_s": ("7", 7),
    "aligned_interval_s": ("900", 900),
    "auth_cache_enabled": ("false", False),
    "local_pre_authorize": ("true", True),
    "local_authorize_offline": ("false", False),
    "offline_unknown_id_allowed": ("true", True),
    "authorize_remote_start": ("false", False),
    "smart_charging_enabled": ("Core,Reservation", False),
    "charging_rate_units": ("Power", ["Power"]),
    "max_stack_level": ("3", 3),
    "max_schedule_periods": ("5", 5),
    "max_profiles_installed": ("4", 4),
    "reserve_whole_station": ("false", False),
}


def test_every_setting_has_a_key_and_a_case() -> None:
    members = {
        name
        for name in dir(StationSettings)
        if not name.startswith("_") and name not in ("measurands", "subscribe")
    }
    assert members == set(KEYS) == set(GIVEN)


@pytest.mark.parametrize("name", sorted(GIVEN))
def test_a_setting_reads_its_key(db: Database, name: str) -> None:
    given, expected = GIVEN[name]
    default = getattr(ConfigurationSettings(ConfigurationStore(db, {}, FACTS)), name)
    assert default != expected  # the case proves the key is read
    settings = ConfigurationSettings(ConfigurationStore(db, {KEYS[name]: given}, FACTS))
    assert getattr(settings, name) == expected


def test_measurands_read_their_keys(db: Database) -> None:
    keys = {
        "MeterValuesSampledData": "Voltage",
        "MeterValuesAlignedData": "Frequency",
        "StopTxnSampledData": "Current.Import",
        "StopTxnAlignedData": "Power.Active.Import",
    }
    settings = ConfigurationSettings(ConfigurationStore(db, keys, FACTS))
    assert {kind: settings.measurands(kind) for kind in Measurands} == {
        kind: [keys[MEASURAND_KEYS[kind]]] for kind in Measurands
    }


def test_a_change_names_the_setting(db: Database) -> None:
    store = ConfigurationStore(db, {}, FACTS)
    settings: StationSettings = ConfigurationSettings(store)
    changed: list[str] = []
    settings.subscribe(changed.append)
    assert store.change("ClockAlignedDataInterval", "60") == "Accepted"
    assert store.change("metervaluessampleddata", "Energy.Active.Import.Register,Voltage") == (
        "Accepted"
    )
    assert store.change("HeartbeatInterval", "120") == "Accepted"  # not a station setting
    assert changed == ["aligned_interval_s", "measurands.periodic"]
    assert settings.aligned_interval_s == 60
    assert settings.measurands(Measurands.PERIODIC) == ["Energy.Active.Import.Register", "Voltage"]
