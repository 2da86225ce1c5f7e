"""OCPP configuration keys: types, ChangeConfiguration answers, persistence."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.errors import ConfigError
from firmware.metering import supported_measurands
from firmware.ocpp.v16.configuration import (
    CORE_KEYS,
    Access,
    ConfigurationStore,
    KeySpec,
    StationFacts,
    resolve_start,
)
from firmware.ocpp.v16.configuration_keys import CheckContext, validate
from firmware.storage.db import Database

FACTS = StationFacts(
    number_of_connectors=2, supported_measurands=supported_measurands(has_bms=True)
)
ENERGY = "Energy.Active.Import.Register"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


def store(
    db: Database,
    initial: Mapping[str, str] | None = None,
    facts: StationFacts = FACTS,
    keys: tuple[KeySpec, ...] = CORE_KEYS,
) -> ConfigurationStore:
    return ConfigurationStore(db, initial or {}, facts, keys)


# ---------------------------------------------------------------- the key table

# name, access, kind, default with FACTS
EXPECTED: list[tuple[str, Access, str, str]] = [
    ("AllowOfflineTxForUnknownId", Access.RW, "bool", "false"),
    ("AuthorizationCacheEnabled", Access.RW, "bool", "true"),
    ("AuthorizeRemoteTxRequests", Access.RW, "bool", "true"),
    ("BlinkRepeat", Access.RW, "int", "0"),
    ("ClockAlignedDataInterval", Access.RW, "int", "0"),
    ("ConnectionTimeOut", Access.RW, "int", "60"),
    ("ConnectorPhaseRotation", Access.RW, "csl", "0.RST,1.RST,2.RST"),
    ("ConnectorPhaseRotationMaxLength", Access.R, "int", "3"),
    ("GetConfigurationMaxKeys", Access.R, "int", "100"),
    ("HeartbeatInterval", Access.RW, "int", "300"),
    ("LightIntensity", Access.RW, "int", "100"),
    ("LocalAuthorizeOffline", Access.RW, "bool", "true"),
    ("LocalPreAuthorize", Access.RW, "bool", "false"),
    ("MaxEnergyOnInvalidId", Access.RW, "int", "0"),
    ("MeterValuesAlignedData", Access.RW, "csl", ENERGY),
    ("MeterValuesAlignedDataMaxLength", Access.R, "int", "10"),
    ("MeterValuesSampledData", Access.RW, "csl", ENERGY),
    ("MeterValuesSampledDataMaxLength", Access.R, "int", "10"),
    ("MeterValueSampleInterval", Access.RW, "int", "60"),
    ("MinimumStatusDuration", Access.RW, "int", "0"),
    ("NumberOfConnectors", Access.R, "int", "2"),
    ("ResetRetries", Access.RW, "int", "3"),
    ("StopTransactionOnEVSideDisconnect", Access.RW, "bool", "true"),
    ("StopTransactionOnInvalidId", Access.RW, "bool", "true"),
    ("StopTxnAlignedData", Access.RW, "csl", ""),
    ("StopTxnAlignedDataMaxLength", Access.R, "int", "10"),
    ("StopTxnSampledData", Access.RW, "csl", ""),
    ("StopTxnSampledDataMaxLength", Access.R, "int", "10"),
    (
        "SupportedFeatureProfiles",
        Access.R,
        "csl",
        "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger,Reservation,SmartCharging",
    ),
    ("SupportedFeatureProfilesMaxLength", Access.R, "int", "6"),
    ("TransactionMessageAttempts", Access.RW, "int", "3"),
    ("TransactionMessageRetryInterval", Access.RW, "int", "60"),
    ("UnlockConnectorOnEVSideDisconnect", Access.RW, "bool", "true"),
    ("WebSocketPingInterval", Access.RW, "int", "60"),
    ("ChargeProfileMaxStackLevel", Access.R, "int", "8"),
    ("ChargingScheduleAllowedChargingRateUnit", Access.R, "csl", "Current,Power"),
    ("ChargingScheduleMaxPeriods", Access.R, "int", "24"),
    ("ConnectorSwitch3to1PhaseSupported", Access.R, "bool", "false"),
    ("MaxChargingProfilesInstalled", Access.R, "int", "16"),
    ("AuthorizationKey", Access.W, "str", ""),
    ("CpoName", Access.RW, "str", ""),
    ("SecurityProfile", Access.RW, "int", "0"),
    ("ReserveConnectorZeroSupported", Access.R, "bool", "true"),
    ("LocalAuthListEnabled", Access.RW, "bool", "true"),
    ("LocalAuthListMaxLength", Access.R, "int", "10000"),
    ("SendLocalListMaxLength", Access.R, "int", "1000"),
    ("SupportedFileTransferProtocols", Access.R, "csl", "FTP,FTPS,HTTP,HTTPS"),
    ("AdditionalRootCertificateCheck", Access.R, "bool", "false"),
    ("CertificateSignedMaxChainSize", Access.R, "int", "10000"),
    ("CertificateStoreMaxLength", Access.R, "int", "20"),
    # optional: only once ocpp.config sets them
    ("CentralContractValidationAllowed", Access.RW, "bool", "false"),
    ("CertSigningRepeatTimes", Access.RW, "int", "0"),
    ("CertSigningWaitMinimum", Access.RW, "int", "0"),
    ("ContractValidationOffline", Access.RW, "bool", "false"),
    ("ISO15118PnCEnabled", Access.RW, "bool", "false"),
]
OPTIONAL = {s.name for s in CORE_KEYS if s.optional}
PRESENT = [e for e in EXPECTED if e[0] not in OPTIONAL]


def test_table_matches_the_design() -> None:
    assert [(s.name, s.access, s.kind) for s in CORE_KEYS] == [e[:3] for e in EXPECTED]


@pytest.mark.parametrize(
    ("name", "access", "kind", "default"), EXPECTED, ids=[e[0] for e in EXPECTED]
)
def test_every_key_readable_with_its_type(
    db: Database, name: str, access: Access, kind: str, default: str
) -> None:
    config = store(db)
    assert config.get(name) == default
    if kind == "bool":
        assert config.get_bool(name) is (default == "true")
    elif kind == "int":
        assert config.get_int(name) == int(default)
    elif kind == "csl":
        assert config.get_csl(name) == (default.split(",") if default else [])
    other = "get_int" if kind != "int" else "get_bool"
    with pytest.raises(TypeError):
        getattr(config, other)(name)


@pytest.mark.parametrize(
    "spec", [s for s in CORE_KEYS if s.name != "AuthorizationKey"], ids=lambda s: s.name
)
def test_every_default_is_valid(spec: KeySpec) -> None:
    ctx = CheckContext(
        FACTS, lambda key: next(s.default_for(FACTS) for s in CORE_KEYS if s.name == key)
    )
    default = spec.default_for(FACTS)
    assert validate(spec, default, ctx) == default


def test_defaults_follow_the_station(db: Database) -> None:
    facts = StationFacts(4, frozenset({ENERGY}), phases=1)
    config = store(db, facts=facts)
    assert config.get("NumberOfConnectors") == "4"
    assert config.get("ConnectorPhaseRotationMaxLength") == "5"
    assert config.get_csl("ConnectorPhaseRotation") == [f"{n}.NotApplicable" for n in range(5)]


def test_unknown_key(db: Database) -> None:
    config = store(db)
    with pytest.raises(KeyError):
        config.get("NoSuchKey")
    with pytest.raises(KeyError):
        config.get_bool("NoSuchKey")


def test_keys_lists_every_key_the_csms_may_see(db: Database) -> None:
    assert store(db).keys() == [e[0] for e in PRESENT]


def test_names_match_case_insensitively(db: Database) -> None:
    config = store(db)
    assert config.get("heartbeatinterval") == "300"
    assert config.change("HEARTBEATINTERVAL", "10") == "Accepted"
    assert config.get_int("HeartbeatInterval") == 10


# ---------------------------------------------------------------- ChangeConfiguration

CHANGES: list[tuple[str, str, str, str | None]] = [
    # key, value, answer, stored value when accepted
    ("NoSuchKey", "1", "NotSupported", None),
    ("NumberOfConnectors", "2", "Rejected", None),
    ("GetConfigurationMaxKeys", "50", "Rejected", None),
    ("SupportedFeatureProfiles", "Core", "Rejected", None),
    ("MeterValuesSampledDataMaxLength", "20", "Rejected", None),
    ("LocalPreAuthorize", "TRUE", "Accepted", "true"),
    ("LocalPreAuthorize", "False", "Accepted", "false"),
    ("LocalPreAuthorize", "yes", "Rejected", None),
    ("LocalPreAuthorize", "1", "Rejected", None),
    ("LocalPreAuthorize", " true", "Rejected", None),
    ("LocalPreAuthorize", "", "Rejected", None),
    ("HeartbeatInterval", "60", "Accepted", "60"),
    ("HeartbeatInterval", "0", "Accepted", "0"),
    ("HeartbeatInterval", "007", "Accepted", "7"),
    ("HeartbeatInterval", "-1", "Rejected", None),
    ("HeartbeatInterval", "+5", "Rejected", None),
    ("HeartbeatInterval", "1.5", "Rejected", None),
    ("HeartbeatInterval", " 60", "Rejected", None),
    ("HeartbeatInterval", "60 ", "Rejected", None),
    ("HeartbeatInterval", "", "Rejected", None),
    ("HeartbeatInterval", "1e3", "Rejected", None),
    ("HeartbeatInterval", "\u0663", "Rejected", None),
    ("HeartbeatInterval", "2147483647", "Accepted", "2147483647"),
    ("HeartbeatInterval", "2147483648", "Rejected", None),
    ("ConnectionTimeOut", "-5", "Rejected", None),
    ("TransactionMessageAttempts", "-1", "Rejected", None),
    ("TransactionMessageAttempts", "0", "Accepted", "0"),
    ("MeterValueSampleInterval", "-60", "Rejected", None),
    ("ClockAlignedDataInterval", "900", "Accepted", "900"),
    ("LightIntensity", "100", "Accepted", "100"),
    ("LightIntensity", "101", "Rejected", None),
    ("LightIntensity", "-1", "Rejected", None),
    (
        "MeterValuesSampledData",
        f"{ENERGY}, Power.Active.Import ,SoC",
        "Accepted",
        f"{ENERGY},Power.Active.Import,SoC",
    ),
    ("MeterValuesSampledData", "", "Accepted", ""),
    ("MeterValuesSampledData", "soc", "Accepted", "SoC"),
    ("MeterValuesSampledData", f"{ENERGY},Power.Reactive.Import", "Rejected", None),
    ("MeterValuesSampledData", f"{ENERGY},,SoC", "Rejected", None),
    ("MeterValuesSampledData", f"{ENERGY},{ENERGY}", "Rejected", None),
    ("MeterValuesAlignedData", "RPM", "Rejected", None),
    ("StopTxnSampledData", "Voltage,Current.Import", "Accepted", "Voltage,Current.Import"),
    ("StopTxnAlignedData", "Energy.Active.Export.Register", "Rejected", None),
    (
        "ConnectorPhaseRotation",
        "0.RST,1.RTS,2.NotApplicable",
        "Accepted",
        "0.RST,1.RTS,2.NotApplicable",
    ),
    ("ConnectorPhaseRotation", "1.unknown", "Accepted", "1.Unknown"),
    ("ConnectorPhaseRotation", "", "Accepted", ""),
    ("ConnectorPhaseRotation", "3.RST", "Rejected", None),
    ("ConnectorPhaseRotation", "-1.RST", "Rejected", None),
    ("ConnectorPhaseRotation", "1.XYZ", "Rejected", None),
    ("ConnectorPhaseRotation", "1RST", "Rejected", None),
    ("ConnectorPhaseRotation", "a.RST", "Rejected", None),
    ("ConnectorPhaseRotation", "1.RST,1.TSR", "Rejected", None),
    ("CpoName", "ACME Charging", "Accepted", "ACME Charging"),
    ("CpoName", "x" * 500, "Accepted", "x" * 500),
    ("CpoName", "x" * 501, "Rejected", None),
    ("CpoName", "line\nbreak", "Rejected", None),
    ("CpoName", "\ud800", "Rejected", None),
    ("AuthorizationKey", "0123456789abcdef", "Accepted", "0123456789abcdef"),
    ("AuthorizationKey", "a" * 40, "Accepted", "a" * 40),
    ("AuthorizationKey", "a" * 15, "Rejected", None),
    ("AuthorizationKey", "a" * 41, "Rejected", None),
    ("AuthorizationKey", "0123456789 abcdef", "Rejected", None),
    ("AuthorizationKey", "0123456789abcdé", "Rejected", None),
    ("SecurityProfile", "0", "Accepted", "0"),
    ("SecurityProfile", "1", "Rejected", None),  # no AuthorizationKey yet
    ("SecurityProfile", "2", "Rejected", None),  # ws:// only
    ("SecurityProfile", "3", "Rejected", None),
    ("SecurityProfile", "4", "Rejected", None),
]


@pytest.mark.parametrize(
    ("key", "value", "answer", "stored"),
    CHANGES,
    ids=[f"{k}={v[:30]!r}" for k, v, _, _ in CHANGES],
)
def test_change_answers(
    db: Database, key: str, value: str, answer: str, stored: str | None
) -> None:
    config = store(db)
    names = [e[0] for e in PRESENT]
    before = {k: config.get(k) for k in names}
    assert config.change(key, value) == answer
    if stored is None:
        assert {k: config.get(k) for k in names} == before
        assert db.query("SELECT * FROM config") == []
    else:
        assert config.get(key) == stored
        row = db.query_one("SELECT value FROM config WHERE key = ?", (key,))
        assert row is not None and row["value"] == stored


def test_measurand_list_longer_than_its_max_length(db: Database) -> None:
    facts = StationFacts(1, frozenset({ENERGY, "Power.Active.Import", "Voltage", "SoC"}))
    config = store(db, {"MeterValuesSampledDataMaxLength": "2"}, facts=facts)
    assert config.change("MeterValuesSampledData", f"{ENERGY},Voltage") == "Accepted"
    assert config.change("MeterValuesSampledData", f"{ENERGY},Voltage,SoC") == "Rejected"
    assert config.get("MeterValuesSampledData") == f"{ENERGY},Voltage"


def test_phase_rotation_limited_to_its_max_length(db: Database) -> None:
    config = store(db)
    assert config.change("ConnectorPhaseRotation", "0.RST,1.RST,2.RST") == "Accepted"
    config = store(db, {"ConnectorPhaseRotationMaxLength": "1", "ConnectorPhaseRotation": ""})
    assert config.change("ConnectorPhaseRotation", "0.RST,1.RST") == "Rejected"


def test_unchanged_value_is_accepted(db: Database) -> None:
    config = store(db)
    assert config.change("HeartbeatInterval", "300") == "Accepted"


class Installed:
    """What the certificate store holds, as the configuration keys ask for it."""

    def __init__(self, root: bool = False, certificate: bool = False) -> None:
        self.root = root
        self.certificate = certificate
        self.asked_valid_now: list[bool] = []

    def facts(self, tls: bool = True) -> StationFacts:
        def has_certificate(valid_now: bool) -> bool:
            self.asked_valid_now.append(valid_now)
            return self.certificate

        return StationFacts(
            1,
            frozenset({ENERGY}),
            tls=tls,
            has_csms_root=lambda: self.root,
            has_client_certificate=has_certificate,
        )


def test_security_profile_can_only_be_raised_once_its_prerequisites_are_met(
    db: Database,
) -> None:
    installed = Installed()
    config = store(db, facts=installed.facts())
    assert config.change("SecurityProfile", "1") == "Rejected"  # no AuthorizationKey
    assert config.change("AuthorizationKey", "k" * 20) == "Accepted"
    assert config.change("SecurityProfile", "1") == "Accepted"
    assert config.change("SecurityProfile", "0") == "Rejected"
    assert config.change("SecurityProfile", "2") == "Rejected"  # no CSMS root
    installed.root = True
    assert config.change("SecurityProfile", "2") == "Accepted"
    assert config.change("SecurityProfile", "1") == "Rejected"
    assert config.change("SecurityProfile", "2") == "Accepted"
    assert config.change("SecurityProfile", "3") == "Rejected"  # no charge point certificate
    installed.certificate = True
    assert config.change("SecurityProfile", "3") == "Accepted"
    assert installed.asked_valid_now[-1] is True  # a ChangeConfiguration: valid now
    assert config.get_int("SecurityProfile") == 3


def test_security_profile_3_needs_no_authorization_key(db: Database) -> None:
    config = store(db, facts=Installed(root=True, certificate=True).facts())
    assert config.change("SecurityProfile", "3") == "Accepted"


def test_security_profile_from_the_file_needs_its_prerequisites(db: Database) -> None:
    with pytest.raises(ConfigError, match=r"^ocpp\.config\.SecurityProfile: .*CSMS root"):
        store(db, {"SecurityProfile": "2", "AuthorizationKey": "k" * 20}, facts=Installed().facts())
    with pytest.raises(ConfigError, match=r"^ocpp\.config\.SecurityProfile: .*certificate"):
        store(db, {"SecurityProfile": "3"}, facts=Installed(root=True).facts())
    installed = Installed(root=True, certificate=True)
    assert (
        store(db, {"SecurityProfile": "3"}, facts=installed.facts()).get("SecurityProfile") == "3"
    )
    # At start-up the clock may not be set yet: a certificate is enough, valid or not.
    assert installed.asked_valid_now == [False]


def test_a_raised_security_profile_stays_whatever_the_file_says(db: Database) -> None:
    installed = Installed(root=True, certificate=True)
    config = store(db, {"AuthorizationKey": "k" * 20, "SecurityProfile": "1"}, installed.facts())
    assert config.change("SecurityProfile", "2") == "Accepted"
    # The file still says 1: the stored 2 wins (never lowered behind the CSMS's back) ...
    assert store(db, {"SecurityProfile": "1"}, installed.facts()).get("SecurityProfile") == "2"
    # ... and is not checked again: the root may be gone, the profile stays.
    installed.root = False
    assert store(db, {"SecurityProfile": "1"}, installed.facts()).get("SecurityProfile") == "2"
    # A file that raises it further wins over the stored value.
    installed.root = True
    assert store(db, {"SecurityProfile": "3"}, installed.facts()).get("SecurityProfile") == "3"


def test_revert_puts_the_profile_back_without_telling_subscribers(db: Database) -> None:
    installed = Installed(root=True)
    config = store(db, {"AuthorizationKey": "k" * 20, "SecurityProfile": "1"}, installed.facts())
    seen: list[tuple[str, str]] = []
    config.subscribe(lambda key, value: seen.append((key, value)))
    assert config.change("SecurityProfile", "2") == "Accepted"
    config.revert("SecurityProfile", "1")
    assert config.get_int("SecurityProfile") == 1
    assert seen == [("SecurityProfile", "2")]
    assert store(db, {"SecurityProfile": "1"}, installed.facts()).get("SecurityProfile") == "1"


def test_security_profile_2_needs_tls(db: Database) -> None:
    config = store(db, {"SecurityProfile": "1"})
    assert config.change("SecurityProfile", "2") == "Rejected"
    with pytest.raises(ConfigError, match=r"^ocpp\.config\.SecurityProfile: .*wss://"):
        store(db, {"SecurityProfile": "2"})


def test_reboot_required_keys(db: Database) -> None:
    keys = (*CORE_KEYS, KeySpec("VendorThing", Access.RW, "int", "1", reboot_required=True))
    config = store(db, keys=keys)
    assert config.change("VendorThing", "2") == "RebootRequired"
    assert config.get_int("VendorThing") == 2


def test_storage_failure_rejects(db: Database) -> None:
    config = store(db)
    db.close()
    assert config.change("HeartbeatInterval", "10") == "Rejected"
    assert config.get("HeartbeatInterval") == "300"


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from([s.name for s in CORE_KEYS] + ["Unknown", ""]),
    value=st.text(max_size=600),
)
def test_change_never_raises(db: Database, key: str, value: str) -> None:
    config = store(db)
    answer = config.change(key, value)
    assert answer in ("Accepted", "Rejected", "NotSupported")
    if answer == "Accepted":
        assert config.get(key) == store(db).get(key)


# ---------------------------------------------------------------- GetConfiguration


def test_get_configuration_all(db: Database) -> None:
    known, unknown = store(db).get_configuration(None)
    assert unknown == []
    assert [entry["key"] for entry in known] == [e[0] for e in PRESENT if e[1] is not Access.W]
    for entry in known:
        assert set(entry) == {"key", "readonly", "value"}
        assert isinstance(entry["value"], str)
    readonly = {entry["key"] for entry in known if entry["readonly"]}
    assert readonly == {e[0] for e in PRESENT if e[1] is Access.R}
    assert store(db).get_configuration([]) == (known, [])


def test_get_configuration_by_name(db: Database) -> None:
    known, unknown = store(db).get_configuration(
        ["HeartbeatInterval", "NumberOfConnectors", "Foo", "AuthorizationKey", "HeartbeatInterval"]
    )
    assert known == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
    ]
    assert unknown == ["Foo", "AuthorizationKey"]


def test_authorization_key_is_write_only(db: Database) -> None:
    config = store(db)
    assert config.change("AuthorizationKey", "0123456789abcdef0123") == "Accepted"
    known, _ = config.get_configuration(None)
    assert "AuthorizationKey" not in {entry["key"] for entry in known}
    assert all("0123456789abcdef0123" not in str(entry["value"]) for entry in known)
    assert config.get("AuthorizationKey") == "0123456789abcdef0123"


# ---------------------------------------------------------------- persistence and precedence


def test_changes_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = Database(path)
    config = store(first)
    assert config.change("HeartbeatInterval", "42") == "Accepted"
    assert config.change("MeterValuesSampledData", "Voltage") == "Accepted"
    assert config.change("AuthorizationKey", "k" * 16) == "Accepted"
    first.close()
    second = Database(path)
    config = store(second, {"HeartbeatInterval": "60"})
    assert config.get_int("HeartbeatInterval") == 42
    assert config.get_csl("MeterValuesSampledData") == ["Voltage"]
    assert config.get("AuthorizationKey") == "k" * 16
    second.close()


def test_yaml_initial_wins_over_default(db: Database) -> None:
    config = store(db, {"HeartbeatInterval": "60", "LocalPreAuthorize": "TRUE"})
    assert config.get_int("HeartbeatInterval") == 60
    assert config.get("LocalPreAuthorize") == "true"


def test_persisted_wins_over_yaml(db: Database) -> None:
    assert store(db, {"HeartbeatInterval": "60"}).change("HeartbeatInterval", "90") == "Accepted"
    assert store(db, {"HeartbeatInterval": "60"}).get_int("HeartbeatInterval") == 90


def test_read_only_keys_come_from_yaml(db: Database) -> None:
    config = store(db, {"SupportedFeatureProfiles": "core", "GetConfigurationMaxKeys": "50"})
    assert config.get("SupportedFeatureProfiles") == "Core"
    assert config.get_int("GetConfigurationMaxKeys") == 50


def test_stored_read_only_values_are_ignored(db: Database) -> None:
    db.execute("INSERT INTO config (key, value) VALUES ('GetConfigurationMaxKeys', '5')")
    assert store(db).get_int("GetConfigurationMaxKeys") == 100


def test_invalid_stored_value_is_ignored(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    db.execute("INSERT INTO config (key, value) VALUES ('MeterValuesSampledData', 'SoC')")
    db.execute("INSERT INTO config (key, value) VALUES ('HeartbeatInterval', 'soon')")
    db.execute("INSERT INTO config (key, value) VALUES ('RetiredKey', 'x')")
    facts = StationFacts(2, supported_measurands(has_bms=False))
    config = store(db, {"HeartbeatInterval": "60"}, facts=facts)
    assert config.get("MeterValuesSampledData") == ENERGY
    assert config.get_int("HeartbeatInterval") == 60
    assert "ignoring the stored value of MeterValuesSampledData" in caplog.text
    assert "ignoring the stored value of HeartbeatInterval" in caplog.text


def test_stored_list_longer_than_a_lowered_max_length_is_ignored(db: Database) -> None:
    assert store(db).change("StopTxnSampledData", "Voltage,SoC") == "Accepted"
    config = store(db, {"StopTxnSampledDataMaxLength": "1"})
    assert config.get("StopTxnSampledData") == ""


# ---------------------------------------------------------------- YAML initial errors

INITIAL_ERRORS: list[tuple[dict[str, str], str]] = [
    ({"HeartBeatInterva": "60"}, "ocpp.config.HeartBeatInterva: unknown OCPP configuration key"),
    ({"HeartbeatInterval": "-1"}, "ocpp.config.HeartbeatInterval: must be between 0 and"),
    ({"HeartbeatInterval": "soon"}, "ocpp.config.HeartbeatInterval: must be a decimal integer"),
    ({"LocalPreAuthorize": "yes"}, "ocpp.config.LocalPreAuthorize: must be true or false"),
    ({"NumberOfConnectors": "3"}, "ocpp.config.NumberOfConnectors: must equal the number of"),
    ({"MeterValuesSampledData": "RPM"}, "ocpp.config.MeterValuesSampledData: measurand 'RPM'"),
    (
        {"SupportedFeatureProfiles": "Core,Teleport"},
        "ocpp.config.SupportedFeatureProfiles: 'Teleport' is not one of",
    ),
    (
        {"SupportedFeatureProfilesMaxLength": "0"},
        # The default lists every profile the firmware has, Core first.
        "ocpp.config.SupportedFeatureProfiles: the default 'Core",
    ),
    ({"AuthorizationKey": "short"}, "ocpp.config.AuthorizationKey: must be at least 16"),
    (
        {"HeartbeatInterval": "1", "heartbeatinterval": "2"},
        "ocpp.config.heartbeatinterval: HeartbeatInterval is given twice",
    ),
]


@pytest.mark.parametrize(("initial", "message"), INITIAL_ERRORS)
def test_initial_value_errors(db: Database, initial: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        store(db, initial)
    assert str(caught.value).startswith(message)


def test_default_that_does_not_fit_the_station(db: Database) -> None:
    facts = StationFacts(1, frozenset({"Voltage"}))
    with pytest.raises(ConfigError, match=r"^ocpp\.config\.MeterValuesAlignedData: the default"):
        store(db, facts=facts)
    config = store(db, {"MeterValuesAlignedData": "", "MeterValuesSampledData": "voltage"}, facts)
    assert config.get_csl("MeterValuesSampledData") == ["Voltage"]


def test_yaml_may_set_the_right_number_of_connectors(db: Database) -> None:
    assert store(db, {"NumberOfConnectors": "2"}).get_int("NumberOfConnectors") == 2


def test_duplicate_key_specs_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="defined twice"):
        store(db, keys=(*CORE_KEYS, KeySpec("heartbeatinterval", Access.RW, "int", "1")))


# ---------------------------------------------------------------- subscribers


def test_subscribers_hear_accepted_changes(db: Database) -> None:
    config = store(db)
    heard: list[tuple[str, str]] = []
    config.subscribe(lambda key, value: heard.append((key, value)))
    config.change("heartbeatinterval", "30")
    config.change("HeartbeatInterval", "-1")
    config.change("NumberOfConnectors", "2")
    config.change("Nope", "1")
    config.change("HeartbeatInterval", "30")
    config.change("LocalPreAuthorize", "True")
    assert heard == [("HeartbeatInterval", "30"), ("LocalPreAuthorize", "true")]


def test_change_is_persisted_before_subscribers_run(db: Database) -> None:
    config = store(db)
    seen: list[object] = []

    def check(key: str, _value: str) -> None:
        row = db.query_one("SELECT value FROM config WHERE key = ?", (key,))
        seen.append(row["value"] if row is not None else None)

    config.subscribe(check)
    config.change("HeartbeatInterval", "30")
    assert seen == ["30"]


def test_failing_subscriber_does_not_break_the_change(db: Database) -> None:
    config = store(db)
    heard: list[str] = []

    def broken(_key: str, _value: str) -> None:
        raise RuntimeError("boom")

    config.subscribe(broken)
    config.subscribe(lambda key, _v: heard.append(key))
    assert config.change("HeartbeatInterval", "30") == "Accepted"
    assert heard == ["HeartbeatInterval"]


# ---------------------------------------------------------------- every standard key

# A valid value for every key a CSMS or another stack may hand over.
EVERY_KEY: dict[str, str] = {
    "AllowOfflineTxForUnknownId": "true",
    "AuthorizationCacheEnabled": "false",
    "AuthorizeRemoteTxRequests": "false",
    "BlinkRepeat": "3",
    "ClockAlignedDataInterval": "900",
    "ConnectionTimeOut": "45",
    "ConnectorPhaseRotation": "0.RST,1.RST,2.RTS",
    "ConnectorPhaseRotationMaxLength": "3",
    "GetConfigurationMaxKeys": "60",
    "HeartbeatInterval": "120",
    "LightIntensity": "50",
    "LocalAuthorizeOffline": "false",
    "LocalPreAuthorize": "true",
    "MaxEnergyOnInvalidId": "500",
    "MeterValuesAlignedData": "Energy.Active.Import.Register,Voltage",
    "MeterValuesAlignedDataMaxLength": "8",
    "MeterValuesSampledData": "Energy.Active.Import.Register,Current.Import",
    "MeterValuesSampledDataMaxLength": "8",
    "MeterValueSampleInterval": "30",
    "MinimumStatusDuration": "2",
    "NumberOfConnectors": "2",
    "ResetRetries": "2",
    "StopTransactionOnEVSideDisconnect": "false",
    "StopTransactionOnInvalidId": "false",
    "StopTxnAlignedData": "Energy.Active.Import.Register",
    "StopTxnAlignedDataMaxLength": "4",
    "StopTxnSampledData": "Energy.Active.Import.Register",
    "StopTxnSampledDataMaxLength": "4",
    "SupportedFeatureProfiles": (
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
    ),
    "SupportedFeatureProfilesMaxLength": "6",
    "TransactionMessageAttempts": "5",
    "TransactionMessageRetryInterval": "20",
    "UnlockConnectorOnEVSideDisconnect": "false",
    "WebSocketPingInterval": "30",
    "LocalAuthListEnabled": "true",
    "LocalAuthListMaxLength": "500",
    "SendLocalListMaxLength": "100",
    "ReserveConnectorZeroSupported": "false",
    "ChargeProfileMaxStackLevel": "5",
    "ChargingScheduleAllowedChargingRateUnit": "Current",
    "ChargingScheduleMaxPeriods": "12",
    "ConnectorSwitch3to1PhaseSupported": "false",
    "MaxChargingProfilesInstalled": "10",
    "AdditionalRootCertificateCheck": "true",
    "AuthorizationKey": "0123456789abcdef0123",
    "CertificateSignedMaxChainSize": "5000",
    "CertificateStoreMaxLength": "4",
    "CpoName": "ACME Charging",
    "SecurityProfile": "1",
    "CentralContractValidationAllowed": "false",
    "CertSigningRepeatTimes": "3",
    "CertSigningWaitMinimum": "60",
    "ContractValidationOffline": "true",
    "ISO15118PnCEnabled": "false",
    "SupportedFileTransferProtocols": "HTTP,HTTPS",
}


def test_every_key_of_the_ocpp_package_is_defined() -> None:
    from ocpp.v16.enums import ConfigurationKey

    assert {key.value for key in ConfigurationKey} <= {s.name for s in CORE_KEYS}
    assert set(EVERY_KEY) == {s.name for s in CORE_KEYS}


def test_every_standard_key_is_accepted_and_reported(db: Database) -> None:
    config = store(db, EVERY_KEY)
    known, unknown = config.get_configuration(None)
    values = {entry["key"]: entry["value"] for entry in known}
    assert unknown == []
    assert values == {k: v for k, v in EVERY_KEY.items() if k != "AuthorizationKey"}
    assert config.get("AuthorizationKey") == EVERY_KEY["AuthorizationKey"]
    assert config.notices == ()


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_optional_keys_exist_only_once_set(db: Database, name: str) -> None:
    absent = store(db)
    assert absent.get_configuration([name]) == ([], [name])
    assert absent.change(name, EVERY_KEY[name]) == "NotSupported"
    present = store(db, {name: EVERY_KEY[name]})
    (entry,), unknown = present.get_configuration([name.lower()])
    assert unknown == [] and entry["key"] == name and entry["value"] == EVERY_KEY[name]
    spec = next(s for s in CORE_KEYS if s.name == name)
    expected = "Rejected" if spec.readonly else "Accepted"
    assert present.change(name, EVERY_KEY[name]) == expected


def test_plug_and_charge_cannot_be_switched_on(db: Database) -> None:
    with pytest.raises(ConfigError, match=r"^ocpp\.config\.ISO15118PnCEnabled: must be false"):
        store(db, {"ISO15118PnCEnabled": "true"})
    config = store(db, {"ISO15118PnCEnabled": "false"})
    assert config.change("ISO15118PnCEnabled", "true") == "Rejected"


# ---------------------------------------------------------------- SupportedFeatureProfiles

PROFILE_KEYS = {
    "LocalAuthListManagement": (
        "LocalAuthListEnabled",
        "LocalAuthListMaxLength",
        "SendLocalListMaxLength",
    ),
    "Reservation": ("ReserveConnectorZeroSupported",),
    "SmartCharging": (
        "ChargeProfileMaxStackLevel",
        "ChargingScheduleAllowedChargingRateUnit",
        "ChargingScheduleMaxPeriods",
        "ConnectorSwitch3to1PhaseSupported",
        "MaxChargingProfilesInstalled",
    ),
    "FirmwareManagement": ("SupportedFileTransferProtocols",),
}


@pytest.mark.parametrize("left_out", sorted(PROFILE_KEYS))
def test_keys_of_a_left_out_profile_are_unknown_to_the_csms(db: Database, left_out: str) -> None:
    profiles = ",".join(p for p in ("Core", "RemoteTrigger", *PROFILE_KEYS) if p != left_out)
    config = store(db, {"SupportedFeatureProfiles": profiles})
    assert not config.supports(left_out) and config.supports("Core")
    hidden = PROFILE_KEYS[left_out]
    known, _ = config.get_configuration(None)
    assert not {entry["key"] for entry in known} & set(hidden)
    assert config.get_configuration(list(hidden)) == ([], list(hidden))
    offered = set(config.keys())
    for key in hidden:
        assert config.change(key, config.get(key)) == "NotSupported"
        assert key not in offered
    assert {k for p, keys in PROFILE_KEYS.items() if p != left_out for k in keys} <= offered


def test_yaml_key_of_a_left_out_profile_is_accepted_with_a_notice(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    config = store(db, {"SupportedFeatureProfiles": "Core", "LocalAuthListEnabled": "false"})
    assert config.notices == (
        "ocpp.config.LocalAuthListEnabled: accepted but unused: SupportedFeatureProfiles "
        "leaves out LocalAuthListManagement, so the CSMS does not see this key",
    )
    assert config.notices[0] in caplog.text
    assert config.get_configuration(["LocalAuthListEnabled"]) == ([], ["LocalAuthListEnabled"])
    # Its value is still checked: a wrong one is a wrong file.
    with pytest.raises(ConfigError, match=r"^ocpp\.config\.LocalAuthListEnabled: must be true"):
        store(db, {"SupportedFeatureProfiles": "Core", "LocalAuthListEnabled": "maybe"})


def test_core_cannot_be_left_out(db: Database) -> None:
    with pytest.raises(ConfigError, match=r"^ocpp\.config\.SupportedFeatureProfiles: must list"):
        store(db, {"SupportedFeatureProfiles": "SmartCharging,Reservation"})


def test_security_keys_do_not_depend_on_the_profiles(db: Database) -> None:
    config = store(db, {"SupportedFeatureProfiles": "Core"})
    known, _ = config.get_configuration(["SecurityProfile", "CpoName"])
    assert [entry["key"] for entry in known] == ["SecurityProfile", "CpoName"]
    assert config.change("AuthorizationKey", "k" * 16) == "Accepted"


# ---------------------------------------------------------------- vendor keys


def vendor_store(db: Database, initial: Mapping[str, str]) -> ConfigurationStore:
    return ConfigurationStore(db, initial, FACTS, vendor_prefixes=("ACME", "Zap."))


def test_vendor_keys_are_read_only_strings(db: Database) -> None:
    config = vendor_store(db, {"ACMEFanSpeed": "fast", "zap.Colour": "blue, light"})
    known, unknown = config.get_configuration(["acmefanspeed", "Zap.Colour", "ACMEOther"])
    assert known == [
        {"key": "ACMEFanSpeed", "readonly": True, "value": "fast"},
        {"key": "zap.Colour", "readonly": True, "value": "blue, light"},
    ]
    assert unknown == ["ACMEOther"]
    assert config.change("ACMEFanSpeed", "slow") == "Rejected"
    assert config.change("ACMEOther", "1") == "NotSupported"
    assert "ACMEFanSpeed" in {entry["key"] for entry in config.get_configuration(None)[0]}


VENDOR_ERRORS: list[tuple[Mapping[str, str], tuple[str, ...], str]] = [
    ({"FanSpeed": "1"}, (), "ocpp.config.FanSpeed: unknown OCPP configuration key (vendor keys"),
    ({"ACMEX": "1"}, (), "ocpp.config.ACMEX: unknown OCPP configuration key"),
    (
        {"FanSpeed": "1"},
        ("ACME",),
        "ocpp.config.FanSpeed: unknown OCPP configuration key (vendor keys start with 'ACME')",
    ),
    (
        {"HeartbeatIntervall": "1"},
        ("ACME",),
        "ocpp.config.HeartbeatIntervall: unknown OCPP configuration key, did you mean "
        "'HeartbeatInterval'?",
    ),
    ({}, ("Meter",), "ocpp.vendor_key_prefixes: 'Meter' begins the standard key"),
    ({}, ("heartbeat",), "ocpp.vendor_key_prefixes: 'heartbeat' begins the standard key"),
    ({"ACME" + "x" * 47: "1"}, ("ACME",), "ocpp.config.ACMExxx"),
    ({"ACMEText": "line\nbreak"}, ("ACME",), "ocpp.config.ACMEText: contains control"),
    ({"ACME Fan": "1"}, ("ACME",), "ocpp.config.'ACME Fan': a key name is printable ASCII"),
    ({"ACMEFän": "1"}, ("ACME",), "ocpp.config.'ACMEFän': a key name is printable ASCII"),
    (
        {"ACMEa": "1", "acmeA": "2"},
        ("ACME",),
        "ocpp.config.acmeA: ACMEa is given twice",
    ),
]


@pytest.mark.parametrize(("initial", "prefixes", "message"), VENDOR_ERRORS)
def test_vendor_key_errors(
    db: Database, initial: Mapping[str, str], prefixes: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ConfigurationStore(db, initial, FACTS, vendor_prefixes=prefixes)
    assert str(caught.value).startswith(message)
    with pytest.raises(ConfigError) as again:  # the same without a database (check-config)
        resolve_start(initial, FACTS, vendor_prefixes=prefixes)
    assert str(again.value) == str(caught.value)


# ---------------------------------------------------------------- password and SecurityProfile

WITH_PASSWORD = StationFacts(1, frozenset({ENERGY}), has_password=True)


def test_password_at_profile_0_is_kept_with_a_notice(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    config = store(db, {"SecurityProfile": "0"}, facts=WITH_PASSWORD)
    (notice,) = config.notices
    assert notice.startswith("ocpp.password is kept unused while SecurityProfile is 0")
    assert notice in caplog.text
    # The password stands in for the AuthorizationKey the "profile 1 needs a key" rule asks for.
    assert config.change("SecurityProfile", "1") == "Accepted"
    assert store(db, {"SecurityProfile": "0"}, facts=WITH_PASSWORD).notices == ()


def test_without_password_or_key_profile_1_is_refused(db: Database) -> None:
    config = store(db, {"SecurityProfile": "0"})
    assert config.change("SecurityProfile", "1") == "Rejected"
    assert config.notices == ()
