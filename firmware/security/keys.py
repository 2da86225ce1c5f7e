"""The station's private keys and its certificate signing requests.

Keys are generated on the station and never leave it. The curve is NIST
P-256 (secp256r1): 128-bit security, the curve of the ECDHE-ECDSA cipher
suites the OCPP Security Whitepaper lists first, accepted by every CSMS PKI
that follows it, and a key is made in milliseconds on a small ARM board
(an RSA-2048 key takes seconds there and gives less security). Keys from
outside (a provisioned certificate's key) may also be RSA of 2048 bits or more,
or EC on a curve of at least 224 bits, the whitepaper's minimums.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from firmware.security.errors import CertificateError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

MIN_RSA_BITS = 2048
MIN_EC_BITS = 224


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM, for a 0600 file only."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(data: bytes, what: str = "private key") -> PrivateKey:
    """An unencrypted PEM private key (EC or RSA, strong enough); raises ``CertificateError``."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertificateError(
            f"the {what} is encrypted; give it unencrypted (mode 0600)"
        ) from None
    except Exception as err:  # the parser raises several kinds for bad input
        raise CertificateError(f"the {what} is not a PEM private key ({err})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(f"the {what} must be an EC or RSA key, not {type(key).__name__}")
    problem = weakness(key)
    if problem is not None:
        raise CertificateError(f"the {what} {problem}")
    return key


def weakness(key: PrivateKey) -> str | None:
    """Why ``key`` is too weak for OCPP, or None."""
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        return f"has {key.key_size} bits; RSA keys need at least {MIN_RSA_BITS}"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size < MIN_EC_BITS:
        return f"is on a {key.curve.key_size}-bit curve; EC keys need at least {MIN_EC_BITS} bits"
    return None


def build_csr(key: PrivateKey, common_name: str, organization: str | None) -> str:
    """A PEM PKCS#10 request for ``key``: CN = the charge point's identity, O = the CPO."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode("ascii")
