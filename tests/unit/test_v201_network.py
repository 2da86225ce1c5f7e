"""The 2.0.1 network profiles' rules: which profile each connection attempt dials
(B10), what NetworkConfigurationPriority may name, and the security profile only
ever raised (A05). The end-to-end cases are in tests/integration/test_v201_network.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.ocpp.v201.device_model import DeviceModel
from firmware.ocpp.v201.device_model.values import InvalidValue
from firmware.ocpp.v201.network import (
    Dialer,
    NetworkProfile,
    NetworkProfiles,
    Refused,
    usable,
)
from firmware.storage.db import Database
from tests.unit.device_model_fixtures import open_model

A = NetworkProfile("ws://a.example/ocpp", 1, 30)
B = NetworkProfile("ws://b.example/ocpp", 1, 10)
C = NetworkProfile("wss://c.example/ocpp", 2, 10)


def setup(
    tmp_path: Path, attempts: int = 2, **sections: object
) -> tuple[DeviceModel, Database, NetworkProfiles]:
    model, db = open_model(
        tmp_path,
        device_model={"OCPPCommCtrlr": {"NetworkProfileConnectionAttempts": attempts}},
        **sections,
    )
    profiles = NetworkProfiles(db, model, A)
    profiles.has_csms_root = lambda: True
    return model, db, profiles


def set_priority(model: DeviceModel, value: str) -> None:
    model.update("OCPPCommCtrlr", "NetworkConfigurationPriority", value)


def dialled(dialer: Dialer, attempts: int) -> list[int]:
    """The slots of ``attempts`` failing attempts in a row."""
    slots = []
    for _ in range(attempts):
        slots.append(dialer.target()[0])
        dialer.failed()
    return slots


def test_each_entry_gets_its_attempts_then_the_list_starts_over(tmp_path: Path) -> None:
    model, _db, profiles = setup(tmp_path)
    profiles.store(2, B)
    set_priority(model, "2,1")
    dialer = Dialer(profiles, model)
    assert dialled(dialer, 6) == [2, 2, 1, 1, 2, 2]


def test_a_lost_connection_is_dialled_again_on_its_profile_first(tmp_path: Path) -> None:
    model, _db, profiles = setup(tmp_path)
    profiles.store(2, B)
    set_priority(model, "2,1")
    dialer = Dialer(profiles, model)
    dialled(dialer, 2)
    assert dialer.target() == (1, A)
    dialer.connected()
    assert dialled(dialer, 3) == [1, 1, 2]


def test_the_last_profile_that_worked_is_the_fallback_after_the_list(tmp_path: Path) -> None:
    model, db, profiles = setup(tmp_path)
    profiles.store(2, B)
    set_priority(model, "2")
    Dialer(profiles, model).connected()  # on B
    # The CSMS overwrote slot 2 with a CSMS that does not answer.
    unreachable = NetworkProfile("ws://gone.example/ocpp", 1, 10)
    profiles.store(2, unreachable)
    dialer = Dialer(NetworkProfiles(db, model, A), model)  # after a restart
    assert dialer.target() == (2, unreachable)
    dialled(dialer, 2)
    assert dialer.target() == (2, B)  # B10.FR.07


def test_connecting_on_another_profile_registers_again(tmp_path: Path) -> None:
    model, _db, profiles = setup(tmp_path, attempts=1)
    profiles.store(2, B)
    set_priority(model, "2,1")
    dialer = Dialer(profiles, model)
    switches: list[int] = []
    timeouts: list[float] = []
    dialer.on_switch = lambda: switches.append(dialer.target()[0])
    dialer.on_timeout = timeouts.append
    dialer.connected()
    assert switches == []  # the first connection ever: a boot follows anyway
    dialer.failed()
    dialer.connected()
    assert switches == [1]
    assert timeouts == [10, 30]
    assert model.get_int("OCPPCommCtrlr", "ActiveNetworkProfile") == 1


def test_a_higher_profile_raises_the_security_profile_and_drops_the_lower_ones(
    tmp_path: Path,
) -> None:
    model, db, profiles = setup(tmp_path, ocpp={"password": "0123456789abcdef"})
    profiles.store(2, B)
    profiles.store(3, C)
    set_priority(model, "3,2,1")
    dialer = Dialer(profiles, model)
    raised: list[tuple[int, int, int]] = []
    dialer.on_raise = lambda old, new, slot: raised.append((old, new, slot))
    dialer.connected()
    assert raised == [(1, 2, 3)]
    assert model.get_int("SecurityCtrlr", "SecurityProfile") == 2
    assert model.get_list("OCPPCommCtrlr", "NetworkConfigurationPriority") == ["3"]
    assert profiles.get(2) is None
    with pytest.raises(InvalidValue, match="below the active security profile"):
        profiles.check_priority("3,1")
    # Stored: a restart keeps the raised profile.
    reopened, _ = open_model(tmp_path, ocpp={"password": "0123456789abcdef"})
    assert reopened.get_int("SecurityCtrlr", "SecurityProfile") == 2
    db.close()


def test_what_the_priority_list_may_name(tmp_path: Path) -> None:
    _model, _db, profiles = setup(tmp_path)
    profiles.store(3, C)
    for value, problem in (
        ("1,1", "twice"),
        ("2", "slot 2 has no network profile"),
    ):
        with pytest.raises(InvalidValue, match=problem):
            profiles.check_priority(value)
    profiles.has_csms_root = lambda: False
    with pytest.raises(InvalidValue, match="CSMS root certificate"):
        profiles.check_priority("3,1")
    profiles.has_csms_root = lambda: True
    profiles.store(3, NetworkProfile(C.url, 3, 10))
    with pytest.raises(InvalidValue, match="charging station certificate"):
        profiles.check_priority("3")
    profiles.has_client_certificate = lambda: True
    profiles.check_priority("3,1")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ocppVersion": "OCPP16"}, "InvalidNetworkConf"),
        ({"ocppTransport": "SOAP"}, "InvalidNetworkConf"),
        ({"vpn": {"server": "x"}}, "InvalidNetworkConf"),
        ({"ocppCsmsUrl": "https://a.example"}, "InvalidNetworkConf"),
        ({"ocppCsmsUrl": "ws://"}, "InvalidNetworkConf"),
        ({"securityProfile": 3}, "InvalidNetworkConf"),  # over ws://
        ({"securityProfile": 4, "ocppCsmsUrl": "wss://a.example"}, "InvalidNetworkConf"),
        ({"securityProfile": 0}, "NoSecurityDowngrade"),
    ],
)
def test_connection_data_the_station_cannot_use(changes: dict[str, object], reason: str) -> None:
    data = {**A.connection_data(), **changes}
    with pytest.raises(Refused) as refused:
        usable(data, active_profile=1)
    assert refused.value.reason == reason


def test_usable_connection_data_round_trips() -> None:
    assert usable(C.connection_data(), active_profile=1) == C


def test_a_reconnect_on_the_same_profile_is_no_switch(tmp_path: Path) -> None:
    model, db, _ = setup(tmp_path)
    configured = NetworkProfile("ws://a.example/ocpp", 1, 2.5)  # ocpp.response_timeout_s
    switches: list[int] = []
    for _ in range(2):  # two runs of the station: the copy kept must compare equal
        dialer = Dialer(NetworkProfiles(db, model, configured), model)
        dialer.on_switch = lambda: switches.append(1)
        dialer.connected()
        dialer.failed()
        dialer.connected()
    assert switches == []
