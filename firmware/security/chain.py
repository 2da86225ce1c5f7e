"""Checking a certificate chain the CSMS sends for the station (CertificateSigned).

The chain (leaf first, then the sub-CA certificates) is accepted only if:

- it is at most ``max_bytes`` long (CertificateSignedMaxChainSize) and is PEM;
- the leaf certifies the key of the pending signing request, names the
  station (its common name is the charge point's identity), is no CA, and
  allows client authentication where it restricts key usage at all;
- no certificate has expired, and the sub-CAs are valid now (the leaf may
  start later: it is then used from that moment on);
- every certificate is signed by the next one, which is a CA within its
  path length;
- the chain ends at, or is issued by, an installed CSMS root certificate: the
  whitepaper's CentralSystemRootCertificate is the root "used by the CA to sign
  the Central System and Charge Point certificate", so that is the CSMS's PKI.

``validate`` raises ``ChainRefused`` with the first reason found.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from firmware.security.certificates import (
    PublicKey,
    common_name,
    expired,
    is_ca,
    issued_by,
    load_pem_certificates,
    not_yet_valid,
    path_length,
    same_key,
)
from firmware.security.errors import CertificateError


class ChainRefused(CertificateError):
    """The chain is not acceptable; the message says why."""


def validate(
    text: str,
    *,
    key: PublicKey | None,
    identity: str,
    anchors: Sequence[x509.Certificate],
    now: datetime,
    max_bytes: int,
) -> list[x509.Certificate]:
    """The chain of ``text``, leaf first, if it is acceptable (see the module docstring)."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise ChainRefused(f"the chain has {size} bytes, more than the limit of {max_bytes}")
    try:
        chain = load_pem_certificates(text, "certificate chain")
    except CertificateError as err:
        raise ChainRefused(str(err)) from None
    _check_leaf(chain[0], key, identity)
    _check_dates(chain, now)
    _check_links(chain)
    _check_anchor(chain, anchors, now)
    return chain


def _check_leaf(leaf: x509.Certificate, key: PublicKey | None, identity: str) -> None:
    if key is None:
        raise ChainRefused("no signing request is pending")
    if not same_key(leaf.public_key(), key):
        raise ChainRefused("the certificate is not for the key of the pending signing request")
    name = common_name(leaf)
    if name != identity:
        raise ChainRefused(f"the certificate names {name!r}, not this charge point ({identity!r})")
    if is_ca(leaf):
        raise ChainRefused("the certificate is a CA certificate")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if not usage.digital_signature:
            raise ChainRefused("the certificate's key usage does not allow digital signatures")
    try:
        purposes = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if ExtendedKeyUsageOID.CLIENT_AUTH not in purposes:
            raise ChainRefused("the certificate does not allow TLS client authentication")


def _check_dates(chain: Sequence[x509.Certificate], now: datetime) -> None:
    for position, cert in enumerate(chain):
        what = "the certificate" if position == 0 else f"sub-CA certificate {position}"
        if expired(cert, now):
            raise ChainRefused(f"{what} expired on {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}")
        if position > 0 and not_yet_valid(cert, now):
            raise ChainRefused(
                f"{what} is valid only from {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
            )


def _check_links(chain: Sequence[x509.Certificate]) -> None:
    for position in range(len(chain) - 1):
        cert, issuer = chain[position], chain[position + 1]
        if not issued_by(cert, issuer):
            raise ChainRefused(f"certificate {position} of the chain is not signed by the next one")
        if not is_ca(issuer):
            raise ChainRefused(f"certificate {position + 1} of the chain signs but is no CA")
        limit = path_length(issuer)
        if limit is not None and position > limit:  # CAs below it in the chain: position
            raise ChainRefused(f"certificate {position + 1} of the chain exceeds its path length")


def _check_anchor(
    chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], now: datetime
) -> None:
    if not anchors:
        raise ChainRefused("no CSMS root certificate is installed to verify it against")
    for cert in chain:
        for anchor in anchors:
            if cert == anchor or issued_by(cert, anchor):
                if expired(anchor, now):
                    raise ChainRefused("the CSMS root certificate it chains to has expired")
                return
    raise ChainRefused("it is not issued under an installed CSMS root certificate")
