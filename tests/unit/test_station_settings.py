"""The station's settings over the OCPP 1.6 configuration keys and the 2.0.1 device model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.metering import supported_measurands
from firmware.ocpp.v16.configuration import ConfigurationStore, StationFacts
from firmware.ocpp.v16.settings import KEYS, MEASURAND_KEYS, ConfigurationSettings
from firmware.ocpp.v201.device_model import DeviceModel
from firmware.ocpp.v201.settings import TX_POINTS as V201_TX_POINTS
from firmware.ocpp.v201.settings import VARIABLES as V201_VARIABLES
from firmware.ocpp.v201.settings import station_settings
from firmware.settings import Measurands, StationSettings
from firmware.storage.db import Database
from tests.unit.device_model_fixtures import open_model

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
    # The master pass and the transaction points are OCPP 2.0.1's alone
    # (test_the_master_pass_is_2_0_1s, test_transaction_points).
    assert members - {"master_pass_group", *V201_TX_POINTS} == set(KEYS) == set(GIVEN)


def test_transaction_points(db: Database, tmp_path: Path) -> None:
    """1.6's rule is fixed; 2.0.1's are TxCtrlr.TxStartPoint and TxStopPoint."""
    v16 = ConfigurationSettings(ConfigurationStore(db, {}, FACTS))
    assert v16.tx_start_points == v16.tx_stop_points == {"PowerPathClosed"}
    settings, _, v201_db = v201(
        tmp_path / "v201", TxCtrlr={"TxStartPoint": "EVConnected", "TxStopPoint": "Authorized"}
    )
    assert settings.tx_start_points == {"EVConnected"}
    assert settings.tx_stop_points == {"Authorized"}
    v201_db.close()


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


# ---------------------------------------------------------------- OCPP 2.0.1 device model

# Each setting, the device_model value that differs from the built-in one, and what it reads as.
GIVEN_V201 = {
    "connection_timeout_s": (47, 47),
    "stop_on_ev_disconnect": (False, False),
    "unlock_on_ev_disconnect": (False, False),
    "stop_on_invalid_id": (False, False),
    "max_energy_on_invalid_id_wh": (1234, 1234),
    "sample_interval_s": (7, 7),
    "aligned_interval_s": (900, 900),
    "auth_cache_enabled": (False, False),
    "local_pre_authorize": (True, True),
    "local_authorize_offline": (False, False),
    "offline_unknown_id_allowed": (True, True),
    "authorize_remote_start": (False, False),
    "smart_charging_enabled": (False, False),
    "charging_rate_units": ("W", ["Power"]),
    "max_stack_level": (3, 3),
    "max_schedule_periods": (5, 5),
    "reserve_whole_station": (False, False),
}
LOCK = {"board": {"has_lock": True}}  # a socket with a lock: UnlockOnEVSideDisconnect is RW


def v201(tmp_path: Path, **values: object) -> tuple[StationSettings, DeviceModel, Database]:
    model, db = open_model(tmp_path, device_model=values, **LOCK)
    return station_settings(model), model, db


def test_every_setting_has_a_variable() -> None:
    assert set(V201_VARIABLES) == set(KEYS)
    assert set(GIVEN_V201) == set(KEYS) - {"max_profiles_installed"}


@pytest.mark.parametrize("name", sorted(GIVEN_V201))
def test_a_setting_reads_its_variable(tmp_path: Path, name: str) -> None:
    given, expected = GIVEN_V201[name]
    component, variable = V201_VARIABLES[name]
    built_in, _, db = v201(tmp_path / "built-in")
    assert getattr(built_in, name) != expected  # the case proves the variable is read
    db.close()
    settings, _, db = v201(tmp_path / "given", **{component: {variable: given}})
    assert getattr(settings, name) == expected
    db.close()


def test_v201_measurands_and_profile_count(tmp_path: Path) -> None:
    settings, model, db = v201(
        tmp_path,
        SampledDataCtrlr={"TxUpdatedMeasurands": "Voltage", "TxEndedMeasurands": "Current.Import"},
        AlignedDataCtrlr={"Measurands": "Frequency", "TxEndedMeasurands": "Power.Active.Import"},
    )
    assert [settings.measurands(kind) for kind in Measurands] == [
        ["Voltage"],
        ["Frequency"],
        ["Current.Import"],
        ["Power.Active.Import"],
    ]
    entries = model.spec("SmartChargingCtrlr", "Entries[ChargingProfiles]")
    assert settings.max_profiles_installed == entries.characteristics.max_limit
    db.close()


def test_a_variable_change_names_the_setting(tmp_path: Path) -> None:
    settings, model, db = v201(tmp_path)
    changed: list[str] = []
    settings.subscribe(changed.append)
    model.update("AlignedDataCtrlr", "Interval", "60")
    model.update("SampledDataCtrlr", "TxUpdatedMeasurands", "Energy.Active.Import.Register,Voltage")
    model.update("OCPPCommCtrlr", "HeartbeatInterval", "120")  # not a station setting
    assert changed == ["aligned_interval_s", "measurands.periodic"]
    assert settings.aligned_interval_s == 60
    assert settings.measurands(Measurands.PERIODIC) == ["Energy.Active.Import.Register", "Voltage"]
    db.close()


def test_the_master_pass_is_2_0_1s(tmp_path: Path, db: Database) -> None:
    assert ConfigurationSettings(ConfigurationStore(db, {}, FACTS)).master_pass_group == ""
    built_in, _, model_db = v201(tmp_path / "built-in")
    assert built_in.master_pass_group == ""
    model_db.close()
    settings, _, model_db = v201(tmp_path / "given", AuthCtrlr={"MasterPassGroupId": "MASTER"})
    assert settings.master_pass_group == "MASTER"
    model_db.close()
