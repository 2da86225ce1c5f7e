"""What ``chargepoint run`` refuses at start-up because of the configuration file.

``check`` raises the first ``ConfigError`` or ``HalConfigError`` of a loaded
configuration, without opening a device, the state database or a connection,
and returns the notices about what it accepted. ``chargepoint check-config``
runs exactly this, and ``chargepoint run`` runs it before it starts anything,
so both refuse the same files with the same one-line message.
"""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from firmware.config import Config
from firmware.errors import ConfigError
from firmware.metering import supported_measurands
from firmware.ocpp.v16.configuration import StationFacts, resolve_start
from firmware.ocpp.versions import V201, offered
from firmware.security import provisioning
from firmware.security.firmware_signing import describe, load_certificates
from hal.registry import check_backend

MAX_CERTIFICATE_FILE = 1024 * 1024


def station_facts(config: Config) -> StationFacts:
    """What the OCPP configuration keys of this station are validated against.

    The certificates are those of the file; the running station asks its
    certificate store instead (``App``)."""
    has_root = config.security.csms_root_ca is not None
    has_certificate = config.security.charge_point_certificate is not None
    return StationFacts(
        number_of_connectors=config.connectors,
        supported_measurands=supported_measurands(has_bms=config.board.has_bms),
        phases=config.board.phases,
        tls=config.ocpp.csms_url.startswith("wss://"),
        has_password=config.ocpp.password is not None,
        has_csms_root=lambda: has_root,
        has_client_certificate=lambda _now: has_certificate,
    )


def log_file_error(path: Path, err: OSError) -> ConfigError:
    return ConfigError(f"diagnostics.log_file: cannot open {path}: {err.strerror or err}")


def check_log_file(path: Path | None) -> None:
    """Refuse a log file the daemon could not open for appending; creates nothing."""
    if path is None:
        return
    try:
        if path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
            return
        # The daemon creates the missing directories: the nearest existing one decides.
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent))
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(parent))
    except OSError as err:
        raise log_file_error(path, err) from None


def certificate_file(path: Path | None, key: str) -> list[x509.Certificate]:
    """The certificates of the PEM file a configuration key names (none when unset)."""
    if path is None:
        return []
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CERTIFICATE_FILE + 1)
    except OSError as err:
        raise ConfigError(f"{key}: cannot read {path}: {err.strerror or err}") from None
    if len(data) > MAX_CERTIFICATE_FILE:
        raise ConfigError(f"{key}: {path} is larger than {MAX_CERTIFICATE_FILE} bytes")
    try:
        return load_certificates(data, str(path))
    except ValueError as err:
        raise ConfigError(f"{key}: {err}") from None


def _signing_notices(config: Config) -> list[str]:
    """Trust the firmware update relies on: refused files stop start-up, odd ones are noted."""
    roots_key = "security.manufacturer_root_ca"
    signer_key = "firmware_update.signing_certificate"
    roots = certificate_file(config.security.manufacturer_root_ca, roots_key)
    signers = certificate_file(config.firmware_update.signing_certificate, signer_key)
    now = datetime.now(UTC)
    notices = [
        f"{key}: {describe(cert)} is outside its validity dates "
        f"({cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})"
        for key, certs in ((roots_key, roots), (signer_key, signers))
        for cert in certs
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    ]
    if config.firmware_update.require_signature and not roots and not signers:
        notices.append(
            "firmware_update.require_signature: no manufacturer root "
            f"({roots_key}) and no {signer_key}: firmware updates are refused until the "
            "CSMS installs a ManufacturerRootCertificate"
        )
    return notices


def check(config: Config) -> tuple[str, ...]:
    """Refuse what start-up would refuse; the notices about what is accepted but unused."""
    check_log_file(config.diagnostics.log_file)
    signing = _signing_notices(config)
    check_backend(config.hal.backend, config.hal.options, config.connectors, config.board)
    provisioned = provisioning.load(config.security, config.ocpp.charge_point_id, datetime.now(UTC))
    start = resolve_start(
        config.ocpp.config,
        station_facts(config),
        vendor_prefixes=config.ocpp.vendor_key_prefixes,
    )
    if config.device_model or "2.0.1" in offered(config.ocpp.version):
        # A file's device_model is checked whatever protocol the station speaks, so it is
        # ready for OCPP 2.0.1. Imported here: the 2.0.1 catalog costs a 1.6 start 0.5 s.
        from firmware.ocpp.v201 import device_model

        device_model.resolve(config)
    notices = [*start.notices, *provisioned.notices, *signing, *version_notices(config)]
    if config.device_model and "2.0.1" not in offered(config.ocpp.version):
        notices.append(DEVICE_MODEL_NOTICE)
    return tuple(notices)


DEVICE_MODEL_NOTICE = (
    "device_model: accepted but unused: ocpp.version offers OCPP 1.6 only, and the device "
    "model is OCPP 2.0.1's"
)


def version_notices(config: Config) -> tuple[str, ...]:
    """What a station that may speak OCPP 2.0.1 leaves out in it."""
    return (V201_NOTICE,) if V201 in offered(config.ocpp.version) else ()


V201_NOTICE = (
    "ocpp.version: OCPP 2.0.1 here offers provisioning, network profiles, authorization, "
    "local list, transactions, remote control, availability, reset, TriggerMessage, meter "
    "values, certificate management (no ISO 15118 certificates) and DataTransfer; firmware "
    "update, logs, reservations and smart-charging requests are OCPP 1.6 only in this build "
    "(see README, OCPP 2.0.1)"
)
