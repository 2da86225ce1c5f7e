"""X.509 certificates: parsing, issuer checks and the hash data that names a certificate.

OCPP names an installed certificate by its ``CertificateHashDataType`` (the
same in the 1.6 Security Whitepaper and in 2.0.1), which are the fields of an
OCSP CertID (RFC 6960): the hash of the DER issuer name, the hash of the
issuer's public key (the content of the subjectPublicKey BIT STRING, without
tag, length and unused-bits octet) and the serial number, here in lowercase
hexadecimal without leading zeros.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from firmware.security.errors import CertificateError

PublicKey = CertificatePublicKeyTypes


class HashAlgorithm(StrEnum):
    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"


_HASHES = {
    HashAlgorithm.SHA256: hashlib.sha256,
    HashAlgorithm.SHA384: hashlib.sha384,
    HashAlgorithm.SHA512: hashlib.sha512,
}


@dataclass(frozen=True, slots=True)
class HashData:
    """CertificateHashDataType: which certificate, as the CSMS names it."""

    algorithm: HashAlgorithm
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str

    def matches(self, other: HashData) -> bool:
        """The same certificate: hashes compared without regard to case, serial
        numbers as numbers (a leading zero or upper case does not make another one)."""
        return (
            self.algorithm == other.algorithm
            and self.issuer_name_hash.lower() == other.issuer_name_hash.lower()
            and self.issuer_key_hash.lower() == other.issuer_key_hash.lower()
            and _serial_value(self.serial_number) == _serial_value(other.serial_number)
        )


def _serial_value(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


def hash_data(
    cert: x509.Certificate, issuer_key: PublicKey, algorithm: HashAlgorithm = HashAlgorithm.SHA256
) -> HashData:
    digest = _HASHES[algorithm]
    return HashData(
        algorithm=algorithm,
        issuer_name_hash=digest(cert.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=digest(public_key_bits(issuer_key)).hexdigest(),
        serial_number=format(cert.serial_number, "x"),
    )


def public_key_bits(key: PublicKey) -> bytes:
    """The subjectPublicKey BIT STRING's content, as OCSP hashes it."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body, _ = _der_element(der, 0, 0x30)  # SubjectPublicKeyInfo ::= SEQUENCE
    _, after_algorithm = _der_element(der, body, 0x30)  # algorithm AlgorithmIdentifier
    bits, end = _der_element(der, after_algorithm, 0x03)  # subjectPublicKey BIT STRING
    if der[bits] != 0:
        raise CertificateError("public key bit string with unused bits")
    return der[bits + 1 : end]


def _der_element(der: bytes, at: int, tag: int) -> tuple[int, int]:
    """(start of the content, end of the element) of the DER element at ``at``."""
    if at + 2 > len(der) or der[at] != tag:
        raise CertificateError("malformed public key")
    length = der[at + 1]
    start = at + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise CertificateError("malformed public key")
    return start, end


def same_key(a: PublicKey, b: PublicKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return a.public_bytes(der, spki) == b.public_bytes(der, spki)


# ---------------------------------------------------------------- parsing


def load_pem_certificates(data: str | bytes, what: str = "certificate") -> list[x509.Certificate]:
    """Every certificate of a PEM text, in order; raises ``CertificateError``."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if b"-----BEGIN CERTIFICATE-----" not in raw:
        raise CertificateError(f"the {what} is not a PEM certificate")
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError as err:
        raise CertificateError(f"the {what} cannot be read: {err}") from None
    for cert in certs:
        try:
            cert.public_key()
        except (ValueError, UnsupportedAlgorithm) as err:
            raise CertificateError(f"the {what} has an unusable public key: {err}") from None
    return certs


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(der(cert)).hexdigest()


# ---------------------------------------------------------------- properties


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s name is ``cert``'s issuer and its key signed ``cert``."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def path_length(cert: x509.Certificate) -> int | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


def common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def expired(cert: x509.Certificate, now: datetime) -> bool:
    return now > cert.not_valid_after_utc


def not_yet_valid(cert: x509.Certificate, now: datetime) -> bool:
    return now < cert.not_valid_before_utc


def valid_at(cert: x509.Certificate, now: datetime) -> bool:
    return not expired(cert, now) and not not_yet_valid(cert, now)


def describe(cert: x509.Certificate) -> str:
    """A short, loggable name: subject, serial, end of validity (no key material)."""
    subject = cert.subject.rfc4514_string() or "(no subject)"
    until = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{subject} (serial {cert.serial_number:x}, valid until {until})"
