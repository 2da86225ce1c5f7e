"""TLS to the CSMS: the client context of each security profile, and why a handshake failed.

Security profiles 2 and 3 (OCPP 1.6 Security Whitepaper, OCPP 2.0.1 part 2
A00): the server certificate must chain to an installed CSMS root
certificate (the system's trust store plays no part), the host name must
match, TLS 1.2 or newer, and in TLS 1.2 only the whitepaper's cipher suites
(TLS 1.3 negotiates its own AEAD suites). Installed roots are trust anchors
as they are, also one that is not self-signed (a new root signed by the old
one, AdditionalRootCertificateCheck).

Profiles 0 and 1 over a ``wss://`` URL are TLS as a browser does it: the
system's trust store and the installed CSMS roots, the host name checked,
TLS 1.2 or newer with OpenSSL's default suites. That is not a whitepaper
profile: the CSMS is not pinned.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from websockets.exceptions import InvalidStatus

from firmware.security.certificates import pem
from firmware.security.events import SecurityEvent

# OCPP 1.6 Security Whitepaper (edition 2, 2.3 "TLS"; 2.0.1 A00.FR.3xx), in OpenSSL names:
# TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
# TLS_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_256_GCM_SHA384.
WHITEPAPER_TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
)


def client_context(
    anchors: Sequence[x509.Certificate],
    *,
    pinned: bool,
    identity: Path | None = None,
) -> ssl.SSLContext:
    """The context of one connection attempt.

    ``pinned`` (profiles 2 and 3): only ``anchors`` are trusted and only the
    whitepaper's TLS 1.2 suites are offered; otherwise the system store is
    trusted too. ``identity``: a PEM file with the client certificate chain
    and its private key (profile 3).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, host name checked
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if pinned:
        context.set_ciphers(":".join(WHITEPAPER_TLS12_CIPHERS))
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if anchors:
        context.load_verify_locations(cadata="".join(pem(cert) for cert in anchors))
    if identity is not None:
        context.load_cert_chain(identity)
    return context


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a connection attempt failed, as far as security goes.

    ``security``: the failure is the security profile's (authentication, TLS),
    not the network's, so a new profile that meets it has failed. ``event``:
    the security event it is, if any.
    """

    event: SecurityEvent | None
    detail: str
    security: bool = True


# OpenSSL reasons (ssl.SSLError.reason) for the handshakes the station refuses or the CSMS does.
_VERSION = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "WRONG_VERSION_NUMBER",
        "VERSION_TOO_LOW",
        "NO_PROTOCOLS_AVAILABLE",
    }
)
_CIPHER = frozenset(
    {
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "NO_SHARED_CIPHER",
        "NO_CIPHERS_AVAILABLE",
        "NO_CIPHER_MATCH",
        "WRONG_CIPHER_RETURNED",
        "INSUFFICIENT_SECURITY",
        "TLSV1_ALERT_INSUFFICIENT_SECURITY",
    }
)
# The CSMS refused the station's certificate (profile 3) or its absence.
_CLIENT_CERTIFICATE = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_DECRYPT_ERROR",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    }
)


def _causes(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def classify(err: BaseException) -> Failure | None:
    """The security side of a failed connection attempt; None for a network failure."""
    for cause in _causes(err):
        if isinstance(cause, InvalidStatus):
            status = cause.response.status_code
            if status in (401, 403):
                return Failure(
                    SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CENTRAL_SYSTEM,
                    f"the CSMS answered HTTP {status}",
                )
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = getattr(cause, "verify_message", None) or cause.strerror or cause
            return Failure(
                SecurityEvent.INVALID_CENTRAL_SYSTEM_CERTIFICATE,
                f"server certificate refused: {why}",
            )
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "reason", None) or ""
            if reason in _VERSION:
                return Failure(SecurityEvent.INVALID_TLS_VERSION, f"TLS version refused ({reason})")
            if reason in _CIPHER:
                return Failure(
                    SecurityEvent.INVALID_TLS_CIPHER_SUITE, f"no common cipher suite ({reason})"
                )
            if reason in _CLIENT_CERTIFICATE:
                return Failure(
                    SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CENTRAL_SYSTEM,
                    f"the CSMS refused the station's certificate ({reason})",
                )
            return Failure(None, f"TLS handshake failed ({reason or cause})")
    return None
