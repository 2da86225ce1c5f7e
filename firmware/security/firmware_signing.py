"""Firmware signatures: the signing certificate and the signature over the file.

The OCPP 1.6 Security Whitepaper (use case L01) has the manufacturer sign the
SHA-256 hash of the whole firmware file with the key of a Firmware Signing
certificate issued directly by a Manufacturer root (no intermediates). The
station checks the certificate when the request arrives and the signature once
the file is downloaded, before anything is installed.

Accepted here:

- certificate: X.509, PEM; RSA of at least 2048 bits or EC of at least 224
  bits (A00.FR.502/503); within its validity dates; issued and signed by one
  of the installed roots, itself within its dates, a CA where it says so
  (basicConstraints, keyUsage keyCertSign); not a CA itself; keyUsage, when
  present, allows digitalSignature; extendedKeyUsage, when present, allows
  codeSigning; no critical extension this code does not understand.
- signature: base64 (blanks and line breaks ignored); RSA-PSS (any salt
  length) or PKCS#1 v1.5 with SHA-256, ECDSA with SHA-256 as DER or as the raw
  r||s pair.

Every refusal raises ``SigningCertificateRefused`` or ``SignatureRefused``
with one short line saying why (it becomes the security event's techInfo).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

from firmware.errors import FirmwareError

MIN_RSA_BITS = 2048
MIN_EC_BITS = 224
MAX_SIGNATURE_BYTES = 2048  # RSA 16384 bits is 2048 bytes; anything longer is not a signature
_CHUNK = 1024 * 1024

_Ext = TypeVar("_Ext", bound=x509.ExtensionType)


class FirmwareSigningError(FirmwareError, ValueError):
    """A firmware signature or signing certificate was refused; the message says why."""


class SigningCertificateRefused(FirmwareSigningError):
    """The signing certificate is unusable or not trusted."""


class SignatureRefused(FirmwareSigningError):
    """The signature is missing, malformed or does not match the file."""


def load_certificates(data: str | bytes, what: str = "certificate") -> list[x509.Certificate]:
    """Every certificate of a PEM text, in order; raises ``ValueError`` naming the problem."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    if b"-----BEGIN CERTIFICATE-----" not in raw:
        raise ValueError(f"{what}: no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        return x509.load_pem_x509_certificates(raw)
    except ValueError as err:
        raise ValueError(f"{what}: not a valid PEM certificate ({err})") from None


def describe(cert: x509.Certificate) -> str:
    """Subject and serial number: enough to find the certificate, never the key."""
    return f"'{cert.subject.rfc4514_string()}' (serial {cert.serial_number:X})"


def check_signing_certificate(
    pem: str | bytes, roots: Sequence[x509.Certificate], now: datetime
) -> x509.Certificate:
    """The firmware signing certificate in ``pem`` if one of ``roots`` vouches for it."""
    try:
        cert = load_certificates(pem, "signing certificate")[0]
    except ValueError as err:
        raise SigningCertificateRefused(str(err)) from None
    check_signing_key(cert, now)
    if not roots:
        raise SigningCertificateRefused("no ManufacturerRootCertificate is installed")
    refusals: list[str] = []
    for root in roots:
        if root.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            refusals.append(f"not signed by the root {describe(root)}")
            continue
        problem = _root_problem(root, now)
        if problem is None:
            return cert
        refusals.append(problem)
    if refusals:
        raise SigningCertificateRefused(f"signing certificate {describe(cert)}: {refusals[0]}")
    raise SigningCertificateRefused(
        f"signing certificate {describe(cert)} was not issued by an installed "
        f"ManufacturerRootCertificate (issuer '{cert.issuer.rfc4514_string()}')"
    )


def check_signing_key(cert: x509.Certificate, now: datetime) -> None:
    """What a signing certificate must be by itself: dates, key, usage, extensions."""
    name = f"signing certificate {describe(cert)}"
    if now < cert.not_valid_before_utc:
        raise SigningCertificateRefused(
            f"{name} is not valid before {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
        )
    if now > cert.not_valid_after_utc:
        raise SigningCertificateRefused(
            f"{name} expired on {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        )
    _check_key(cert, name)
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise SigningCertificateRefused(f"{name} is a CA certificate, not a signing certificate")
    usage = _extension(cert, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise SigningCertificateRefused(f"{name}: its keyUsage does not allow digitalSignature")
    extended = _extension(cert, x509.ExtendedKeyUsage)
    if extended is not None and not (
        ExtendedKeyUsageOID.CODE_SIGNING in extended
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in extended
    ):
        raise SigningCertificateRefused(f"{name}: its extendedKeyUsage does not allow codeSigning")
    for ext in _extensions(cert):
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise SigningCertificateRefused(
                f"{name} has an unknown critical extension {ext.oid.dotted_string}"
            )


def decode_signature(text: str | bytes) -> bytes:
    """The signature bytes of its base64 text; raises ``SignatureRefused``."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    compact = b"".join(raw.split())
    if not compact:
        raise SignatureRefused("the signature is empty")
    try:
        signature = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("the signature is not base64") from None
    if not signature or len(signature) > MAX_SIGNATURE_BYTES:
        raise SignatureRefused(f"the signature is {len(signature)} bytes long: not a signature")
    return signature


def file_digest(path: Path) -> bytes:
    """SHA-256 of the file, read in chunks (images may be larger than the memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def verify_digest(cert: x509.Certificate, digest: bytes, signature: bytes) -> None:
    """Raise ``SignatureRefused`` unless ``signature`` is the key's signature of ``digest``."""
    key = cert.public_key()
    algorithm = Prehashed(hashes.SHA256())
    if isinstance(key, rsa.RSAPublicKey):
        paddings: Iterable[padding.AsymmetricPadding] = (
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            padding.PKCS1v15(),
        )
        for pad in paddings:
            try:
                key.verify(signature, digest, pad, algorithm)
                return
            except InvalidSignature:
                continue
    elif isinstance(key, ec.EllipticCurvePublicKey):
        for candidate in _ecdsa_forms(signature, key.curve.key_size):
            try:
                key.verify(candidate, digest, ec.ECDSA(algorithm))
                return
            except InvalidSignature:
                continue
    else:
        raise SignatureRefused(f"unsupported key type {type(key).__name__}")
    raise SignatureRefused(
        f"the signature does not match the file (SHA-256 {digest.hex()}) "
        f"for the certificate {describe(cert)}"
    )


def verify_file(cert: x509.Certificate, path: Path, signature: bytes) -> None:
    """``verify_digest`` over the SHA-256 of the file at ``path``."""
    verify_digest(cert, file_digest(path), signature)


def _ecdsa_forms(signature: bytes, bits: int) -> list[bytes]:
    """DER as produced by OpenSSL, and the raw r||s pair some signing services return."""
    forms = [signature]
    size = (bits + 7) // 8
    if len(signature) == 2 * size:
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        forms.append(encode_dss_signature(r, s))
    return forms


def _check_key(cert: x509.Certificate, name: str) -> None:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as err:
        raise SigningCertificateRefused(f"{name}: unusable public key ({err})") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise SigningCertificateRefused(
                f"{name}: RSA key of {key.key_size} bits, at least {MIN_RSA_BITS} needed"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            raise SigningCertificateRefused(
                f"{name}: EC key of {key.curve.key_size} bits, at least {MIN_EC_BITS} needed"
            )
    else:
        raise SigningCertificateRefused(
            f"{name}: {type(key).__name__} keys are not supported (RSA or EC only)"
        )


def _extensions(cert: x509.Certificate) -> x509.Extensions:
    try:
        return cert.extensions
    except ValueError as err:
        raise SigningCertificateRefused(f"{describe(cert)}: bad extensions ({err})") from None


def _root_problem(root: x509.Certificate, now: datetime) -> str | None:
    name = f"the root {describe(root)}"
    if now < root.not_valid_before_utc:
        return f"{name} is not valid before {root.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
    if now > root.not_valid_after_utc:
        return f"{name} expired on {root.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    constraints = _extension(root, x509.BasicConstraints)
    if constraints is not None and not constraints.ca:
        return f"{name} is not a CA certificate"
    usage = _extension(root, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        return f"{name}: its keyUsage does not allow keyCertSign"
    return None


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as err:  # a malformed or duplicated extension
        raise SigningCertificateRefused(f"{describe(cert)}: bad extensions ({err})") from None
