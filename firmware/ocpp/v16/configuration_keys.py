"""OCPP 1.6 configuration keys as data: access, type, limits and validation.

Every key is a ``KeySpec``: the standard keys of OCPP 1.6 edition 2 (chapter 9),
of the OCPP 1.6 Security Whitepaper and of the OCA application note on ISO 15118
Plug & Charge with OCPP 1.6. A key with a rule that plain types cannot express
(measurand lists, phase rotation, SecurityProfile, NumberOfConnectors) carries a
``check`` function. ``profile`` names the feature profile a key belongs to: a
key of a profile that SupportedFeatureProfiles leaves out is unknown to the CSMS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from ocpp.v16.enums import Measurand

MAX_VALUE_LENGTH = 500  # CiString500
INT32_MAX = 2**31 - 1

_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*", re.ASCII)

Kind = Literal["bool", "int", "csl", "str"]


class Access(StrEnum):
    R = "R"
    RW = "RW"
    W = "W"


class InvalidValue(ValueError):
    """A configuration value breaks its key's rules; the message says which."""


def _no(*_args: object) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class StationFacts:
    """What the station is, as far as configuration values depend on it."""

    number_of_connectors: int
    supported_measurands: frozenset[str]
    phases: int = 3
    tls: bool = False
    # ``ocpp.password`` is set: it stands in for an AuthorizationKey the CSMS never set.
    has_password: bool = False
    # What security profiles 2 and 3 need: a CSMS root certificate installed (or
    # provisioned), and a charge point certificate (valid now, if the argument is
    # true: a ChangeConfiguration; at start-up the clock may not be set yet).
    has_csms_root: Callable[[], bool] = _no
    has_client_certificate: Callable[[bool], bool] = _no


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a value is validated against.

    ``current`` is the key's effective value before a ChangeConfiguration and
    None while start-up values (YAML, database) are validated. ``value_of``
    gives the effective value of another key. ``stored``: a value the station
    stored earlier (it was valid then; rules that depend on the moment, such
    as SecurityProfile's prerequisites, are not checked again).
    """

    facts: StationFacts
    value_of: Callable[[str], str]
    current: str | None = None
    stored: bool = False


Check = Callable[[str, CheckContext], str]
"""Takes a value already valid for its kind; returns it (maybe canonicalised) or
raises ``InvalidValue``."""


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One configuration key.

    ``minimum``/``maximum`` bound the number for ``int`` keys and the length for
    ``str`` keys. ``max_length_key`` names the key holding the highest item count
    of a ``csl`` key. ``choices`` restricts ``csl`` items and ``str`` values to a
    set (matched case-insensitively, stored in the spelling given here).
    ``default_from`` computes the default from the station facts instead of
    ``default``. An ``optional`` key exists only when ``ocpp.config`` sets it
    (the spec's "if this key is not present, the Charge Point does not provide
    the functionality"): until then GetConfiguration does not report it and
    ChangeConfiguration answers NotSupported. An ``only_raised`` integer key
    never goes down: neither by ChangeConfiguration (its check refuses) nor
    by the file at a restart (the higher of the file's and the stored value wins).
    """

    name: str
    access: Access
    kind: Kind
    default: str
    minimum: int | None = None
    maximum: int | None = None
    reboot_required: bool = False
    max_length_key: str | None = None
    profile: str = "Core"
    choices: frozenset[str] | None = None
    default_from: Callable[[StationFacts], str] | None = None
    check: Check | None = None
    optional: bool = False
    only_raised: bool = False

    @property
    def readonly(self) -> bool:
        return self.access is Access.R

    def default_for(self, facts: StationFacts) -> str:
        return self.default_from(facts) if self.default_from is not None else self.default


def validate(spec: KeySpec, raw: str, ctx: CheckContext) -> str:
    """The canonical form of ``raw`` for ``spec``; raises ``InvalidValue``."""
    if len(raw) > MAX_VALUE_LENGTH:
        raise InvalidValue(f"longer than {MAX_VALUE_LENGTH} characters")
    if _CONTROL.search(raw):
        raise InvalidValue("contains control characters")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue("is not valid text") from None
    if spec.kind == "bool":
        value = _bool(raw)
    elif spec.kind == "int":
        value = _int(spec, raw)
    elif spec.kind == "csl":
        value = _csl(spec, raw, ctx)
    else:
        value = _str(spec, raw)
    return spec.check(value, ctx) if spec.check is not None else value


def split_csl(value: str) -> list[str]:
    """Items of a canonical comma-separated list ("" is the empty list)."""
    return value.split(",") if value else []


def _bool(raw: str) -> str:
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise InvalidValue("must be true or false")
    return lowered


def _int(spec: KeySpec, raw: str) -> str:
    if not _INTEGER.fullmatch(raw):
        raise InvalidValue("must be a decimal integer")
    number = int(raw)
    lowest = spec.minimum if spec.minimum is not None else -INT32_MAX - 1
    highest = spec.maximum if spec.maximum is not None else INT32_MAX
    if not lowest <= number <= highest:
        raise InvalidValue(f"must be between {lowest} and {highest}")
    return str(number)


def _csl(spec: KeySpec, raw: str, ctx: CheckContext) -> str:
    if not raw.strip():
        return ""
    items = [item.strip() for item in raw.split(",")]
    if "" in items:
        raise InvalidValue("has an empty item")
    if spec.choices is not None:
        items = [_choose(item, spec.choices) for item in items]
    folded = [item.casefold() for item in items]
    if len(set(folded)) != len(folded):
        raise InvalidValue("lists an item twice")
    if spec.max_length_key is not None:
        limit = int(ctx.value_of(spec.max_length_key))
        if len(items) > limit:
            raise InvalidValue(f"has {len(items)} items, at most {limit} allowed")
    return ",".join(items)


def _str(spec: KeySpec, raw: str) -> str:
    if spec.minimum is not None and len(raw) < spec.minimum:
        raise InvalidValue(f"must be at least {spec.minimum} characters long")
    if spec.maximum is not None and len(raw) > spec.maximum:
        raise InvalidValue(f"must be at most {spec.maximum} characters long")
    if spec.choices is not None:
        return _choose(raw, spec.choices)
    return raw


def _choose(item: str, choices: frozenset[str]) -> str:
    for choice in choices:
        if choice.casefold() == item.casefold():
            return choice
    raise InvalidValue(f"{item!r} is not one of {', '.join(sorted(choices))}")


# ---------------------------------------------------------------- special rules


def _measurands(value: str, ctx: CheckContext) -> str:
    supported = sorted(ctx.facts.supported_measurands)
    items = []
    for item in split_csl(value):
        try:
            items.append(_choose(item, ctx.facts.supported_measurands))
        except InvalidValue:
            known = any(m.value.casefold() == item.casefold() for m in Measurand)
            why = "this station has no source for it" if known else "not an OCPP 1.6 measurand"
            raise InvalidValue(
                f"measurand {item!r} is not supported: {why} (supported: {', '.join(supported)})"
            ) from None
    return ",".join(items)


PHASE_ROTATIONS = frozenset({"NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR"})


def _phase_rotation(value: str, ctx: CheckContext) -> str:
    items = []
    seen: set[int] = set()
    highest = ctx.facts.number_of_connectors
    for item in split_csl(value):
        connector, dot, rotation = item.partition(".")
        if not dot or not _INTEGER.fullmatch(connector) or connector.startswith("-"):
            raise InvalidValue(f"{item!r} is not <connector>.<rotation>")
        number = int(connector)
        if number > highest:
            raise InvalidValue(f"{item!r}: connector must be between 0 and {highest}")
        if number in seen:
            raise InvalidValue(f"connector {number} is listed twice")
        seen.add(number)
        items.append(f"{number}.{_choose(rotation, PHASE_ROTATIONS)}")
    return ",".join(items)


def _default_phase_rotation(facts: StationFacts) -> str:
    rotation = "RST" if facts.phases == 3 else "NotApplicable"
    return ",".join(f"{n}.{rotation}" for n in range(facts.number_of_connectors + 1))


def _number_of_connectors(value: str, ctx: CheckContext) -> str:
    if int(value) != ctx.facts.number_of_connectors:
        raise InvalidValue(
            f"must equal the number of connectors ({ctx.facts.number_of_connectors})"
        )
    return value


def _security_profile(value: str, ctx: CheckContext) -> str:
    """The whitepaper: a profile is only raised, and only once its prerequisites are met."""
    profile = int(value)
    if ctx.stored:
        return value  # raised earlier, when it was checked; never lowered behind the CSMS's back
    if ctx.current is not None:
        if profile < int(ctx.current):
            raise InvalidValue("the security profile may only be raised")
        if profile == int(ctx.current):
            return value
        has_key = bool(ctx.value_of("AuthorizationKey")) or ctx.facts.has_password
        if profile in (1, 2) and not has_key:
            raise InvalidValue(
                f"security profile {profile} needs an AuthorizationKey (or ocpp.password) first"
            )
    if profile >= 2:
        if not ctx.facts.tls:
            raise InvalidValue(f"security profile {profile} needs a wss:// CSMS URL")
        if not ctx.facts.has_csms_root():
            raise InvalidValue(
                f"security profile {profile} needs a CSMS root certificate "
                "(security.csms_root_ca, or InstallCertificate)"
            )
    if profile == 3 and not ctx.facts.has_client_certificate(ctx.current is not None):
        raise InvalidValue(
            "security profile 3 needs a valid charge point certificate "
            "(security.charge_point_certificate, or SignCertificate)"
        )
    return value


def _printable_ascii(value: str, _ctx: CheckContext) -> str:
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise InvalidValue("must be printable ASCII without blanks")
    return value


CORE = "Core"
FEATURE_PROFILES = frozenset(
    {
        CORE,
        "FirmwareManagement",
        "LocalAuthListManagement",
        "Reservation",
        "SmartCharging",
        "RemoteTrigger",
    }
)
SECURITY = "Security"  # the Security Whitepaper: not a feature profile, always offered
PLUG_AND_CHARGE = "PlugAndCharge"  # the ISO 15118 application note: accepted, no effect
VENDOR = "Vendor"  # keys under ocpp.vendor_key_prefixes


def _feature_profiles(value: str, _ctx: CheckContext) -> str:
    if CORE not in split_csl(value):
        raise InvalidValue("must list Core: a station without the Core profile cannot work")
    return value


def _pnc_not_enabled(value: str, _ctx: CheckContext) -> str:
    if value == "true":
        raise InvalidValue("must be false: ISO 15118 Plug & Charge is not implemented")
    return value


ENERGY_REGISTER = "Energy.Active.Import.Register"

R, RW, W = Access.R, Access.RW, Access.W
SMART = "SmartCharging"


def _measurand_keys(name: str, default: str) -> tuple[KeySpec, KeySpec]:
    limit = f"{name}MaxLength"
    return (
        KeySpec(name, RW, "csl", default, max_length_key=limit, check=_measurands),
        KeySpec(limit, R, "int", "10", minimum=0),
    )


CORE_KEYS: tuple[KeySpec, ...] = (
    KeySpec("AllowOfflineTxForUnknownId", RW, "bool", "false"),
    KeySpec("AuthorizationCacheEnabled", RW, "bool", "true"),
    KeySpec("AuthorizeRemoteTxRequests", RW, "bool", "true"),
    KeySpec("BlinkRepeat", RW, "int", "0", minimum=0),
    KeySpec("ClockAlignedDataInterval", RW, "int", "0", minimum=0),
    KeySpec("ConnectionTimeOut", RW, "int", "60", minimum=0),
    KeySpec(
        "ConnectorPhaseRotation",
        RW,
        "csl",
        "",
        max_length_key="ConnectorPhaseRotationMaxLength",
        default_from=_default_phase_rotation,
        check=_phase_rotation,
    ),
    KeySpec(
        "ConnectorPhaseRotationMaxLength",
        R,
        "int",
        "",
        minimum=0,
        default_from=lambda facts: str(facts.number_of_connectors + 1),
    ),
    KeySpec("GetConfigurationMaxKeys", R, "int", "100", minimum=1),
    KeySpec("HeartbeatInterval", RW, "int", "300", minimum=0),
    KeySpec("LightIntensity", RW, "int", "100", minimum=0, maximum=100),
    KeySpec("LocalAuthorizeOffline", RW, "bool", "true"),
    KeySpec("LocalPreAuthorize", RW, "bool", "false"),
    KeySpec("MaxEnergyOnInvalidId", RW, "int", "0", minimum=0),
    *_measurand_keys("MeterValuesAlignedData", ENERGY_REGISTER),
    *_measurand_keys("MeterValuesSampledData", ENERGY_REGISTER),
    KeySpec("MeterValueSampleInterval", RW, "int", "60", minimum=0),
    KeySpec("MinimumStatusDuration", RW, "int", "0", minimum=0),
    KeySpec(
        "NumberOfConnectors",
        R,
        "int",
        "",
        minimum=1,
        default_from=lambda facts: str(facts.number_of_connectors),
        check=_number_of_connectors,
    ),
    KeySpec("ResetRetries", RW, "int", "3", minimum=0),
    KeySpec("StopTransactionOnEVSideDisconnect", RW, "bool", "true"),
    KeySpec("StopTransactionOnInvalidId", RW, "bool", "true"),
    *_measurand_keys("StopTxnAlignedData", ""),
    *_measurand_keys("StopTxnSampledData", ""),
    KeySpec(
        "SupportedFeatureProfiles",
        R,
        "csl",
        "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger,Reservation,SmartCharging",
        max_length_key="SupportedFeatureProfilesMaxLength",
        choices=FEATURE_PROFILES,
        check=_feature_profiles,
    ),
    KeySpec("SupportedFeatureProfilesMaxLength", R, "int", "6", minimum=0),
    KeySpec("TransactionMessageAttempts", RW, "int", "3", minimum=0),
    KeySpec("TransactionMessageRetryInterval", RW, "int", "60", minimum=0),
    KeySpec("UnlockConnectorOnEVSideDisconnect", RW, "bool", "true"),
    KeySpec("WebSocketPingInterval", RW, "int", "60", minimum=0),
    # Smart Charging profile (§9.4)
    KeySpec("ChargeProfileMaxStackLevel", R, "int", "8", minimum=0, profile=SMART),
    KeySpec(
        "ChargingScheduleAllowedChargingRateUnit",
        R,
        "csl",
        "Current,Power",
        profile=SMART,
        choices=frozenset({"Current", "Power"}),
    ),
    KeySpec("ChargingScheduleMaxPeriods", R, "int", "24", minimum=1, profile=SMART),
    KeySpec("ConnectorSwitch3to1PhaseSupported", R, "bool", "false", profile=SMART),
    KeySpec("MaxChargingProfilesInstalled", R, "int", "16", minimum=1, profile=SMART),
    # Security whitepaper
    KeySpec(
        "AuthorizationKey",
        W,
        "str",
        "",
        minimum=16,
        maximum=40,
        profile=SECURITY,
        check=_printable_ascii,
    ),
    KeySpec("CpoName", RW, "str", "", profile=SECURITY),  # O of the station's certificate
    KeySpec(
        "SecurityProfile",
        RW,
        "int",
        "0",
        minimum=0,
        maximum=3,
        profile=SECURITY,
        check=_security_profile,
        only_raised=True,
    ),
    # Reservation: connector 0 reservations (any connector) are taken.
    KeySpec("ReserveConnectorZeroSupported", R, "bool", "true", profile="Reservation"),
    # Local Auth List Management
    KeySpec("LocalAuthListEnabled", RW, "bool", "true", profile="LocalAuthListManagement"),
    KeySpec(
        "LocalAuthListMaxLength", R, "int", "10000", minimum=0, profile="LocalAuthListManagement"
    ),
    KeySpec(
        "SendLocalListMaxLength", R, "int", "1000", minimum=0, profile="LocalAuthListManagement"
    ),
    # Firmware Management: what UpdateFirmware and GetDiagnostics locations may use
    KeySpec(
        "SupportedFileTransferProtocols",
        R,
        "csl",
        "FTP,FTPS,HTTP,HTTPS",
        profile="FirmwareManagement",
        choices=frozenset({"FTP", "FTPS", "HTTP", "HTTPS"}),
    ),
    # Security Whitepaper, certificate management: a new CSMS root must be signed by
    # the old one; the most bytes a CertificateSigned chain may have; the most root
    # certificates (of both kinds) the store holds.
    KeySpec("AdditionalRootCertificateCheck", R, "bool", "false", profile=SECURITY),
    KeySpec(
        "CertificateSignedMaxChainSize",
        R,
        "int",
        "10000",
        minimum=0,
        maximum=10000,
        profile=SECURITY,
    ),
    KeySpec("CertificateStoreMaxLength", R, "int", "20", minimum=1, profile=SECURITY),
    # ISO 15118 Plug & Charge with OCPP 1.6 (OCA application note): not implemented.
    KeySpec(
        "CentralContractValidationAllowed",
        RW,
        "bool",
        "false",
        profile=PLUG_AND_CHARGE,
        optional=True,
    ),
    KeySpec(
        "CertSigningRepeatTimes", RW, "int", "0", minimum=0, profile=PLUG_AND_CHARGE, optional=True
    ),
    KeySpec(
        "CertSigningWaitMinimum", RW, "int", "0", minimum=0, profile=PLUG_AND_CHARGE, optional=True
    ),
    KeySpec(
        "ContractValidationOffline", RW, "bool", "false", profile=PLUG_AND_CHARGE, optional=True
    ),
    KeySpec(
        "ISO15118PnCEnabled",
        RW,
        "bool",
        "false",
        profile=PLUG_AND_CHARGE,
        optional=True,
        check=_pnc_not_enabled,
    ),
)
