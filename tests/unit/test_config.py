"""The YAML configuration file: valid files and every kind of error message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import firmware
from firmware.config import (
    ApiSettings,
    Config,
    HalSettings,
    Identity,
    OcppSettings,
    SecuritySettings,
    load_config,
    parse_config,
)
from firmware.errors import ConfigError
from hal.interfaces import BoardSettings

REPO = Path(__file__).resolve().parents[2]

FULL = """\
ocpp:
  csms_url: wss://csms.example.com/ocpp/
  charge_point_id: CP-1
  password: s3cret-password-16
  config:
    HeartbeatInterval: 60
    LocalPreAuthorize: true
    MeterValuesSampledData: [Energy.Active.Import.Register, Power.Active.Import]
    CpoName: ACME
  reconnect_min_s: 2
  reconnect_max_s: 20.5
  response_timeout_s: 15
  max_frame_bytes: 65536
  dead_link_timeouts: 4
  authorize_timeout_s: 2.5
  backoff_reset_after_s: 120
  reconnect_spread_s: 0
  boot_retry_s: 45
identity:
  vendor: ACME
  model: Wallbox 22
  serial_number: SN-000123
  firmware_version: 1.2.3-rc1
connectors: 2
hal:
  backend: simulated
  speedup: 10
  meter: {address: 0x10}
board:
  max_current_a: 16
  phases: 1
  nominal_voltage_v: 230
  has_lock: false
  has_bms: false
state_dir: /tmp/cp-state
api:
  host: 0.0.0.0
  port: 0
  token: s3cr3t-t0ken-0123456789
log_level: debug
shutdown_timeout_s: 5
meter_poll_s: 0.5
"""

MINIMAL = """\
ocpp:
  csms_url: ws://127.0.0.1:9000/ocpp
  charge_point_id: CP-1
"""


def write(tmp_path: Path, text: str, name: str = "cp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ocpp": {"csms_url": "ws://127.0.0.1:9000/ocpp", "charge_point_id": "CP-1"}
    }
    data.update(overrides)
    return data


def with_ocpp(**overrides: Any) -> dict[str, Any]:
    data = minimal()
    data["ocpp"].update(overrides)
    return data


def error_of(data: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "cp.yaml")
    return str(caught.value)


# ---------------------------------------------------------------- valid files


def test_full_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config.ocpp == OcppSettings(
        csms_url="wss://csms.example.com/ocpp",
        charge_point_id="CP-1",
        password="s3cret-password-16",
        config={
            "HeartbeatInterval": "60",
            "LocalPreAuthorize": "true",
            "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import",
            "CpoName": "ACME",
            "SecurityProfile": "1",
        },
        reconnect_min_s=2.0,
        reconnect_max_s=20.5,
        response_timeout_s=15.0,
        max_frame_bytes=65536,
        boot_retry_s=45.0,
        dead_link_timeouts=4,
        authorize_timeout_s=2.5,
        backoff_reset_after_s=120.0,
        reconnect_spread_s=0.0,
    )
    assert config.identity == Identity("ACME", "Wallbox 22", "SN-000123", "1.2.3-rc1")
    assert config.connectors == 2
    assert config.hal.backend == "simulated"
    assert dict(config.hal.options) == {"speedup": 10, "meter": {"address": 16}}
    assert config.board == BoardSettings(
        max_current_a=16.0, phases=1, nominal_voltage_v=230.0, has_lock=False, has_bms=False
    )
    assert config.state_dir == Path("/tmp/cp-state")
    assert config.api == ApiSettings("0.0.0.0", 0, "s3cr3t-t0ken-0123456789")
    assert config.log_level == "DEBUG"
    assert config.shutdown_timeout_s == 5.0
    assert config.meter_poll_s == 0.5


def test_minimal_file_takes_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config == Config(
        ocpp=OcppSettings("ws://127.0.0.1:9000/ocpp", "CP-1"),
        identity=Identity(),
        connectors=1,
        hal=HalSettings(),
        board=BoardSettings(),
        state_dir=Path("/var/lib/chargepoint"),
        api=ApiSettings(),
        log_level="INFO",
    )
    assert config.identity.firmware_version == firmware.__version__
    assert dict(config.ocpp.config) == {}


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "auto"])
def test_ocpp_version(tmp_path: Path, version: str) -> None:
    text = MINIMAL.replace("ocpp:\n", f'ocpp:\n  version: "{version}"\n', 1)
    assert load_config(write(tmp_path, text)).ocpp.version == version
    assert parse_config(minimal()).ocpp.version == "1.6"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(AttributeError):
        config.connectors = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.ocpp.config["HeartbeatInterval"] = "1"  # type: ignore[index]


def test_shipped_simulated_example_parses() -> None:
    config = load_config(REPO / "config" / "simulated.yaml")
    assert config.ocpp.csms_url == "ws://127.0.0.1:9000/ocpp"
    assert config.ocpp.charge_point_id == "CP-1"
    assert config.connectors == 2
    assert config.hal.backend == "simulated"
    assert config.state_dir == REPO / "config" / "state"
    assert (config.api.host, config.api.port, config.api.token) == ("127.0.0.1", 8180, None)


def test_relative_state_dir_is_resolved_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = write(tmp_path / "etc", MINIMAL + "state_dir: ./state\n")
    assert load_config(path).state_dir == tmp_path / "etc" / "state"
    path = write(tmp_path / "etc", MINIMAL + "state_dir: ../var/cp\n")
    assert load_config(path).state_dir.resolve() == tmp_path / "var" / "cp"


def test_relative_state_dir_without_a_file_uses_base_dir(tmp_path: Path) -> None:
    config = parse_config(minimal(state_dir="state"), base_dir=tmp_path)
    assert config.state_dir == tmp_path / "state"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://h/ocpp/", "ws://h/ocpp"),
        ("WSS://h:9000/ocpp", "wss://h:9000/ocpp"),
        ("ws://h", "ws://h"),
    ],
)
def test_csms_url_normalised(url: str, expected: str) -> None:
    assert parse_config(with_ocpp(csms_url=url)).ocpp.csms_url == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true"), (False, "false"), (0, "0"), ("Core", "Core"), ([], ""), (["a", 1], "a,1")],
)
def test_ocpp_config_values_canonicalised(value: object, expected: str) -> None:
    config = parse_config(with_ocpp(config={"Key": value}))
    assert config.ocpp.config["Key"] == expected


def test_password_implies_security_profile_1() -> None:
    config = parse_config(with_ocpp(password="pw"))
    assert config.ocpp.config["SecurityProfile"] == "1"
    config = parse_config(with_ocpp(password="pw", config={"SecurityProfile": 2}))
    assert config.ocpp.config["SecurityProfile"] == "2"
    assert "SecurityProfile" not in parse_config(minimal()).ocpp.config


def test_password_with_security_profile_0_is_kept_unused() -> None:
    # As other stacks do: the key is stored, and used once the CSMS raises the profile.
    config = parse_config(with_ocpp(password="pw", config={"securityprofile": 0}))
    assert config.ocpp.password == "pw"
    assert config.ocpp.config["securityprofile"] == "0"


def test_vendor_key_prefixes() -> None:
    config = parse_config(with_ocpp(vendor_key_prefixes=["ACME", "Acme.", "X_1-"]))
    assert config.ocpp.vendor_key_prefixes == ("ACME", "Acme.", "X_1-")
    assert parse_config(with_ocpp(vendor_key_prefixes=None)).ocpp.vendor_key_prefixes == ()
    assert parse_config(minimal()).ocpp.vendor_key_prefixes == ()


def test_yaml_12_scalars(tmp_path: Path) -> None:
    text = MINIMAL + "identity: {serial_number: 0123, firmware_version: 1:30}\n"
    config = load_config(write(tmp_path, text))
    assert config.identity.serial_number == "0123"
    assert config.identity.firmware_version == "1:30"


# ---------------------------------------------------------------- errors


ERRORS: list[tuple[str, object, str]] = [
    ("no ocpp", {"connectors": 1}, "cp.yaml: ocpp: required"),
    ("ocpp not a mapping", {"ocpp": "x"}, "cp.yaml: ocpp: must be a mapping, got 'x'"),
    ("no url", {"ocpp": {"charge_point_id": "CP-1"}}, "cp.yaml: ocpp.csms_url: required"),
    (
        "http url",
        with_ocpp(csms_url="http://h/ocpp"),
        "cp.yaml: ocpp.csms_url: must start with ws:// or wss://",
    ),
    ("url int", with_ocpp(csms_url=5), "cp.yaml: ocpp.csms_url: must be a string, got 5"),
    (
        "version unquoted",
        with_ocpp(version=1.6),
        'cp.yaml: ocpp.version: must be "1.6", "2.0.1" or "auto", got 1.6 (quote it: "1.6")',
    ),
    (
        "version unknown",
        with_ocpp(version="2.1"),
        'cp.yaml: ocpp.version: must be "1.6", "2.0.1" or "auto", got \'2.1\'',
    ),
    (
        "version list",
        with_ocpp(version=["1.6"]),
        'cp.yaml: ocpp.version: must be "1.6", "2.0.1" or "auto", got [\'1.6\']',
    ),
    ("no host", with_ocpp(csms_url="ws:///ocpp"), "cp.yaml: ocpp.csms_url: has no host"),
    (
        "query",
        with_ocpp(csms_url="ws://h/ocpp?x=1"),
        "cp.yaml: ocpp.csms_url: must not contain a query or fragment (the id is appended)",
    ),
    (
        "blank",
        with_ocpp(csms_url="ws://h/o cpp"),
        "cp.yaml: ocpp.csms_url: must not contain blanks",
    ),
    (
        "no id",
        {"ocpp": {"csms_url": "ws://h"}},
        "cp.yaml: ocpp.charge_point_id: required",
    ),
    (
        "id with blank",
        with_ocpp(charge_point_id="CP 1"),
        "cp.yaml: ocpp.charge_point_id: must be 1 to 48 characters from A-Z a-z 0-9 and "
        "._~:@!$&'()*+,;=-, got 'CP 1'",
    ),
    (
        "id too long",
        with_ocpp(charge_point_id="X" * 49),
        "cp.yaml: ocpp.charge_point_id: must be 1 to 48",
    ),
    ("id slash", with_ocpp(charge_point_id="a/b"), "cp.yaml: ocpp.charge_point_id: must be 1"),
    ("id int", with_ocpp(charge_point_id=7), "cp.yaml: ocpp.charge_point_id: must be 1"),
    (
        "password empty",
        with_ocpp(password=""),
        "cp.yaml: ocpp.password: must be a non-empty string or null, got ''",
    ),
    (
        "config float",
        with_ocpp(config={"HeartbeatInterval": 1.5}),
        "cp.yaml: ocpp.config.HeartbeatInterval: must be a string, integer, boolean or list "
        "of them, got 1.5",
    ),
    (
        "config null",
        with_ocpp(config={"CpoName": None}),
        "cp.yaml: ocpp.config.CpoName: must be a string",
    ),
    (
        "config dict",
        with_ocpp(config={"CpoName": {"a": 1}}),
        "cp.yaml: ocpp.config.CpoName: must be a string",
    ),
    (
        "config nested list",
        with_ocpp(config={"StopTxnSampledData": [["SoC"]]}),
        "cp.yaml: ocpp.config.StopTxnSampledData: must be a string",
    ),
    (
        "config item with comma",
        with_ocpp(config={"StopTxnSampledData": ["SoC,Voltage"]}),
        "cp.yaml: ocpp.config.StopTxnSampledData: list items must not contain commas",
    ),
    (
        "config key int",
        with_ocpp(config={1: "x"}),
        "cp.yaml: ocpp.config: keys must be strings, got 1",
    ),
    (
        "vendor prefixes not a list",
        with_ocpp(vendor_key_prefixes="ACME"),
        "cp.yaml: ocpp.vendor_key_prefixes: must be a list of prefixes, got 'ACME'",
    ),
    (
        "vendor prefix empty",
        with_ocpp(vendor_key_prefixes=[""]),
        "cp.yaml: ocpp.vendor_key_prefixes: each prefix must be 1 to 40 characters",
    ),
    (
        "vendor prefix with a blank",
        with_ocpp(vendor_key_prefixes=["AC ME"]),
        "cp.yaml: ocpp.vendor_key_prefixes: each prefix must be 1 to 40 characters",
    ),
    (
        "vendor prefix a number",
        with_ocpp(vendor_key_prefixes=[7]),
        "cp.yaml: ocpp.vendor_key_prefixes: each prefix must be 1 to 40 characters from "
        "A-Z a-z 0-9 _ . -, starting with a letter, got 7",
    ),
    (
        "profile 1 without password",
        with_ocpp(config={"SecurityProfile": 1}),
        "cp.yaml: ocpp.config.SecurityProfile: 1 needs ocpp.password "
        "(or ocpp.config.AuthorizationKey)",
    ),
    (
        "reconnect min 0",
        with_ocpp(reconnect_min_s=0),
        "cp.yaml: ocpp.reconnect_min_s: must be a number greater than 0, got 0",
    ),
    (
        "reconnect max below min",
        with_ocpp(reconnect_min_s=5, reconnect_max_s=2),
        "cp.yaml: ocpp.reconnect_max_s: must be a number of at least reconnect_min_s (5), got 2",
    ),
    (
        "timeout string",
        with_ocpp(response_timeout_s="30"),
        "cp.yaml: ocpp.response_timeout_s: must be a number greater than 0, got '30'",
    ),
    (
        "timeout bool",
        with_ocpp(response_timeout_s=True),
        "cp.yaml: ocpp.response_timeout_s: must be a number greater than 0, got True",
    ),
    (
        "timeout inf",
        with_ocpp(boot_retry_s=float("inf")),
        "cp.yaml: ocpp.boot_retry_s: must be a number greater than 0, got inf",
    ),
    (
        "frame too small",
        with_ocpp(max_frame_bytes=100),
        "cp.yaml: ocpp.max_frame_bytes: must be an integer between 1024 and 8388608, got 100",
    ),
    (
        "frame float",
        with_ocpp(max_frame_bytes=2048.0),
        "cp.yaml: ocpp.max_frame_bytes: must be an integer between 1024 and 8388608, got 2048.0",
    ),
    (
        "frame over the websocket limit",
        with_ocpp(max_frame_bytes=9 * 1024 * 1024),
        "cp.yaml: ocpp.max_frame_bytes: must be an integer between 1024 and 8388608, got 9437184",
    ),
    (
        "dead link after 0 timeouts",
        with_ocpp(dead_link_timeouts=0),
        "cp.yaml: ocpp.dead_link_timeouts: must be an integer of at least 1, got 0",
    ),
    (
        "authorize timeout 0",
        with_ocpp(authorize_timeout_s=0),
        "cp.yaml: ocpp.authorize_timeout_s: must be a number greater than 0, got 0",
    ),
    (
        "negative backoff reset",
        with_ocpp(backoff_reset_after_s=-1),
        "cp.yaml: ocpp.backoff_reset_after_s: must be a number of at least 0, got -1",
    ),
    (
        "spread string",
        with_ocpp(reconnect_spread_s="10s"),
        "cp.yaml: ocpp.reconnect_spread_s: must be a number of at least 0, got '10s'",
    ),
    (
        "unknown ocpp key",
        with_ocpp(reconect_max_s=3),
        "cp.yaml: ocpp.reconect_max_s: unknown key, did you mean 'reconnect_max_s'?",
    ),
    (
        "connectors word",
        minimal(connectors="two"),
        "cp.yaml: connectors: must be an integer between 1 and 16, got 'two'",
    ),
    (
        "connectors 0",
        minimal(connectors=0),
        "cp.yaml: connectors: must be an integer between 1 and 16, got 0",
    ),
    (
        "connectors 17",
        minimal(connectors=17),
        "cp.yaml: connectors: must be an integer between 1 and 16, got 17",
    ),
    (
        "connectors bool",
        minimal(connectors=True),
        "cp.yaml: connectors: must be an integer between 1 and 16, got True",
    ),
    (
        "vendor too long",
        minimal(identity={"vendor": "V" * 21}),
        "cp.yaml: identity.vendor: must be a non-empty string of at most 20 characters, got "
        f"'{'V' * 21}'",
    ),
    (
        "model empty",
        minimal(identity={"model": ""}),
        "cp.yaml: identity.model: must be a non-empty string of at most 20 characters, got ''",
    ),
    (
        "serial too long",
        minimal(identity={"serial_number": "S" * 26}),
        "cp.yaml: identity.serial_number: must be a non-empty string of at most 25 characters "
        "or null",
    ),
    (
        "firmware version float",
        minimal(identity={"firmware_version": 1.2}),
        "cp.yaml: identity.firmware_version: must be a non-empty string of at most 50 "
        "characters or null, got 1.2",
    ),
    (
        "unknown identity key",
        minimal(identity={"serial": "x"}),
        "cp.yaml: identity.serial: unknown key, did you mean 'serial_number'?",
    ),
    ("hal backend empty", minimal(hal={"backend": ""}), "cp.yaml: hal.backend: must be a non-"),
    ("hal list", minimal(hal=["simulated"]), "cp.yaml: hal: must be a mapping, got ['simulated']"),
    (
        "current too high",
        minimal(board={"max_current_a": 100}),
        "cp.yaml: board.max_current_a: must be a number between 6 and 80, got 100",
    ),
    (
        "current too low",
        minimal(board={"max_current_a": 5.9}),
        "cp.yaml: board.max_current_a: must be a number between 6 and 80, got 5.9",
    ),
    ("phases 2", minimal(board={"phases": 2}), "cp.yaml: board.phases: must be 1 or 3, got 2"),
    (
        "voltage",
        minimal(board={"nominal_voltage_v": 12}),
        "cp.yaml: board.nominal_voltage_v: must be a number between 100 and 480, got 12",
    ),
    (
        "bool as yes string",
        minimal(board={"has_lock": "yes"}),
        "cp.yaml: board.has_lock: must be true or false, got 'yes'",
    ),
    (
        "bool as int",
        minimal(board={"has_bms": 1}),
        "cp.yaml: board.has_bms: must be true or false, got 1",
    ),
    (
        "unknown board key",
        minimal(board={"max_current": 16}),
        "cp.yaml: board.max_current: unknown key, did you mean 'max_current_a'?",
    ),
    (
        "state_dir int",
        minimal(state_dir=5),
        "cp.yaml: state_dir: must be a non-empty string, got 5",
    ),
    (
        "port too high",
        minimal(api={"port": 70000}),
        "cp.yaml: api.port: must be an integer between 0 and 65535, got 70000",
    ),
    (
        "port string",
        minimal(api={"port": "8180"}),
        "cp.yaml: api.port: must be an integer between 0 and 65535, got '8180'",
    ),
    ("unknown api key", minimal(api={"bind": "x"}), "cp.yaml: api.bind: unknown key"),
    (
        "all interfaces without a token",
        minimal(api={"host": "0.0.0.0"}),
        "cp.yaml: api.token: required when api.host is not a loopback address (got '0.0.0.0'): "
        "every route of the API and the web page then asks for it",
    ),
    (
        "a host name without a token",
        minimal(api={"host": "charger.local"}),
        "cp.yaml: api.token: required when api.host is not a loopback address "
        "(got 'charger.local'): every route of the API and the web page then asks for it",
    ),
    (
        "short token",
        minimal(api={"token": "hunter2"}),
        "cp.yaml: api.token: must be 16 to 256 characters, got 7",
    ),
    (
        "token with a blank",
        minimal(api={"token": "correct horse battery staple"}),
        "cp.yaml: api.token: must be printable ASCII without blanks",
    ),
    (
        "token not a string",
        minimal(api={"token": 12345}),
        "cp.yaml: api.token: must be a string, got int",
    ),
    (
        "log level",
        minimal(log_level="VERBOSE"),
        "cp.yaml: log_level: must be one of DEBUG, INFO, WARNING, ERROR, got 'VERBOSE'",
    ),
    (
        "include_id_tags not a flag",
        minimal(diagnostics={"include_id_tags": "yes"}),
        "cp.yaml: diagnostics.include_id_tags: must be true or false, got 'yes'",
    ),
    (
        "shutdown negative",
        minimal(shutdown_timeout_s=-1),
        "cp.yaml: shutdown_timeout_s: must be a number greater than 0, got -1",
    ),
    (
        "unknown top-level key",
        minimal(conectors=2),
        "cp.yaml: conectors: unknown key, did you mean 'connectors'?",
    ),
    (
        "unknown top-level key, nothing close",
        minimal(zzz=1),
        "cp.yaml: zzz: unknown key (known: ocpp, identity, connectors, hal, board, state_dir, "
        "api, log_level, shutdown_timeout_s, meter_poll_s, queue, safety, firmware_update, "
        "diagnostics, reset, security, security_log, device_model)",
    ),
    ("empty", None, "cp.yaml: the file is empty; an 'ocpp' section is required"),
    ("list", ["ocpp"], "cp.yaml: must be a mapping of sections, got list"),
]


@pytest.mark.parametrize(
    ("data", "message"), [(d, m) for _, d, m in ERRORS], ids=[n for n, _, _ in ERRORS]
)
def test_error_messages(data: object, message: str) -> None:
    assert error_of(data).startswith(message)


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="connectors"):
        parse_config(minimal(connectors=0))


def test_default_source_name() -> None:
    with pytest.raises(ConfigError, match=r"^<config>: ocpp: required$"):
        parse_config({})


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read: No such file or directory"):
        load_config(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cp.yaml"
    path.write_bytes(b"ocpp: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read: not UTF-8"):
        load_config(path)


def test_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "ocpp:\n  csms_url: [ws://x\n")
    with pytest.raises(ConfigError, match=r"cp\.yaml: not valid YAML: .*\(line 3, column 1\)"):
        load_config(path)


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "connectors: 1\nconnectors: 2\n")
    with pytest.raises(
        ConfigError, match=r"cp\.yaml: not valid YAML: duplicate key 'connectors' \(line 5"
    ):
        load_config(path)


def test_yaml_yes_is_not_a_bool(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "board: {has_lock: yes}\n")
    with pytest.raises(ConfigError, match=r"board\.has_lock: must be true or false, got 'yes'"):
        load_config(path)


def test_file_error_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "connectors: two\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: connectors: must be an integer between 1 and 16, got 'two'"
    )


def test_queue_bounds() -> None:
    config = parse_config(
        {
            "ocpp": {"csms_url": "ws://h/ocpp", "charge_point_id": "CP"},
            "queue": {"max_messages": 500, "max_bytes": 100000},
        }
    )
    assert (config.queue.max_messages, config.queue.max_bytes) == (500, 100000)
    with pytest.raises(ConfigError, match=r"queue\.max_messages"):
        parse_config(
            {
                "ocpp": {"csms_url": "ws://h/ocpp", "charge_point_id": "CP"},
                "queue": {"max_messages": 1},
            }
        )


def test_reset_settings() -> None:
    assert parse_config(minimal()).reset.hard_command is None
    config = parse_config(
        minimal(reset={"hard_command": "systemctl reboot", "reboot_timeout_s": 90})
    )
    assert (config.reset.hard_command, config.reset.reboot_timeout_s) == ("systemctl reboot", 90)
    assert parse_config(minimal(reset={"hard_command": None})).reset.hard_command is None


@pytest.mark.parametrize(
    ("reset", "message"),
    [
        ({"hard_command": ""}, "reset.hard_command: must be a non-empty string or null, got ''"),
        ({"hard_command": ["reboot"]}, "reset.hard_command: must be a non-empty string"),
        ({"reboot_timeout_s": 0}, "reset.reboot_timeout_s: must be a number greater than 0"),
        ({"reboot_timeout_s": 7200}, "reset.reboot_timeout_s: must be a number greater than 0"),
        ({"hard_comand": "x"}, "reset.hard_comand: unknown key, did you mean 'hard_command'?"),
    ],
)
def test_reset_errors(reset: dict[str, object], message: str) -> None:
    assert error_of(minimal(reset=reset)).startswith(f"cp.yaml: {message}")


def test_replay_packing_bounds() -> None:
    ocpp = {"csms_url": "ws://h/ocpp", "charge_point_id": "CP"}
    default = parse_config({"ocpp": ocpp}).queue
    assert (default.replay_batch_max, default.replay_batch_bytes) == (100, 24576)
    queue = parse_config(
        {"ocpp": ocpp, "queue": {"replay_batch_max": 1, "replay_batch_bytes": 8000}}
    ).queue
    assert (queue.replay_batch_max, queue.replay_batch_bytes) == (1, 8000)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"replay_batch_max": 0}, r"queue\.replay_batch_max: must be an integer between 1 and"),
        ({"replay_batch_max": "50"}, r"queue\.replay_batch_max: must be an integer"),
        ({"replay_batch_max": 5000}, r"queue\.replay_batch_max: must be an integer between"),
        ({"replay_batch_bytes": 100}, r"queue\.replay_batch_bytes: must be an integer between"),
        ({"replay_batch_bytes": True}, r"queue\.replay_batch_bytes: must be an integer"),
    ]
    for section, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_config({"ocpp": ocpp, "queue": section})


# ---------------------------------------------------------------- security


def test_security_defaults_and_paths(tmp_path: Path) -> None:
    assert parse_config(minimal()).security == SecuritySettings()
    config = parse_config(
        minimal(
            security={
                "csms_root_ca": "pki/root.pem",
                "charge_point_certificate": "/etc/chargepoint/cp.pem",
                "charge_point_key": "cp.key",
                "renew_before_days": 14,
            }
        ),
        base_dir=tmp_path,
    )
    assert config.security == SecuritySettings(
        csms_root_ca=tmp_path / "pki" / "root.pem",
        charge_point_certificate=Path("/etc/chargepoint/cp.pem"),
        charge_point_key=tmp_path / "cp.key",
        renew_before_days=14,
    )


@pytest.mark.parametrize(
    ("security", "message"),
    [
        ({"csms_root": "x"}, "security.csms_root: unknown key, did you mean 'csms_root_ca'?"),
        ({"csms_root_ca": 5}, "security.csms_root_ca: must be a non-empty string"),
        ({"charge_point_certificate": "cp.pem"}, "security.charge_point_key: required with"),
        ({"charge_point_key": "cp.key"}, "security.charge_point_certificate: required with"),
        ({"renew_before_days": 0}, "security.renew_before_days: must be an integer between 1"),
        ({"renew_before_days": "30"}, "security.renew_before_days: must be an integer"),
    ],
)
def test_security_errors_name_the_key(security: dict[str, Any], message: str) -> None:
    assert error_of(minimal(security=security)).startswith(f"cp.yaml: {message}")


def test_security_profile_3_needs_no_password() -> None:
    config = parse_config(
        minimal(
            ocpp={
                "csms_url": "wss://h/ocpp",
                "charge_point_id": "CP-1",
                "config": {"SecurityProfile": 3},
            }
        )
    )
    assert config.ocpp.config["SecurityProfile"] == "3"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "LOCALHOST"])
def test_loopback_needs_no_token(host: str) -> None:
    assert parse_config(minimal(api={"host": host}), "cp.yaml").api.token is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "charger.local"])
def test_any_other_address_takes_a_token(host: str) -> None:
    token = "0123456789abcdef"
    assert parse_config(minimal(api={"host": host, "token": token}), "cp.yaml").api.token == token
