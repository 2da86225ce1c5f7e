"""The certificate store: trusted roots, the station's own certificate and key.

Everything lives in one private directory (``<state_dir>/security``, 0700):

- ``roots.json``: the installed root certificates (CSMS and manufacturer),
  each with the public key of its issuer (to name it by its hash data after
  the issuer is gone) and whether it is a fallback kept during a root change;
- ``client.pem``: the station's certificate chain and private key (0600);
- ``client.previous.pem``: the one before, kept until the new one has worked;
- ``pending-key.pem``: the key of the signing request waiting for its certificate.

Each file is replaced whole (``files.write_atomic``), so a power cut leaves
the old set or the new one. The store decides what may be installed or
deleted; which root is in use for the link is the link's knowledge, passed in.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from firmware.security import files
from firmware.security.certificates import (
    HashAlgorithm,
    HashData,
    PublicKey,
    describe,
    expired,
    hash_data,
    is_ca,
    is_self_signed,
    issued_by,
    load_pem_certificates,
    not_yet_valid,
    pem,
)
from firmware.security.errors import CertificateError, StoreError
from firmware.security.events import SecurityEvent, SecurityEventSink
from firmware.security.keys import PrivateKey, load_private_key, private_pem

log = logging.getLogger("firmware.security.store")

ROOTS_FILE = "roots.json"
IDENTITY_FILE = "client.pem"
PREVIOUS_IDENTITY_FILE = "client.previous.pem"
PENDING_KEY_FILE = "pending-key.pem"

_KEY_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----\s*", re.S
)

Now = Callable[[], datetime]


# The keys a certificate can be signed with (the issuer key of an installed root).
_SIGNING_KEYS = (
    ec.EllipticCurvePublicKey,
    rsa.RSAPublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
    dsa.DSAPublicKey,
)


class RootKind(StrEnum):
    """What a root certificate is trusted for."""

    CSMS = "csms"  # the CSMS's TLS server certificate (and the station's own certificate)
    MANUFACTURER = "manufacturer"  # firmware signing certificates


class InstallStatus(StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"  # the certificate is not acceptable, or the store is full
    FAILED = "Failed"  # acceptable, but it could not be stored


class DeleteStatus(StrEnum):
    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_FOUND = "NotFound"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    reason: str = ""
    full: bool = False  # refused because the store holds as many roots as it may


@dataclass(frozen=True, slots=True)
class InstalledRoot:
    kind: RootKind
    certificate: x509.Certificate
    issuer_key: PublicKey
    fallback: bool = False

    def hash_data(self, algorithm: HashAlgorithm = HashAlgorithm.SHA256) -> HashData:
        return hash_data(self.certificate, self.issuer_key, algorithm)


@dataclass(frozen=True, slots=True)
class Identity:
    """The station's certificate chain (leaf first) and its key, in one 0600 file."""

    path: Path
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey = field(repr=False)

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]


class CertificateStore:
    def __init__(self, directory: Path, *, sink: SecurityEventSink) -> None:
        self.directory = directory
        self._sink = sink
        try:
            files.ensure_private_dir(directory)
            files.remove_stale_temporaries(directory)
            self._roots: list[InstalledRoot] = self._load_roots()
        except OSError as err:
            raise StoreError(f"cannot open the certificate store {directory}: {err}") from err

    # ------------------------------------------------------------ roots: reading

    def installed(self, kind: RootKind | None = None) -> list[InstalledRoot]:
        return [r for r in self._roots if kind is None or r.kind is kind]

    def roots(self, kind: RootKind, *, fallback: bool | None = None) -> list[x509.Certificate]:
        """The certificates of ``kind`` (only the fallbacks, or none of them, if asked)."""
        return [
            r.certificate
            for r in self._roots
            if r.kind is kind and (fallback is None or r.fallback is fallback)
        ]

    def find(self, wanted: HashData) -> InstalledRoot | None:
        for root in self._roots:
            if root.hash_data(wanted.algorithm).matches(wanted):
                return root
        return None

    # ------------------------------------------------------------ roots: changing

    def import_roots(self, kind: RootKind, certs: Sequence[x509.Certificate]) -> int:
        """Provisioning: add ``certs`` when no root of ``kind`` is installed yet."""
        if self.installed(kind):
            return 0
        added = [
            InstalledRoot(kind, cert, self._issuer_key(cert, kind) or cert.public_key())
            for cert in certs
        ]
        self._save([*self._roots, *added])
        for root in added:
            log.info("%s root certificate imported: %s", kind.value, describe(root.certificate))
        return len(added)

    def install(
        self,
        kind: RootKind,
        text: str,
        *,
        now: Now,
        max_count: int,
        replace_signed: bool = False,
    ) -> Outcome:
        """Install one root certificate (InstallCertificate).

        ``replace_signed`` (AdditionalRootCertificateCheck, CSMS roots): the new
        root must be signed by the installed one it replaces, which stays as a
        fallback until a connection verified by the new one succeeds.
        """
        try:
            cert = root_certificate(text, now())
        except CertificateError as err:
            return self._refuse(kind, str(err))
        if any(r.kind is kind and r.certificate == cert for r in self._roots):
            log.info("%s root certificate already installed: %s", kind.value, describe(cert))
            return Outcome(InstallStatus.ACCEPTED, "already installed")
        if replace_signed and kind is RootKind.CSMS:
            return self._replace_root(cert, now=now, max_count=max_count)
        issuer_key = self._issuer_key(cert, kind)
        if issuer_key is None:
            return self._refuse(
                kind, "it is neither self-signed nor issued by an installed root certificate"
            )
        if len(self._roots) >= max_count:
            return self._refuse(kind, f"the store is full ({max_count} certificates)", full=True)
        return self._commit(
            [*self._roots, InstalledRoot(kind, cert, issuer_key)],
            f"{kind.value} root certificate installed: {describe(cert)}",
        )

    def _replace_root(self, cert: x509.Certificate, *, now: Now, max_count: int) -> Outcome:
        kind = RootKind.CSMS
        current = [r for r in self._roots if r.kind is kind and not r.fallback]
        others = [r for r in self._roots if r.kind is not kind]
        if not current:
            issuer_key = self._issuer_key(cert, kind)
            if issuer_key is None:
                return self._refuse(kind, "it is not self-signed")
            kept = [*others, InstalledRoot(kind, cert, issuer_key)]
        else:
            old = next((r for r in current if issued_by(cert, r.certificate)), None)
            if old is None:
                return self._refuse(
                    kind,
                    "AdditionalRootCertificateCheck: it is not signed by the installed "
                    "CSMS root certificate it would replace",
                )
            # The replaced root becomes the only fallback; an earlier fallback goes.
            kept = [
                *others,
                replace(old, fallback=True),
                InstalledRoot(kind, cert, old.certificate.public_key()),
            ]
        if len(kept) > max_count:
            return self._refuse(kind, f"the store is full ({max_count} certificates)", full=True)
        return self._commit(
            kept, f"CSMS root certificate installed, replacing the old one: {describe(cert)}"
        )

    def delete(self, wanted: HashData, *, in_use: Callable[[InstalledRoot], bool]) -> Outcome:
        root = self.find(wanted)
        if root is None:
            return Outcome(DeleteStatus.NOT_FOUND)
        if in_use(root):
            reason = "it verifies the connection to the CSMS"
            log.warning("not deleting %s: %s", describe(root.certificate), reason)
            return Outcome(DeleteStatus.FAILED, reason)
        outcome = self._commit(
            [r for r in self._roots if r is not root],
            f"{root.kind.value} root certificate deleted: {describe(root.certificate)}",
        )
        return Outcome(
            DeleteStatus.FAILED if outcome.status != "Accepted" else DeleteStatus.ACCEPTED
        )

    def drop_fallback(self, kind: RootKind) -> None:
        """A connection verified by the new root worked: the old one is not needed."""
        gone = [r for r in self._roots if r.kind is kind and r.fallback]
        if not gone:
            return
        try:
            self._save([r for r in self._roots if r not in gone])
        except OSError as err:
            log.error("cannot remove the fallback root certificate: %s", err)
            return
        for root in gone:
            log.info(
                "fallback %s root certificate removed: %s", kind.value, describe(root.certificate)
            )

    def _issuer_key(self, cert: x509.Certificate, kind: RootKind) -> PublicKey | None:
        if is_self_signed(cert):
            return cert.public_key()
        for root in self._roots:
            if root.kind is kind and issued_by(cert, root.certificate):
                return root.certificate.public_key()
        return None

    def _refuse(self, kind: RootKind, reason: str, *, full: bool = False) -> Outcome:
        log.warning("%s root certificate refused: %s", kind.value, reason)
        return Outcome(InstallStatus.REJECTED, reason, full)

    def _commit(self, roots: list[InstalledRoot], what: str) -> Outcome:
        try:
            self._save(roots)
        except OSError as err:
            log.error("cannot write the certificate store: %s", err)
            return Outcome(InstallStatus.FAILED, f"cannot write the store: {err}")
        log.info("%s", what)
        self._sink.raise_event(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS, what)
        return Outcome(InstallStatus.ACCEPTED)

    # ------------------------------------------------------------ roots: persistence

    def _save(self, roots: list[InstalledRoot]) -> None:
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        document = {
            "version": 1,
            "roots": [
                {
                    "kind": r.kind.value,
                    "certificate": pem(r.certificate),
                    "issuer_key": r.issuer_key.public_bytes(
                        serialization.Encoding.PEM, spki
                    ).decode(),
                    "fallback": r.fallback,
                }
                for r in roots
            ],
        }
        data = json.dumps(document, indent=1).encode()
        files.write_atomic(self.directory / ROOTS_FILE, data, files.PRIVATE_FILE)
        self._roots = roots

    def _load_roots(self) -> list[InstalledRoot]:
        path = self.directory / ROOTS_FILE
        try:
            document = json.loads(path.read_bytes())
            return [_root_from(entry) for entry in document["roots"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError, CertificateError) as err:
            # Fail closed: without roots no TLS link is verified; provisioning can add one.
            spare = path.with_name(ROOTS_FILE + ".unreadable")
            log.error(
                "the root certificate store %s is unreadable (%s); moved to %s", path, err, spare
            )
            path.replace(spare)
            return []

    # ------------------------------------------------------------ the station's identity

    def identity(self) -> Identity | None:
        """The station's newest certificate and key."""
        return self._read_identity(self.directory / IDENTITY_FILE)

    def previous_identity(self) -> Identity | None:
        return self._read_identity(self.directory / PREVIOUS_IDENTITY_FILE)

    def identity_for(self, now: Now) -> Identity | None:
        """The identity to present now: the newest once its validity has begun."""
        newest = self.identity()
        if newest is not None and not_yet_valid(newest.certificate, now()):
            previous = self.previous_identity()
            if previous is not None:
                return previous
        return newest

    def install_identity(
        self, key: PrivateKey, chain: Sequence[x509.Certificate], *, announce: bool = True
    ) -> None:
        """Make ``chain`` and ``key`` the station's identity; the current one stays as
        the previous until the new one has been used. Raises ``OSError``."""
        current = self.directory / IDENTITY_FILE
        if current.exists():
            files.write_atomic(self.directory / PREVIOUS_IDENTITY_FILE, current.read_bytes())
        data = "".join(pem(c) for c in chain).encode() + private_pem(key)
        files.write_atomic(current, data, files.PRIVATE_FILE)
        what = f"charge point certificate installed: {describe(chain[0])}"
        log.info("%s", what)
        if announce:
            self._sink.raise_event(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS, what)

    def drop_previous_identity(self) -> None:
        try:
            if files.remove(self.directory / PREVIOUS_IDENTITY_FILE):
                log.info("the previous charge point certificate and key were removed")
        except OSError as err:
            log.error("cannot remove the previous charge point certificate: %s", err)

    def _read_identity(self, path: Path) -> Identity | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            log.error("cannot read %s: %s", path, err)
            return None
        block = _KEY_BLOCK.search(data)
        try:
            if block is None:
                raise CertificateError("no private key")
            chain = load_pem_certificates(_KEY_BLOCK.sub(b"", data), "charge point certificate")
            key = load_private_key(block.group(0), "charge point key")
        except CertificateError as err:
            log.error("%s is unusable: %s", path, err)
            return None
        return Identity(path, tuple(chain), key)

    # ------------------------------------------------------------ the pending request

    def save_pending_key(self, key: PrivateKey) -> None:
        files.write_atomic(self.directory / PENDING_KEY_FILE, private_pem(key), files.PRIVATE_FILE)

    def pending_key(self) -> PrivateKey | None:
        try:
            return load_private_key((self.directory / PENDING_KEY_FILE).read_bytes(), "pending key")
        except FileNotFoundError:
            return None
        except (OSError, CertificateError) as err:
            log.error("the key of the pending signing request is unusable: %s", err)
            return None

    def clear_pending_key(self) -> None:
        try:
            files.remove(self.directory / PENDING_KEY_FILE)
        except OSError as err:
            log.error("cannot remove the pending key: %s", err)


def root_certificate(text: str, now: datetime) -> x509.Certificate:
    """The one CA certificate of ``text``, valid at ``now``, as a root must be to be
    installed; raises ``CertificateError`` saying what is wrong."""
    certs = load_pem_certificates(text)
    if len(certs) != 1:
        raise CertificateError(f"one certificate expected, got {len(certs)}")
    cert = certs[0]
    if not is_ca(cert):
        raise CertificateError("it is not a CA certificate (basicConstraints CA:TRUE)")
    if expired(cert, now):
        raise CertificateError(f"it expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if not_yet_valid(cert, now):
        raise CertificateError(f"it is valid only from {cert.not_valid_before_utc:%Y-%m-%d}")
    return cert


def _root_from(entry: dict[str, Any]) -> InstalledRoot:
    (cert,) = load_pem_certificates(entry["certificate"])
    issuer_key = serialization.load_pem_public_key(entry["issuer_key"].encode())
    if not isinstance(issuer_key, _SIGNING_KEYS):
        raise CertificateError(f"unusable issuer key {type(issuer_key).__name__}")
    return InstalledRoot(
        RootKind(entry["kind"]), cert, issuer_key, bool(entry.get("fallback", False))
    )
