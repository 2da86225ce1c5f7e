"""The running device model: values across restarts, whose value wins, typed reads, changes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from firmware.ocpp.v201.device_model import (
    ACTUAL,
    MAX_SET,
    Change,
    Component,
    DeviceModel,
    InvalidValue,
    Source,
    Variable,
    set_variables,
)
from firmware.storage.db import Database
from tests.unit.device_model_fixtures import NOW, open_model

TX = Component("TxCtrlr")


def csms_sets(model: DeviceModel, component: str, variable: str, value: str, **kw: Any) -> str:
    """The CSMS's SetVariables of one value: the attributeStatus."""
    entry = {
        "component": Component.parse(component).to_json(),
        "variable": Variable.parse(variable).to_json(),
        "attributeValue": value,
        **kw,
    }
    result = set_variables(model, {"setVariableData": [entry]})["setVariableResult"][0]
    return str(result["attributeStatus"])


def reopen(tmp_path: Path, db: Database, **sections: Any) -> tuple[DeviceModel, Database]:
    db.close()
    return open_model(tmp_path, **sections)


def test_what_the_csms_sets_survives_a_restart(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    assert csms_sets(model, "TxCtrlr", "EVConnectionTimeOut", "45") == "Accepted"
    assert csms_sets(model, "TxCtrlr", "TxStopPoint", "authorized,evconnected") == "Accepted"
    model, db = reopen(tmp_path, db)
    assert model.get_int(TX, Variable("EVConnectionTimeOut")) == 45
    assert model.get_list("TxCtrlr", "TxStopPoint") == ["Authorized", "EVConnected"]
    db.close()


def test_a_value_the_csms_set_wins_over_the_file(tmp_path: Path) -> None:
    file = {"device_model": {"TxCtrlr": {"EVConnectionTimeOut": 30, "StopTxOnInvalidId": False}}}
    model, db = open_model(tmp_path, **file)
    assert csms_sets(model, "TxCtrlr", "EVConnectionTimeOut", "90") == "Accepted"
    model, db = reopen(tmp_path, db, **file)
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 90  # the CSMS's
    assert model.get_bool("TxCtrlr", "StopTxOnInvalidId") is False  # the file's
    db.close()


def test_the_file_applies_at_every_start_until_the_csms_sets_a_value(tmp_path: Path) -> None:
    model, db = open_model(tmp_path, device_model={"TxCtrlr": {"EVConnectionTimeOut": 30}})
    model, db = reopen(tmp_path, db, device_model={"TxCtrlr": {"EVConnectionTimeOut": 20}})
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 20
    model, db = reopen(tmp_path, db)
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 60  # the built-in value
    db.close()


def test_read_only_and_state_values_are_not_kept(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    model.update("EVSE.1", "AvailabilityState", "Occupied")
    model.update("EVSE.1", "Power", "7360.5")
    assert model.get_str("EVSE.1", "AvailabilityState") == "Occupied"
    assert model.get_decimal("EVSE.1", "Power") == 7360.5
    assert db.query("SELECT * FROM device_model") == []
    model, db = reopen(tmp_path, db, device_model={"ChargingStation": {"Model": "Other"}})
    assert model.get_str("EVSE.1", "AvailabilityState") == "Available"
    assert model.get_str("ChargingStation", "Model") == "Other"
    db.close()


def test_the_file_may_raise_the_stored_security_profile_never_lower_it(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    model.update("SecurityCtrlr", "SecurityProfile", "2")  # raised at run time (A05)
    model, db = reopen(tmp_path, db)
    assert model.get_int("SecurityCtrlr", "SecurityProfile") == 2
    model, db = reopen(tmp_path, db, device_model={"SecurityCtrlr": {"SecurityProfile": 1}})
    assert model.get_int("SecurityCtrlr", "SecurityProfile") == 2
    model, db = reopen(tmp_path, db, device_model={"SecurityCtrlr": {"SecurityProfile": 3}})
    assert model.get_int("SecurityCtrlr", "SecurityProfile") == 3
    db.close()


def test_a_stored_value_that_no_longer_fits_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, db = open_model(tmp_path)
    assert csms_sets(model, "SampledDataCtrlr", "TxUpdatedInterval", "900") == "Accepted"
    assert csms_sets(model, "SecurityCtrlr", "BasicAuthPassword", "s3cret-s3cret-s3cret") == (
        "Accepted"
    )
    db.execute("UPDATE device_model SET value = 'x' WHERE variable = 'BasicAuthPassword'")
    db.execute(
        "INSERT INTO device_model (component, variable, attribute, value) "
        "VALUES ('TxCtrlr', 'NoSuchVariable', 'Actual', '1'), ('TxCtrlr', 'EVConnectionTimeOut', "
        "'Target', '1'), ('TxCtrlr', 'EVConnectionTimeOut', 'Sideways', '1')"
    )
    caplog.set_level(logging.DEBUG, "firmware.ocpp.device_model")
    # The file now allows at most 600 s: the stored 900 is out of range.
    model, db = reopen(
        tmp_path, db, device_model={"SampledDataCtrlr": {"TxUpdatedInterval": {"MaxSet": 600}}}
    )
    assert model.get_int("SampledDataCtrlr", "TxUpdatedInterval") == 60
    assert model.get_str("SecurityCtrlr", "BasicAuthPassword") == ""
    assert model.get_int("TxCtrlr", "EVConnectionTimeOut") == 60
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "ignoring the stored Actual of SampledDataCtrlr.TxUpdatedInterval ('900'): "
        "the Actual value 900 is above MaxSet 600",
        "ignoring the stored Actual of SecurityCtrlr.BasicAuthPassword (***): must be 16 to 40 "
        "printable ASCII characters without blanks",
    ]
    assert "s3cret" not in caplog.text
    db.close()


def test_typed_reads_of_every_kind(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    assert model.get_int("OCPPCommCtrlr", "MessageAttempts[TransactionEvent]") == 3
    assert model.get_bool("AuthCtrlr", "LocalAuthorizeOffline") is True
    assert model.get_list("AlignedDataCtrlr", "TxEndedMeasurands") == []
    assert model.get_list("SampledDataCtrlr", "TxUpdatedMeasurands") == [
        "Energy.Active.Import.Register"
    ]
    assert model.get_decimal("SmartChargingCtrlr", "LimitChangeSignificance") == 10.0
    assert model.get_decimal("OCPPCommCtrlr", "HeartbeatInterval") == 300.0
    assert model.get_int("OCPPCommCtrlr", "HeartbeatInterval", MAX_SET) == 86400
    assert model.get_str("ClockCtrlr", "DateTime") == "2030-01-02T03:04:05.000Z"
    with pytest.raises(TypeError, match=r"TxCtrlr\.TxStartPoint is a MemberList variable"):
        model.get_int("TxCtrlr", "TxStartPoint")
    with pytest.raises(TypeError):
        model.get_bool("TxCtrlr", "EVConnectionTimeOut")
    with pytest.raises(TypeError):
        model.get_list("TxCtrlr", "EVConnectionTimeOut")
    with pytest.raises(KeyError):
        model.get_int("TxCtrlr", "NoSuchVariable")
    with pytest.raises(KeyError):
        model.get_int("EVSE.9", "Power")
    with pytest.raises(KeyError):
        model.get_int("TxCtrlr", "EVConnectionTimeOut", MAX_SET)
    db.close()


def test_the_clock_is_read_when_the_date_time_is(tmp_path: Path) -> None:
    moments = iter([NOW, datetime(2031, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)])
    model, db = open_model(tmp_path, clock=lambda: next(moments))
    assert model.get_str("ClockCtrlr", "DateTime") == "2030-01-02T03:04:05.000Z"
    assert model.get_str("ClockCtrlr", "DateTime") == "2031-05-06T07:08:09.123Z"
    db.close()


def test_subscribers_hear_of_every_change_once_it_is_stored(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    heard: list[tuple[Change, list[Any]]] = []

    def listener(change: Change) -> None:
        rows = db.query(
            "SELECT value FROM device_model WHERE variable = ?", (change.variable.name,)
        )
        heard.append((change, [r["value"] for r in rows]))

    model.subscribe(listener)
    assert csms_sets(model, "OCPPCommCtrlr", "HeartbeatInterval", "30") == "Accepted"
    assert csms_sets(model, "OCPPCommCtrlr", "HeartbeatInterval", "30") == "Accepted"  # no change
    model.update("Connector.1.1", "Problem", "true")
    assert heard == [
        (
            Change(
                Component("OCPPCommCtrlr"), Variable("HeartbeatInterval"), ACTUAL, "30", Source.CSMS
            ),
            ["30"],
        ),
        (
            Change(
                Component("Connector", evse=1, connector=1),
                Variable("Problem"),
                ACTUAL,
                "true",
                Source.STATION,
            ),
            [],
        ),
    ]
    db.close()


def test_a_failing_subscriber_does_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, db = open_model(tmp_path)
    heard: list[str] = []

    def broken(_change: Change) -> None:
        raise RuntimeError("boom")

    model.subscribe(broken)
    model.subscribe(lambda change: heard.append(change.value))
    assert csms_sets(model, "TxCtrlr", "EVConnectionTimeOut", "15") == "Accepted"
    assert heard == ["15"]
    assert "device model subscriber failed for TxCtrlr.EVConnectionTimeOut" in caplog.text
    db.close()


def test_the_station_cannot_keep_a_value_that_does_not_fit(tmp_path: Path) -> None:
    model, db = open_model(tmp_path)
    with pytest.raises(InvalidValue):
        model.update("EVSE.1", "AvailabilityState", "Sleeping")
    with pytest.raises(InvalidValue):
        model.update("EVSE.1", "Power", "-1")
    with pytest.raises(KeyError):
        model.update("EVSE.1", "Power", "1", attribute=ACTUAL.__class__("Target"))
    assert model.get_str("EVSE.1", "AvailabilityState") == "Available"
    db.close()


def test_write_only_values_are_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    model, db = open_model(tmp_path)
    assert csms_sets(model, "SecurityCtrlr", "BasicAuthPassword", "0123456789abcdefXYZ") == (
        "Accepted"
    )
    assert model.get_str("SecurityCtrlr", "BasicAuthPassword") == "0123456789abcdefXYZ"
    assert "SecurityCtrlr.BasicAuthPassword Actual set to *** by the csms" in caplog.text
    assert "0123456789abcdefXYZ" not in caplog.text
    db.close()
