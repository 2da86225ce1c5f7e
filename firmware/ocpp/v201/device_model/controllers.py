"""The controller components of OCPP 2.0.1 Part 2 and their built-in values.

Every variable the "Referenced Components and Variables" tables of the
functional blocks this station implements mark as required is here, and the
optional ones a CSMS commonly reads or sets. Built-in values follow this
station's OCPP 1.6 defaults where a 1.6 key means the same thing
(HeartbeatInterval 300, EVConnectionTimeOut 60, ...), and its configuration
where the file already says it (the response timeout, the reconnect backoff,
the largest frame, the charge point id).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from ocpp.v201.enums import DataEnumType, MeasurandEnumType, TxStartStopPointEnumType

from firmware.ocpp.v201.device_model.addressing import Component
from firmware.ocpp.v201.device_model.catalog import (
    RO,
    RW,
    WO,
    VariableSpec,
    define,
    with_bounds,
)
from firmware.ocpp.v201.device_model.topology import Station
from firmware.ocpp.v201.device_model.values import INVALID, InvalidValue

BOOLEAN = DataEnumType.boolean
INTEGER = DataEnumType.integer
DECIMAL = DataEnumType.decimal
STRING = DataEnumType.string
OPTIONS = DataEnumType.option_list
MEMBERS = DataEnumType.member_list
SEQUENCE = DataEnumType.sequence_list

ENERGY = MeasurandEnumType.energy_active_import_register.value
DAY_S = 86400
FILE_TRANSFER_PROTOCOLS = ("FTP", "FTPS", "HTTP", "HTTPS")
# Network connection profile slots SetNetworkProfile may fill (B09); slot 1 is the
# profile of the configuration file.
NETWORK_SLOTS = ("1", "2", "3")
# The transaction points the station's sessions follow (firmware/connector/controller.py).
# Not offered: ParkingBayOccupancy (no bay sensor), DataSigned (no meter that signs its
# data), EnergyTransfer (the relay closes for a transaction only, so energy never flows
# before one starts; and an EV pausing its charge must not end the session).
TX_POINTS = tuple(
    p.value
    for p in (
        TxStartStopPointEnumType.ev_connected,
        TxStartStopPointEnumType.authorized,
        TxStartStopPointEnumType.power_path_closed,
    )
)
TIME_SOURCES = ("Heartbeat", "NTP")
CACHE_POLICIES = ("LRU", "LFU", "FIFO", "CUSTOM")
RATE_UNITS = ("A", "W")
PASSWORD_MIN, PASSWORD_MAX = 16, 40
ITEMS_PER_MESSAGE = 50
CERTIFICATE_ENTRIES = 20  # root certificates the store keeps (1.6: CertificateStoreMaxLength)


def measurands(station: Station) -> tuple[str, ...]:
    """The measurands this station can sample, in OCPP 2.0.1's words."""
    known = {m.value for m in MeasurandEnumType}
    return tuple(sorted(m for m in station.measurands if m in known))


TX_START = "PowerPathClosed"
TX_STOP = "EVConnected,Authorized"


def _tx_points(value: str) -> None:
    if not [m for m in value.split(",") if m]:
        raise InvalidValue(INVALID, "must name at least one transaction point")


def _password(value: str) -> None:
    # Empty: none set over OCPP (the station then uses ocpp.password).
    if value and not (
        PASSWORD_MIN <= len(value) <= PASSWORD_MAX and all("!" <= c <= "~" for c in value)
    ):
        raise InvalidValue(
            INVALID,
            f"must be {PASSWORD_MIN} to {PASSWORD_MAX} printable ASCII characters without blanks",
        )


def _seconds(value: float) -> str:
    return str(max(1, math.ceil(value)))


def ocpp_comm(station: Station) -> Iterator[VariableSpec]:
    c = Component("OCPPCommCtrlr")
    yield define(c, "ActiveNetworkProfile", INTEGER, "1", mutability=RO)
    yield define(
        c,
        "FileTransferProtocols",
        MEMBERS,
        ",".join(FILE_TRANSFER_PROTOCOLS),
        mutability=RO,
        values=FILE_TRANSFER_PROTOCOLS,
        constant=True,
    )
    yield with_bounds(
        define(c, "HeartbeatInterval", INTEGER, "300", unit="s", min_limit=0, max_limit=DAY_S),
        "0",
        str(DAY_S),
    )
    yield define(
        c,
        "MessageTimeout",
        INTEGER,
        _seconds(station.response_timeout_s),
        instance="Default",
        mutability=RO,
        unit="s",
        min_limit=1,
        constant=True,
    )
    yield define(
        c,
        "MessageAttemptInterval",
        INTEGER,
        "60",
        instance="TransactionEvent",
        unit="s",
        min_limit=0,
    )
    yield define(c, "MessageAttempts", INTEGER, "3", instance="TransactionEvent", min_limit=0)
    yield define(c, "NetworkConfigurationPriority", SEQUENCE, "1", values=NETWORK_SLOTS)
    yield define(c, "NetworkProfileConnectionAttempts", INTEGER, "3", min_limit=1)
    yield define(c, "OfflineThreshold", INTEGER, "60", unit="s", min_limit=0)
    yield define(c, "ResetRetries", INTEGER, "3", min_limit=0)
    yield define(
        c,
        "RetryBackOffRandomRange",
        INTEGER,
        str(math.ceil(station.reconnect_spread_s)),
        unit="s",
        min_limit=0,
    )
    yield define(c, "RetryBackOffRepeatTimes", INTEGER, str(station.backoff_doublings), min_limit=0)
    yield define(
        c,
        "RetryBackOffWaitMinimum",
        INTEGER,
        _seconds(station.reconnect_min_s),
        unit="s",
        min_limit=0,
    )
    # A fixed cable cannot be unlocked: read-only false (OCPP 2.0.1, UnlockOnEVSideDisconnect).
    yield define(
        c,
        "UnlockOnEVSideDisconnect",
        BOOLEAN,
        "true" if station.has_lock else "false",
        mutability=RW if station.has_lock else RO,
        constant=not station.has_lock,
    )
    yield define(c, "WebSocketPingInterval", INTEGER, "60", unit="s", min_limit=0)


def security(station: Station) -> Iterator[VariableSpec]:
    c = Component("SecurityCtrlr")
    yield define(
        c, "AdditionalRootCertificateCheck", BOOLEAN, "false", mutability=RO, constant=True
    )
    yield define(
        c,
        "BasicAuthPassword",
        STRING,
        "",
        mutability=WO,
        max_limit=PASSWORD_MAX,
        check=_password,
    )
    # The installed root certificates (read from the store); maxLimit: how many it keeps.
    yield define(
        c,
        "CertificateEntries",
        INTEGER,
        "0",
        mutability=RO,
        min_limit=0,
        max_limit=CERTIFICATE_ENTRIES,
    )
    # A02.FR.17-19: an accepted SignCertificate is sent again while no CertificateSigned comes.
    yield define(c, "CertSigningRepeatTimes", INTEGER, "3", min_limit=0)
    yield define(c, "CertSigningWaitMinimum", INTEGER, "300", unit="s", min_limit=1)
    yield define(
        c, "Identity", STRING, station.charge_point_id, mutability=RO, max_limit=48, constant=True
    )
    yield define(c, "MaxCertificateChainSize", INTEGER, "10000", mutability=RO, min_limit=0)
    yield define(c, "OrganizationName", STRING, "", max_limit=64)
    # 0 (no authentication) is this station's bench setting; OCPP 2.0.1 itself starts at 1.
    yield define(
        c,
        "SecurityProfile",
        INTEGER,
        "1" if station.has_password else "0",
        mutability=RO,
        min_limit=0,
        max_limit=3,
        persistent=True,
        only_raised=True,
    )


def device_data(station: Station) -> Iterator[VariableSpec]:
    c = Component("DeviceDataCtrlr")
    for message in ("GetReport", "GetVariables", "SetVariables"):
        yield define(
            c,
            "BytesPerMessage",
            INTEGER,
            str(station.max_frame_bytes),
            instance=message,
            mutability=RO,
            min_limit=1,
        )
        yield define(
            c,
            "ItemsPerMessage",
            INTEGER,
            str(ITEMS_PER_MESSAGE),
            instance=message,
            mutability=RO,
            min_limit=1,
        )
    yield define(
        c, "ConfigurationValueSize", INTEGER, "1000", mutability=RO, min_limit=1, max_limit=1000
    )
    yield define(
        c, "ReportingValueSize", INTEGER, "2500", mutability=RO, min_limit=1, max_limit=2500
    )


def clock(_station: Station) -> Iterator[VariableSpec]:
    c = Component("ClockCtrlr")
    # The value is the station's clock at the moment it is read (DeviceModel).
    yield define(c, "DateTime", DataEnumType.date_time, "1970-01-01T00:00:00Z", mutability=RO)
    yield define(c, "TimeSource", SEQUENCE, "Heartbeat", values=TIME_SOURCES)


def auth(_station: Station) -> Iterator[VariableSpec]:
    c = Component("AuthCtrlr")
    yield define(c, "AuthorizeRemoteStart", BOOLEAN, "true")
    yield define(c, "LocalAuthorizeOffline", BOOLEAN, "true")
    yield define(c, "LocalPreAuthorize", BOOLEAN, "false")
    yield define(c, "MasterPassGroupId", STRING, "", max_limit=36)  # empty: no master pass
    yield define(c, "OfflineTxForUnknownIdEnabled", BOOLEAN, "false")


def auth_cache(_station: Station) -> Iterator[VariableSpec]:
    c = Component("AuthCacheCtrlr")
    yield define(c, "Available", BOOLEAN, "true", mutability=RO, constant=True)
    yield define(c, "Enabled", BOOLEAN, "true")
    yield define(c, "LifeTime", INTEGER, str(DAY_S), unit="s", min_limit=0)
    # Entries leave the cache at their expiry and on ClearCache: no replacement policy.
    yield define(
        c, "Policy", OPTIONS, "CUSTOM", mutability=RO, values=CACHE_POLICIES, constant=True
    )
    yield define(c, "Storage", INTEGER, "0", mutability=RO, unit="B", min_limit=0)


def local_auth_list(station: Station) -> Iterator[VariableSpec]:
    c = Component("LocalAuthListCtrlr")
    yield define(c, "Available", BOOLEAN, "true", mutability=RO, constant=True)
    yield define(
        c, "BytesPerMessage", INTEGER, str(station.max_frame_bytes), mutability=RO, min_limit=1
    )
    yield define(c, "Enabled", BOOLEAN, "true")
    # maxLimit: the most entries the list may hold.
    yield define(c, "Entries", INTEGER, "0", mutability=RO, min_limit=0, max_limit=10000)
    yield define(c, "ItemsPerMessage", INTEGER, "1000", mutability=RO, min_limit=1)
    yield define(c, "Storage", INTEGER, "0", mutability=RO, unit="B", min_limit=0)


def tx(_station: Station) -> Iterator[VariableSpec]:
    c = Component("TxCtrlr")
    yield define(c, "EVConnectionTimeOut", INTEGER, "60", unit="s", min_limit=0)
    yield define(c, "MaxEnergyOnInvalidId", INTEGER, "0", unit="Wh", min_limit=0)
    yield define(c, "StopTxOnEVSideDisconnect", BOOLEAN, "true")
    yield define(c, "StopTxOnInvalidId", BOOLEAN, "true")
    # The station's sessions: a transaction starts once the EV is plugged in and
    # authorized, and ends when either goes. Other points are refused, not ignored.
    yield define(c, "TxStartPoint", MEMBERS, TX_START, values=TX_POINTS, check=_tx_points)
    yield define(c, "TxStopPoint", MEMBERS, TX_STOP, values=TX_POINTS, check=_tx_points)


def _interval(c: Component, name: str, default: str) -> VariableSpec:
    spec = define(c, name, INTEGER, default, unit="s", min_limit=0, max_limit=DAY_S)
    return with_bounds(spec, "0", str(DAY_S))


def sampled_data(station: Station) -> Iterator[VariableSpec]:
    c = Component("SampledDataCtrlr")
    values = measurands(station)
    yield define(c, "TxEndedInterval", INTEGER, "0", unit="s", min_limit=0)
    yield define(c, "TxEndedMeasurands", MEMBERS, ENERGY, values=values)
    yield define(c, "TxStartedMeasurands", MEMBERS, ENERGY, values=values)
    yield _interval(c, "TxUpdatedInterval", "60")
    yield define(c, "TxUpdatedMeasurands", MEMBERS, ENERGY, values=values)


def aligned_data(station: Station) -> Iterator[VariableSpec]:
    c = Component("AlignedDataCtrlr")
    values = measurands(station)
    yield _interval(c, "Interval", "0")
    yield define(c, "Measurands", MEMBERS, ENERGY, values=values)
    yield define(c, "TxEndedInterval", INTEGER, "0", unit="s", min_limit=0)
    yield define(c, "TxEndedMeasurands", MEMBERS, "", values=values)


def smart_charging(_station: Station) -> Iterator[VariableSpec]:
    c = Component("SmartChargingCtrlr")
    yield define(c, "ACPhaseSwitchingSupported", BOOLEAN, "false", mutability=RO, constant=True)
    yield define(c, "Available", BOOLEAN, "true", mutability=RO, constant=True)
    yield define(c, "Enabled", BOOLEAN, "true")
    # maxLimit: the most charging profiles installed at once.
    yield define(
        c,
        "Entries",
        INTEGER,
        "0",
        instance="ChargingProfiles",
        mutability=RO,
        min_limit=0,
        max_limit=16,
    )
    yield define(c, "LimitChangeSignificance", DECIMAL, "10", unit="Percent", min_limit=0)
    yield define(c, "PeriodsPerSchedule", INTEGER, "24", mutability=RO, min_limit=1)
    yield define(c, "ProfileStackLevel", INTEGER, "8", mutability=RO, min_limit=0)
    yield define(c, "RateUnit", MEMBERS, "A,W", mutability=RO, values=RATE_UNITS)


def reservation(_station: Station) -> Iterator[VariableSpec]:
    c = Component("ReservationCtrlr")
    yield define(c, "Available", BOOLEAN, "true", mutability=RO, constant=True)
    yield define(c, "Enabled", BOOLEAN, "true")
    # Reservations without an EVSE id: any free EVSE is kept for the token.
    yield define(c, "NonEvseSpecific", BOOLEAN, "true", mutability=RO)


def controllers(station: Station) -> Iterator[VariableSpec]:
    for part in (
        aligned_data,
        auth,
        auth_cache,
        clock,
        device_data,
        local_auth_list,
        ocpp_comm,
        reservation,
        sampled_data,
        security,
        smart_charging,
        tx,
    ):
        yield from part(station)
