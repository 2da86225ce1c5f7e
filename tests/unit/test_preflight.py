"""The start-up check shared by `chargepoint run` and `chargepoint check-config`."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from firmware import preflight
from firmware.config import parse_config
from firmware.errors import ConfigError
from firmware.ocpp.v16.configuration import PASSWORD_NOTICE
from hal.errors import HalConfigError
from hal.registry import build_backend
from hil.pki import Authority, write_pem

DAY = datetime.timedelta(days=1)


def config(tmp_path: Path, **sections: Any) -> Any:
    ocpp = {"csms_url": "ws://127.0.0.1:1/ocpp", "charge_point_id": "CP-1"}
    ocpp.update(sections.pop("ocpp", {}))
    return parse_config({"ocpp": ocpp, "state_dir": str(tmp_path / "state"), **sections})


def test_a_good_file_has_no_notices(tmp_path: Path) -> None:
    assert preflight.check(config(tmp_path)) == ()
    assert not (tmp_path / "state").exists()


def test_notices_say_what_is_accepted_but_unused(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        ocpp={
            "password": "0123456789abcdef",
            "config": {
                "SecurityProfile": 0,
                "SupportedFeatureProfiles": "Core",
                "ReserveConnectorZeroSupported": False,
            },
        },
    )
    assert preflight.check(cfg) == (
        "ocpp.config.ReserveConnectorZeroSupported: accepted but unused: "
        "SupportedFeatureProfiles leaves out Reservation, so the CSMS does not see this key",
        PASSWORD_NOTICE,
    )


def test_what_2_0_1_leaves_out_is_noticed(tmp_path: Path) -> None:
    notice = (preflight.V201_NOTICE,)
    assert preflight.check(config(tmp_path, ocpp={"version": "auto"})) == notice
    assert preflight.check(config(tmp_path, ocpp={"version": "2.0.1"})) == notice
    assert preflight.check(config(tmp_path, ocpp={"version": "1.6"})) == ()


def test_the_facts_follow_the_file(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        ocpp={"csms_url": "wss://csms.example/ocpp", "password": "0123456789abcdef"},
        connectors=3,
        board={"phases": 1, "has_bms": False},
    )
    facts = preflight.station_facts(cfg)
    assert (facts.number_of_connectors, facts.phases, facts.tls, facts.has_password) == (
        3,
        1,
        True,
        True,
    )
    assert "SoC" not in facts.supported_measurands


def test_hal_errors_are_the_builds(tmp_path: Path) -> None:
    cfg = config(tmp_path, hal={"backend": "emulated", "meter_map": "sdm999"})
    with pytest.raises(HalConfigError) as checked:
        preflight.check(cfg)
    with pytest.raises(HalConfigError) as built:
        build_backend("emulated", cfg.hal.options, cfg.connectors, cfg.board)
    assert str(checked.value) == str(built.value)
    assert str(checked.value).startswith("hal.meter_map: no built-in meters file 'sdm999'")


def test_log_file_checks_create_nothing(tmp_path: Path) -> None:
    preflight.check_log_file(None)
    deep = tmp_path / "a" / "b" / "chargepoint.log"
    preflight.check_log_file(deep)
    assert not (tmp_path / "a").exists()
    existing = tmp_path / "chargepoint.log"
    existing.write_text("kept\n")
    preflight.check_log_file(existing)
    assert existing.read_text() == "kept\n"


def test_log_file_under_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    for path in (blocker / "chargepoint.log", blocker / "logs" / "chargepoint.log"):
        with pytest.raises(ConfigError) as caught:
            preflight.check_log_file(path)
        assert str(caught.value) == (f"diagnostics.log_file: cannot open {path}: Not a directory")


def test_the_security_facts_and_notices_follow_the_file(tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    old = Authority.root("Old Root", not_before=now - 9 * DAY, not_after=now - DAY)
    root_file = write_pem(tmp_path / "root.pem", old.cert)
    cfg = config(tmp_path, ocpp={"csms_url": "wss://csms.example/ocpp"})
    facts = preflight.station_facts(cfg)
    assert not facts.has_csms_root() and not facts.has_client_certificate(False)
    cfg = config(
        tmp_path,
        ocpp={"csms_url": "wss://csms.example/ocpp"},
        security={"csms_root_ca": str(root_file)},
    )
    assert preflight.station_facts(cfg).has_csms_root()
    (notice,) = preflight.check(cfg)
    assert notice.startswith("security.csms_root_ca: CN=Old Root") and "has expired" in notice
    assert not (tmp_path / "state").exists()  # the store is the running station's
