"""The YAML configuration file: frozen dataclasses, validated at start-up.

Every problem raises one ``ConfigError`` reading ``{source}: {dotted.key}:
{problem}``. Unknown keys are errors (typos must not pass silently), and values
must have the YAML type they stand for: ``true``/``false`` for booleans (``yes``
and ``on`` are plain strings here), integers for integers.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

import yaml

from firmware import __version__
from firmware.errors import ConfigError
from hal.interfaces import BoardSettings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# The websocket layer's limit on one message from the CSMS: a larger one closes
# the connection (1009), so ocpp.max_frame_bytes cannot be above it.
MAX_WEBSOCKET_FRAME = 8 * 1024 * 1024
_CHARGE_POINT_ID = re.compile(r"[A-Za-z0-9._~:@!$&'()*+,;=-]{1,48}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Identity:
    """What BootNotification says about the station (OCPP CiString limits)."""

    vendor: str = "OpenChargeFW"
    model: str = "SimCharger"
    serial_number: str | None = None
    firmware_version: str | None = __version__


@dataclass(frozen=True, slots=True)
class OcppSettings:
    csms_url: str
    charge_point_id: str
    password: str | None = None
    # "1.6", "2.0.1", or "auto": offer both, speak what the CSMS selects.
    version: str = "1.6"
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    vendor_key_prefixes: tuple[str, ...] = ()
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    response_timeout_s: float = 30.0
    max_frame_bytes: int = 262144
    boot_retry_s: float = 30.0
    dead_link_timeouts: int = 3
    authorize_timeout_s: float = 5.0
    backoff_reset_after_s: float = 60.0
    # 1,000 stations back over 10 s: about 100 handshakes a second for a CSMS
    # that just restarted, and all of them back well within 30 s.
    reconnect_spread_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The local API and web page. ``token``: required by every route when set, and it
    must be set when ``host`` is not a loopback address."""

    host: str = "127.0.0.1"
    port: int = 8180  # 0: pick a free port
    token: str | None = None


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Bounds of the durable transaction-message queue and of its replay."""

    max_messages: int = 200_000
    max_bytes: int = 64 * 1024 * 1024
    replay_batch_max: int = 100  # queued MeterValues packed into one request; 1: no packing
    # Frame bound of a packed request: below AWS API Gateway's 32 KB frame quota,
    # well below Jetty's 64 KiB message limit (see README).
    replay_batch_bytes: int = 24 * 1024


@dataclass(frozen=True, slots=True)
class SafetySettings:
    """Reactions the firmware takes on its own measurements."""

    overcurrent_margin_a: float = 2.0  # measured current above the offer by more than this
    overcurrent_time_s: float = 5.0  # ... for longer than this → OverCurrentFailure


INSTALLERS = ("release", "wheel", "command")
UPLOAD_METHODS = ("POST", "PUT")


@dataclass(frozen=True, slots=True)
class FirmwareUpdateSettings:
    """UpdateFirmware: where the file goes and how it is installed.

    ``installer`` ``release``: a new environment under ``<state_dir>/releases``
    holding the downloaded wheel (or bundle of wheels), run from the restart on
    and kept once it has come up (firmware/management/releases.py); ``wheel``:
    ``pip install`` of the wheel into the daemon's own environment (a writable
    development venv); ``command``: run ``command`` in a shell with the file's
    path (``{file}`` in it, else appended), exit code 0 meaning installed.
    ``download_dir`` None: ``<state_dir>/firmware``.

    ``require_signature``: a plain UpdateFirmware image is installed only when
    the detached signature at ``<location><signature_suffix>`` verifies, with
    the certificate in that file (issued by a ManufacturerRootCertificate) or
    one of ``signing_certificate``. Default: true on the ``hardware`` backend.
    """

    installer: str = "release"
    command: str | None = None
    download_dir: Path | None = None
    install_timeout_s: float = 900.0
    default_retries: int = 3
    default_retry_interval_s: int = 60
    transfer_timeout_s: float = 1800.0
    stall_timeout_s: float = 60.0
    require_signature: bool = False
    signature_suffix: str = ".sig"
    signing_certificate: Path | None = None


@dataclass(frozen=True, slots=True)
class DiagnosticsSettings:
    """GetDiagnostics: which logs go into the archive and how it is sent.

    ``log_file``: the daemon also writes its log lines there (rotated at
    ``log_max_bytes``, ``log_backups`` old files kept); None: no log file, the
    archive then holds the state summary only. ``include_id_tags``: idTags in
    full in the archive (the log file has them in full only at log_level
    DEBUG); masked by default.
    """

    log_file: Path | None = None
    log_max_bytes: int = 1024 * 1024
    log_backups: int = 5
    include_id_tags: bool = False
    upload_method: str = "POST"
    default_retries: int = 2
    default_retry_interval_s: int = 30
    transfer_timeout_s: float = 600.0
    stall_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class ResetSettings:
    """OCPP Reset Hard: ``hard_command`` (a shell command, e.g. ``systemctl reboot``) runs
    after the daemon has shut down; None: the daemon re-executes itself, as on Reset Soft.
    The board must stop the daemon within ``reboot_timeout_s``, else it re-executes."""

    hard_command: str | None = None
    reboot_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Provisioning of the security layer (see README, Security).

    ``csms_root_ca``: PEM file with the CSMS's root certificate(s), imported
    into the certificate store at start while it holds no CSMS root.
    ``charge_point_certificate`` / ``charge_point_key``: PEM files of a first
    client certificate (chain) and its key, imported while the store has none
    or an older one. ``renew_before_days``: the station asks for a new
    certificate (SignCertificate) this long before its own expires.
    ``manufacturer_root_ca``: PEM file of one or more ManufacturerRootCertificates
    (firmware signing), imported while the store holds none.
    """

    csms_root_ca: Path | None = None
    charge_point_certificate: Path | None = None
    charge_point_key: Path | None = None
    renew_before_days: int = 30
    manufacturer_root_ca: Path | None = None


@dataclass(frozen=True, slots=True)
class SecurityLogSettings:
    """The security log and the security events the station detects (README, Security).

    The log keeps at most ``max_entries`` entries and ``max_bytes`` bytes, the
    oldest going first. ``time_change_s``: a time adopted from the CSMS that
    moves the clock by more than this is a SettingSystemTime event.
    ``event_repeat_s``: InvalidMessages, MemoryExhaustion and
    TamperDetectionActivated are stored at most once per this, with one more
    entry counting the repeats. ``rss_limit_mb``: resident memory above this
    (checked every ``memory_check_s``) is a MemoryExhaustion event; None: not
    watched.
    """

    max_entries: int = 10000
    max_bytes: int = 1024 * 1024
    time_change_s: float = 60.0
    event_repeat_s: float = 60.0
    rss_limit_mb: int | None = None
    memory_check_s: float = 30.0


@dataclass(frozen=True, slots=True)
class HalSettings:
    backend: str = "simulated"
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Config:
    ocpp: OcppSettings
    identity: Identity = field(default_factory=Identity)
    connectors: int = 1
    hal: HalSettings = field(default_factory=HalSettings)
    board: BoardSettings = field(default_factory=BoardSettings)
    state_dir: Path = Path("/var/lib/chargepoint")
    api: ApiSettings = field(default_factory=ApiSettings)
    log_level: str = "INFO"
    shutdown_timeout_s: float = 10.0
    meter_poll_s: float = 1.0
    queue: QueueSettings = field(default_factory=QueueSettings)
    safety: SafetySettings = field(default_factory=SafetySettings)
    firmware_update: FirmwareUpdateSettings = field(default_factory=FirmwareUpdateSettings)
    diagnostics: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)
    reset: ResetSettings = field(default_factory=ResetSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    security_log: SecurityLogSettings = field(default_factory=SecurityLogSettings)
    # OCPP 2.0.1 device model values: {component: {variable: value or {attribute: value}}},
    # checked against the station's device model at start-up (firmware.preflight).
    device_model: Mapping[str, Mapping[str, object]] = field(
        default_factory=lambda: MappingProxyType({})
    )


# ---------------------------------------------------------------- YAML


_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys and resolves plain scalars as YAML 1.2 does.

    Only true/false are booleans (``yes``, ``no``, ``on`` stay strings) and only
    decimal and 0x numbers are integers (``010`` and ``1:30`` stay strings).
    """

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)


def load_config(path: Path) -> Config:
    """Read and validate the YAML file at ``path``; raises ``ConfigError``."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{source}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{source}: cannot read: not UTF-8 text ({err.reason})") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(err)}") from None
    return parse_config(data, source, base_dir=path.absolute().parent)


def _yaml_problem(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.MarkedYAMLError):
        problem = err.problem or err.context or "syntax error"
        mark = err.problem_mark or err.context_mark
        if mark is not None:
            return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
        return problem
    return str(err)


# ---------------------------------------------------------------- validation


class _Section:
    """One mapping of the file; every read is checked and named by its dotted key."""

    def __init__(
        self,
        source: str,
        prefix: str,
        data: object,
        known: tuple[str, ...] | None,
    ) -> None:
        self.source = source
        self.prefix = prefix
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.fail_at(prefix, f"must be a mapping, got {data!r}")
        self.data: Mapping[object, object] = data
        if known is not None:
            for key in data:
                if key not in known:
                    self.fail(str(key), _unknown(key, known))

    def fail_at(self, dotted: str, problem: str) -> NoReturn:
        where = f"{dotted}: " if dotted else ""
        raise ConfigError(f"{self.source}: {where}{problem}")

    def fail(self, key: str, problem: str) -> NoReturn:
        self.fail_at(self.path(key), problem)

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def section(self, key: str, known: tuple[str, ...] | None) -> _Section:
        return _Section(self.source, self.path(key), self.data.get(key), known)

    def required(self, key: str) -> object:
        value = self.data.get(key)
        if value is None:
            self.fail(key, "required")
        return value

    def string(
        self,
        key: str,
        default: str | None,
        *,
        max_len: int | None = None,
        nullable: bool = False,
    ) -> str | None:
        if key not in self.data:
            return default
        value = self.data[key]
        if value is None and nullable:
            return None
        limit = f" of at most {max_len} characters" if max_len is not None else ""
        if (
            not isinstance(value, str)
            or not value
            or (max_len is not None and len(value) > max_len)
            or _CONTROL.search(value)
        ):
            alternative = " or null" if nullable else ""
            self.fail(key, f"must be a non-empty string{limit}{alternative}, got {value!r}")
        return value

    def text(self, key: str, default: str, *, max_len: int | None = None) -> str:
        value = self.string(key, default, max_len=max_len)
        assert value is not None
        return value

    def integer(self, key: str, default: int, lowest: int, highest: int | None = None) -> int:
        value = self.data.get(key, default)
        if highest is None:
            expected = f"an integer of at least {lowest}"
        else:
            expected = f"an integer between {lowest} and {highest}"
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < lowest
            or (highest is not None and value > highest)
        ):
            self.fail(key, f"must be {expected}, got {value!r}")
        return value

    def number(
        self,
        key: str,
        default: float,
        *,
        above: float | None = 0.0,
        lowest: float | None = None,
        highest: float | None = None,
        expected: str = "a number greater than 0",
    ) -> float:
        value = self.data.get(key, default)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or (above is not None and value <= above)
            or (lowest is not None and value < lowest)
            or (highest is not None and value > highest)
        ):
            self.fail(key, f"must be {expected}, got {value!r}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {value!r}")
        return value


def _unknown(key: object, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1) if isinstance(key, str) else []
    hint = f", did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
    return f"unknown key{hint}"


_TOP = (
    "ocpp",
    "identity",
    "connectors",
    "hal",
    "board",
    "state_dir",
    "api",
    "log_level",
    "shutdown_timeout_s",
    "meter_poll_s",
    "queue",
    "safety",
    "firmware_update",
    "diagnostics",
    "reset",
    "security",
    "security_log",
    "device_model",
)
OCPP_VERSIONS = ("1.6", "2.0.1", "auto")
_OCPP = (
    "csms_url",
    "charge_point_id",
    "version",
    "password",
    "config",
    "vendor_key_prefixes",
    "reconnect_min_s",
    "reconnect_max_s",
    "response_timeout_s",
    "max_frame_bytes",
    "boot_retry_s",
    "dead_link_timeouts",
    "authorize_timeout_s",
    "backoff_reset_after_s",
    "reconnect_spread_s",
)
_IDENTITY = ("vendor", "model", "serial_number", "firmware_version")
_BOARD = ("max_current_a", "phases", "nominal_voltage_v", "has_lock", "has_bms")
_API = ("host", "port", "token")
_QUEUE = ("max_messages", "max_bytes", "replay_batch_max", "replay_batch_bytes")
_SAFETY = ("overcurrent_margin_a", "overcurrent_time_s")
_FIRMWARE_UPDATE = (
    "installer",
    "command",
    "download_dir",
    "install_timeout_s",
    "default_retries",
    "default_retry_interval_s",
    "transfer_timeout_s",
    "stall_timeout_s",
    "require_signature",
    "signature_suffix",
    "signing_certificate",
)
_RESET = ("hard_command", "reboot_timeout_s")
_SECURITY = (
    "csms_root_ca",
    "charge_point_certificate",
    "charge_point_key",
    "renew_before_days",
    "manufacturer_root_ca",
)
_SECURITY_LOG = (
    "max_entries",
    "max_bytes",
    "time_change_s",
    "event_repeat_s",
    "rss_limit_mb",
    "memory_check_s",
)
_DIAGNOSTICS = (
    "log_file",
    "log_max_bytes",
    "log_backups",
    "include_id_tags",
    "upload_method",
    "default_retries",
    "default_retry_interval_s",
    "transfer_timeout_s",
    "stall_timeout_s",
)


def parse_config(data: object, source: str = "<config>", *, base_dir: Path | None = None) -> Config:
    """Validate already-loaded YAML data.

    A relative ``state_dir`` is resolved against ``base_dir`` (the config file's
    directory), or the current directory when it is None.
    """
    if data is None:
        raise ConfigError(f"{source}: the file is empty; an 'ocpp' section is required")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: must be a mapping of sections, got {type(data).__name__}")
    top = _Section(source, "", data, _TOP)
    if "ocpp" not in data:
        top.fail("ocpp", "required")
    defaults = Config(ocpp=OcppSettings("", ""))
    log_level = top.text("log_level", defaults.log_level)
    if log_level.upper() not in LOG_LEVELS:
        top.fail("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    hal = _hal(top.section("hal", None))
    return Config(
        ocpp=_ocpp(top.section("ocpp", _OCPP)),
        identity=_identity(top.section("identity", _IDENTITY)),
        connectors=top.integer("connectors", defaults.connectors, 1, 16),
        hal=hal,
        board=_board(top.section("board", _BOARD)),
        state_dir=_state_dir(top, defaults.state_dir, base_dir),
        api=_api(top.section("api", _API)),
        log_level=log_level.upper(),
        shutdown_timeout_s=top.number("shutdown_timeout_s", defaults.shutdown_timeout_s),
        meter_poll_s=top.number("meter_poll_s", defaults.meter_poll_s),
        queue=_queue(top.section("queue", _QUEUE)),
        safety=_safety(top.section("safety", _SAFETY)),
        firmware_update=_firmware_update(
            top.section("firmware_update", _FIRMWARE_UPDATE), base_dir, hal.backend
        ),
        diagnostics=_diagnostics(top.section("diagnostics", _DIAGNOSTICS), base_dir),
        reset=_reset(top.section("reset", _RESET)),
        security=_security(top.section("security", _SECURITY), base_dir),
        security_log=_security_log(top.section("security_log", _SECURITY_LOG)),
        device_model=_device_model(top.section("device_model", None)),
    )


def _ocpp(s: _Section) -> OcppSettings:
    url = _csms_url(s)
    cp_id = s.required("charge_point_id")
    if not isinstance(cp_id, str) or not _CHARGE_POINT_ID.fullmatch(cp_id):
        s.fail(
            "charge_point_id",
            f"must be 1 to 48 characters from A-Z a-z 0-9 and ._~:@!$&'()*+,;=-, got {cp_id!r}",
        )
    password = s.string("password", None, nullable=True)
    ocpp_config = _ocpp_config(s.section("config", None), password)
    defaults = OcppSettings("", "")
    reconnect_min_s = s.number("reconnect_min_s", defaults.reconnect_min_s)
    return OcppSettings(
        csms_url=url,
        charge_point_id=cp_id,
        version=_ocpp_version(s),
        password=password,
        config=MappingProxyType(ocpp_config),
        vendor_key_prefixes=_vendor_key_prefixes(s),
        reconnect_min_s=reconnect_min_s,
        reconnect_max_s=s.number(
            "reconnect_max_s",
            defaults.reconnect_max_s,
            lowest=reconnect_min_s,
            expected=f"a number of at least reconnect_min_s ({reconnect_min_s:g})",
        ),
        response_timeout_s=s.number("response_timeout_s", defaults.response_timeout_s),
        max_frame_bytes=s.integer(
            "max_frame_bytes", defaults.max_frame_bytes, 1024, MAX_WEBSOCKET_FRAME
        ),
        boot_retry_s=s.number("boot_retry_s", defaults.boot_retry_s),
        dead_link_timeouts=s.integer("dead_link_timeouts", defaults.dead_link_timeouts, 1),
        authorize_timeout_s=s.number("authorize_timeout_s", defaults.authorize_timeout_s),
        backoff_reset_after_s=s.number(
            "backoff_reset_after_s",
            defaults.backoff_reset_after_s,
            above=None,
            lowest=0.0,
            expected="a number of at least 0",
        ),
        reconnect_spread_s=s.number(
            "reconnect_spread_s",
            defaults.reconnect_spread_s,
            above=None,
            lowest=0.0,
            expected="a number of at least 0",
        ),
    )


def _ocpp_version(s: _Section) -> str:
    value = s.data.get("version", "1.6")
    if value not in OCPP_VERSIONS or not isinstance(value, str):
        # YAML reads an unquoted 1.6 as a number.
        hint = f' (quote it: "{value}")' if isinstance(value, float) else ""
        s.fail("version", f'must be "1.6", "2.0.1" or "auto", got {value!r}{hint}')
    return value


def _csms_url(s: _Section) -> str:
    url = s.required("csms_url")
    if not isinstance(url, str):
        s.fail("csms_url", f"must be a string, got {url!r}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("ws", "wss"):
        s.fail("csms_url", "must start with ws:// or wss://")
    if any(c.isspace() for c in url) or _CONTROL.search(url):
        s.fail("csms_url", "must not contain blanks")
    if "?" in rest or "#" in rest:
        s.fail("csms_url", "must not contain a query or fragment (the id is appended)")
    if not rest.split("/", 1)[0]:
        s.fail("csms_url", "has no host")
    return f"{scheme.lower()}://{rest.removesuffix('/')}"


_VENDOR_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")


def _vendor_key_prefixes(s: _Section) -> tuple[str, ...]:
    """Names of OCPP configuration keys of the vendor's own start with one of these."""
    value = s.data.get("vendor_key_prefixes", [])
    if value is None:
        return ()
    if not isinstance(value, list):
        s.fail("vendor_key_prefixes", f"must be a list of prefixes, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not _VENDOR_PREFIX.fullmatch(item):
            s.fail(
                "vendor_key_prefixes",
                "each prefix must be 1 to 40 characters from A-Z a-z 0-9 _ . -, starting with "
                f"a letter, got {item!r}",
            )
    return tuple(value)


def _ocpp_config(s: _Section, password: str | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in s.data.items():
        if not isinstance(key, str):
            s.fail_at(s.prefix, f"keys must be strings, got {key!r}")
        values[key] = _ocpp_value(s, key, value)
    _check_security_profile(s, values, password)
    return values


def _ocpp_value(s: _Section, key: str, value: object, *, in_list: bool = False) -> str:
    if isinstance(value, list) and not in_list:
        items = [_ocpp_value(s, key, item, in_list=True) for item in value]
        if any("," in item for item in items):
            s.fail(key, "list items must not contain commas")
        return ",".join(items)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    s.fail(key, f"must be a string, integer, boolean or list of them, got {value!r}")


def _check_security_profile(s: _Section, values: dict[str, str], password: str | None) -> None:
    """SecurityProfile 1 and 2 need a password; without SecurityProfile, a password means 1.

    Profile 3 authenticates with the station's certificate alone.

    A password with SecurityProfile 0 is valid: it is kept unused (no Basic auth)
    until the CSMS raises the profile, as an AuthorizationKey would be.
    """
    by_name = {key.casefold(): key for key in values}
    key = by_name.get("securityprofile")
    has_key = bool(values.get(by_name.get("authorizationkey", ""), ""))
    if key is None:
        if password is not None:
            values["SecurityProfile"] = "1"
        return
    try:
        profile = int(values[key])
    except ValueError:
        return  # the configuration store names the problem
    if profile in (1, 2) and password is None and not has_key:
        s.fail(key, f"{profile} needs ocpp.password (or ocpp.config.AuthorizationKey)")


def _identity(s: _Section) -> Identity:
    d = Identity()
    return Identity(
        vendor=s.text("vendor", d.vendor, max_len=20),
        model=s.text("model", d.model, max_len=20),
        serial_number=s.string("serial_number", d.serial_number, max_len=25, nullable=True),
        firmware_version=s.string(
            "firmware_version", d.firmware_version, max_len=50, nullable=True
        ),
    )


def _hal(s: _Section) -> HalSettings:
    options: dict[str, object] = {}
    for key, value in s.data.items():
        if not isinstance(key, str):
            s.fail_at(s.prefix, f"keys must be strings, got {key!r}")
        if key != "backend":
            options[key] = value
    return HalSettings(
        backend=s.text("backend", HalSettings().backend),
        options=MappingProxyType(options),
    )


def _board(s: _Section) -> BoardSettings:
    d = BoardSettings()
    phases = s.data.get("phases", d.phases)
    if not isinstance(phases, int) or isinstance(phases, bool) or phases not in (1, 3):
        s.fail("phases", f"must be 1 or 3, got {phases!r}")
    return BoardSettings(
        max_current_a=s.number(
            "max_current_a",
            d.max_current_a,
            above=None,
            lowest=6,
            highest=80,
            expected="a number between 6 and 80",
        ),
        phases=phases,
        nominal_voltage_v=s.number(
            "nominal_voltage_v",
            d.nominal_voltage_v,
            above=None,
            lowest=100,
            highest=480,
            expected="a number between 100 and 480",
        ),
        has_lock=s.boolean("has_lock", d.has_lock),
        has_bms=s.boolean("has_bms", d.has_bms),
    )


def _state_dir(top: _Section, default: Path, base_dir: Path | None) -> Path:
    path = _path(top, "state_dir", base_dir, nullable=False)
    return default if path is None else path


def _path(s: _Section, key: str, base_dir: Path | None, *, nullable: bool = True) -> Path | None:
    """An optional path; a relative one is taken from ``base_dir``."""
    value = s.string(key, None, nullable=nullable)
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    return path.absolute()


_SIGNATURE_SUFFIX = re.compile(r"[A-Za-z0-9._~-]{1,32}")


def _firmware_update(s: _Section, base_dir: Path | None, backend: str) -> FirmwareUpdateSettings:
    d = FirmwareUpdateSettings()
    installer = s.text("installer", d.installer)
    if installer not in INSTALLERS:
        s.fail("installer", f"must be one of {', '.join(INSTALLERS)}, got {installer!r}")
    command = s.string("command", None, nullable=True)
    if installer == "command" and command is None:
        s.fail("command", "required when installer is command (e.g. 'rauc install {file}')")
    if installer != "command" and command is not None:
        s.fail("command", f"only used with installer: command (installer is {installer})")
    return FirmwareUpdateSettings(
        installer=installer,
        command=command,
        download_dir=_path(s, "download_dir", base_dir),
        install_timeout_s=s.number("install_timeout_s", d.install_timeout_s),
        default_retries=s.integer("default_retries", d.default_retries, 0, 100),
        default_retry_interval_s=s.integer(
            "default_retry_interval_s", d.default_retry_interval_s, 0, 86400
        ),
        transfer_timeout_s=s.number("transfer_timeout_s", d.transfer_timeout_s),
        stall_timeout_s=s.number("stall_timeout_s", d.stall_timeout_s),
        # An unsigned image is remote code execution for whoever controls the link:
        # refused on a real board unless the configuration says otherwise.
        require_signature=s.boolean("require_signature", backend == "hardware"),
        signature_suffix=_signature_suffix(s, d.signature_suffix),
        signing_certificate=_path(s, "signing_certificate", base_dir),
    )


def _signature_suffix(s: _Section, default: str) -> str:
    suffix = s.text("signature_suffix", default)
    if not _SIGNATURE_SUFFIX.fullmatch(suffix):
        s.fail(
            "signature_suffix",
            f"must be 1 to 32 characters from A-Z a-z 0-9 . _ ~ -, got {suffix!r}",
        )
    return suffix


def _diagnostics(s: _Section, base_dir: Path | None) -> DiagnosticsSettings:
    d = DiagnosticsSettings()
    method = s.text("upload_method", d.upload_method)
    if method.upper() not in UPLOAD_METHODS:
        s.fail("upload_method", f"must be POST or PUT, got {method!r}")
    log_file = _path(s, "log_file", base_dir)
    if log_file is not None and log_file.is_dir():
        s.fail("log_file", f"{log_file} is a directory; name a file in it")
    return DiagnosticsSettings(
        log_file=log_file,
        log_max_bytes=s.integer("log_max_bytes", d.log_max_bytes, 4096),
        log_backups=s.integer("log_backups", d.log_backups, 0, 100),
        include_id_tags=s.boolean("include_id_tags", d.include_id_tags),
        upload_method=method.upper(),
        default_retries=s.integer("default_retries", d.default_retries, 0, 100),
        default_retry_interval_s=s.integer(
            "default_retry_interval_s", d.default_retry_interval_s, 0, 86400
        ),
        transfer_timeout_s=s.number("transfer_timeout_s", d.transfer_timeout_s),
        stall_timeout_s=s.number("stall_timeout_s", d.stall_timeout_s),
    )


def _reset(s: _Section) -> ResetSettings:
    d = ResetSettings()
    return ResetSettings(
        hard_command=s.string("hard_command", d.hard_command, nullable=True),
        reboot_timeout_s=s.number(
            "reboot_timeout_s",
            d.reboot_timeout_s,
            highest=3600,
            expected="a number greater than 0 and at most 3600",
        ),
    )


def _security(s: _Section, base_dir: Path | None) -> SecuritySettings:
    d = SecuritySettings()
    certificate = _path(s, "charge_point_certificate", base_dir)
    key = _path(s, "charge_point_key", base_dir)
    if (certificate is None) != (key is None):
        missing = "charge_point_key" if key is None else "charge_point_certificate"
        s.fail(missing, "required with the other (a certificate and its key go together)")
    return SecuritySettings(
        csms_root_ca=_path(s, "csms_root_ca", base_dir),
        charge_point_certificate=certificate,
        charge_point_key=key,
        renew_before_days=s.integer("renew_before_days", d.renew_before_days, 1, 3650),
        manufacturer_root_ca=_path(s, "manufacturer_root_ca", base_dir),
    )


def _security_log(s: _Section) -> SecurityLogSettings:
    d = SecurityLogSettings()
    rss = s.data.get("rss_limit_mb")
    return SecurityLogSettings(
        max_entries=s.integer("max_entries", d.max_entries, 10, 1_000_000),
        max_bytes=s.integer("max_bytes", d.max_bytes, 16 * 1024, 16 * 1024 * 1024),
        time_change_s=s.number(
            "time_change_s",
            d.time_change_s,
            highest=86400,
            expected="a number greater than 0 and at most 86400",
        ),
        event_repeat_s=s.number(
            "event_repeat_s",
            d.event_repeat_s,
            above=None,
            lowest=0,
            highest=86400,
            expected="a number between 0 and 86400",
        ),
        rss_limit_mb=None if rss is None else s.integer("rss_limit_mb", 0, 16, 1_048_576),
        memory_check_s=s.number(
            "memory_check_s",
            d.memory_check_s,
            highest=3600,
            expected="a number greater than 0 and at most 3600",
        ),
    )


def _device_model(s: _Section) -> Mapping[str, Mapping[str, object]]:
    """A mapping of components, each a mapping of variables; what the names and values
    mean is the device model's to check (firmware.preflight)."""
    out: dict[str, Mapping[str, object]] = {}
    for key in s.data:
        if not isinstance(key, str):
            s.fail_at(s.prefix, f"component names must be strings, got {key!r}")
        variables = s.section(key, None)
        checked: dict[str, object] = {}
        for name, value in variables.data.items():
            if not isinstance(name, str):
                variables.fail_at(variables.prefix, f"variable names must be strings, got {name!r}")
            checked[name] = value
        out[key] = MappingProxyType(checked)
    return MappingProxyType(out)


def _safety(s: _Section) -> SafetySettings:
    d = SafetySettings()
    return SafetySettings(
        overcurrent_margin_a=s.number("overcurrent_margin_a", d.overcurrent_margin_a),
        overcurrent_time_s=s.number("overcurrent_time_s", d.overcurrent_time_s),
    )


def _queue(s: _Section) -> QueueSettings:
    d = QueueSettings()
    return QueueSettings(
        max_messages=s.integer("max_messages", d.max_messages, 10),
        max_bytes=s.integer("max_bytes", d.max_bytes, 64 * 1024),
        replay_batch_max=s.integer("replay_batch_max", d.replay_batch_max, 1, 1000),
        replay_batch_bytes=s.integer("replay_batch_bytes", d.replay_batch_bytes, 1024, 1024 * 1024),
    )


API_TOKEN_MIN_CHARS = 16
API_TOKEN_MAX_CHARS = 256


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the API on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve to any interface


def _api(s: _Section) -> ApiSettings:
    d = ApiSettings()
    host = s.text("host", d.host)
    token = s.data.get("token")
    # The token is a secret: the messages below never repeat it.
    if token is not None:
        if not isinstance(token, str):
            s.fail("token", f"must be a string, got {type(token).__name__}")
        if not API_TOKEN_MIN_CHARS <= len(token) <= API_TOKEN_MAX_CHARS:
            s.fail(
                "token",
                f"must be {API_TOKEN_MIN_CHARS} to {API_TOKEN_MAX_CHARS} characters, "
                f"got {len(token)}",
            )
        if not all("!" <= c <= "~" for c in token):
            s.fail("token", "must be printable ASCII without blanks")
    elif not is_loopback(host):
        s.fail(
            "token",
            f"required when api.host is not a loopback address (got {host!r}): "
            "every route of the API and the web page then asks for it",
        )
    return ApiSettings(host=host, port=s.integer("port", d.port, 0, 65535), token=token)
