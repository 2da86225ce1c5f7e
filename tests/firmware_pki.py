"""A manufacturer PKI made at test time: roots, firmware signing certificates, signatures.

Nothing is kept in the repository: every test run makes its own keys.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = CertificateIssuerPrivateKeyTypes
DAY = timedelta(days=1)


def now() -> datetime:
    return datetime.now(UTC)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenChargeFW Manufacturing"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


@dataclass
class Issued:
    cert: x509.Certificate
    key: Key

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, data: bytes, *, pss: bool = True) -> str:
        """base64 signature of SHA-256(data): RSA-PSS (or PKCS#1 v1.5), ECDSA (DER)."""
        return base64.b64encode(self.sign_raw(data, pss=pss)).decode()

    def sign_raw(self, data: bytes, *, pss: bool = True) -> bytes:
        digest = hashlib.sha256(data).digest()
        algorithm = Prehashed(hashes.SHA256())
        if isinstance(self.key, rsa.RSAPrivateKey):
            pad: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                if pss
                else padding.PKCS1v15()
            )
            return self.key.sign(digest, pad, algorithm)
        assert isinstance(self.key, ec.EllipticCurvePrivateKey)
        return self.key.sign(digest, ec.ECDSA(algorithm))


def root(
    common: str = "Manufacturer Root CA",
    key: Key | None = None,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    ca: bool = True,
    key_cert_sign: bool = True,
) -> Issued:
    key = key or ec_key()
    start = not_before or now() - DAY
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(_usage(digital_signature=False, key_cert_sign=key_cert_sign), critical=True)
    )
    return Issued(builder.sign(key, hashes.SHA256()), key)


def signing_cert(
    issuer: Issued,
    common: str = "Firmware Signing",
    key: Key | None = None,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    digital_signature: bool = True,
    extended: list[x509.ObjectIdentifier] | None = None,
    ca: bool = False,
    unknown_critical: bool = False,
) -> Issued:
    key = key or ec_key()
    start = not_before or now() - DAY
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=digital_signature, key_cert_sign=ca), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                extended if extended is not None else [ExtendedKeyUsageOID.CODE_SIGNING]
            ),
            critical=False,
        )
    )
    if unknown_critical:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"),
            critical=True,
        )
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def _usage(*, digital_signature: bool, key_cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class ManufacturerPki:
    """What the firmware tests use: a trusted root and what it signs, and impostors."""

    root: Issued = field(default_factory=root)

    def __post_init__(self) -> None:
        self.signer = signing_cert(self.root)
        self.untrusted_root = root("Someone Else Root CA")
        self.untrusted = signing_cert(self.untrusted_root, "Someone Else Signing")
        self.expired = signing_cert(
            self.root, "Expired Signing", not_before=now() - 400 * DAY, not_after=now() - DAY
        )

    def write_roots(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.root.pem)
        return path
