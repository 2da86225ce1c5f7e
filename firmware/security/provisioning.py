"""The certificates a station is provisioned with in its configuration file.

``security.csms_root_ca`` is the first CSMS root: imported into the store at
start while the store holds no CSMS root (later roots come from
InstallCertificate, and a root the CSMS deleted does not come back).
``security.charge_point_certificate`` and ``security.charge_point_key`` are a
first client certificate: imported while the store has none, or one that
starts earlier (a renewal the CSMS made is newer, so the file does not undo it;
a newer file replaces an older store entry, as a re-provisioning should).

``load`` reads and checks the files: ``chargepoint check-config`` and
``chargepoint run`` refuse the same problems with the same words.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from firmware.config import SecuritySettings
from firmware.errors import ConfigError
from firmware.security.certificates import (
    common_name,
    describe,
    expired,
    is_ca,
    load_pem_certificates,
    same_key,
)
from firmware.security.errors import CertificateError, StoreError
from firmware.security.keys import PrivateKey, load_private_key
from firmware.security.store import CertificateStore, RootKind

log = logging.getLogger("firmware.security.provisioning")


@dataclass(frozen=True, slots=True)
class Provisioned:
    roots: tuple[x509.Certificate, ...] = ()
    key: PrivateKey | None = None
    chain: tuple[x509.Certificate, ...] = ()
    notices: tuple[str, ...] = ()


def _read(key: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"security.{key}: cannot read {path}: {err.strerror or err}") from None


def load(settings: SecuritySettings, charge_point_id: str, now: datetime) -> Provisioned:
    """The provisioned certificates, checked; raises ``ConfigError`` naming the key."""
    notices: list[str] = []
    roots: list[x509.Certificate] = []
    if settings.csms_root_ca is not None:
        path = settings.csms_root_ca
        try:
            roots = load_pem_certificates(_read("csms_root_ca", path), "file")
        except CertificateError as err:
            raise ConfigError(f"security.csms_root_ca: {path}: {err}") from None
        for cert in roots:
            if not is_ca(cert):
                raise ConfigError(
                    f"security.csms_root_ca: {path}: {describe(cert)} is not a CA certificate"
                )
            if expired(cert, now):
                notices.append(f"security.csms_root_ca: {describe(cert)} has expired")
    key: PrivateKey | None = None
    chain: list[x509.Certificate] = []
    if settings.charge_point_certificate is not None and settings.charge_point_key is not None:
        cert_path, key_path = settings.charge_point_certificate, settings.charge_point_key
        try:
            chain = load_pem_certificates(_read("charge_point_certificate", cert_path), "file")
        except CertificateError as err:
            raise ConfigError(f"security.charge_point_certificate: {cert_path}: {err}") from None
        try:
            key = load_private_key(_read("charge_point_key", key_path), "file")
        except CertificateError as err:
            raise ConfigError(f"security.charge_point_key: {key_path}: {err}") from None
        if not same_key(chain[0].public_key(), key.public_key()):
            raise ConfigError(
                f"security.charge_point_key: {key_path} is not the key of the certificate "
                f"in {cert_path}"
            )
        name = common_name(chain[0])
        if name != charge_point_id:
            notices.append(
                f"security.charge_point_certificate: its common name {name!r} is not the "
                f"charge point id {charge_point_id!r}; the CSMS may refuse it"
            )
        if expired(chain[0], now):
            notices.append(f"security.charge_point_certificate: {describe(chain[0])} has expired")
        if os.stat(key_path).st_mode & 0o077:
            notices.append(
                f"security.charge_point_key: {key_path} can be read by other users; "
                "make it 0600, or remove it once the station has started (it keeps a copy)"
            )
    return Provisioned(tuple(roots), key, tuple(chain), tuple(notices))


def apply(store: CertificateStore, provisioned: Provisioned) -> None:
    """Import what the store does not have yet (see the module docstring)."""
    if provisioned.roots:
        try:
            store.import_roots(RootKind.CSMS, provisioned.roots)
        except OSError as err:
            raise StoreError(f"cannot store the CSMS root certificate: {err}") from err
    if provisioned.key is None or not provisioned.chain:
        return
    current = store.identity()
    new = provisioned.chain[0]
    if current is not None and (
        current.certificate == new
        or current.certificate.not_valid_before_utc >= new.not_valid_before_utc
    ):
        return
    try:
        store.install_identity(provisioned.key, provisioned.chain, announce=False)
    except OSError as err:
        raise StoreError(f"cannot store the charge point certificate: {err}") from err
    log.info("charge point certificate imported from the configuration: %s", describe(new))
