"""Is the downloaded image the manufacturer's? The checks before anything is installed.

SignedUpdateFirmware brings its signing certificate and signature: the
certificate must chain to an installed ManufacturerRootCertificate (checked
when the request arrives, and again once the file is here: roots may have been
deleted and dates passed in between), and the signature must match the file.

A plain UpdateFirmware image, when ``firmware_update.require_signature`` asks
for it, needs a detached signature downloaded from ``<location><suffix>``: the
base64 signature (or its raw bytes), optionally preceded by the PEM signing
certificate that made it. That certificate must chain to a manufacturer root;
without one, the signature must verify under one of the certificates of
``firmware_update.signing_certificate``, trusted as configured on the board
(their dates and key usage are still checked).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509

from firmware.clock import Clock
from firmware.management.jobs import FirmwareJob
from firmware.security.events import SecurityEvent
from firmware.security.firmware_signing import (
    MAX_SIGNATURE_BYTES,
    SignatureRefused,
    SigningCertificateRefused,
    check_signing_certificate,
    check_signing_key,
    decode_signature,
    describe,
    file_digest,
    verify_digest,
)
from firmware.transfer import redact_url

log = logging.getLogger("firmware.management.update")

ManufacturerRoots = Callable[[], Sequence[x509.Certificate]]

MAX_DETACHED_BYTES = 64 * 1024
_END = b"-----END CERTIFICATE-----"


def signature_location(location: str, suffix: str) -> str:
    """Where a plain image's detached signature is: ``suffix`` after the path, query kept."""
    parts = urlsplit(location)
    return urlunsplit(parts._replace(path=parts.path + suffix))


def detached_path(file: Path) -> Path:
    """Where the detached signature of the downloaded ``file`` is kept."""
    return file.with_name(file.name + ".detached-signature")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a downloaded file is not installed, and the security event that says so."""

    event: SecurityEvent
    reason: str


class ImageVerifier:
    def __init__(
        self, roots: ManufacturerRoots, signers: Sequence[x509.Certificate], clock: Clock
    ) -> None:
        self.roots = roots
        self.signers = list(signers)
        self.clock = clock

    def signing_certificate(self, pem: str) -> x509.Certificate:
        """The request's signing certificate, if a manufacturer root vouches for it now."""
        return check_signing_certificate(pem, self.roots(), self.clock.now())

    async def check(
        self, job: FirmwareJob, *, require_signature: bool, suffix: str
    ) -> Refusal | None:
        """None when the downloaded file of ``job`` may be installed."""
        try:
            if job.signed:
                assert job.signing_certificate is not None and job.signature is not None
                await self.verify_signed(job.file, job.signing_certificate, job.signature)
                log.info("firmware signature verified (request %s)", job.request_id)
            elif require_signature:
                detached = detached_path(job.file)
                if not detached.exists():
                    where = redact_url(signature_location(job.location, suffix))
                    raise SignatureRefused(f"unsigned: no detached signature at {where}")
                cert = await self.verify_detached(job.file, detached)
                log.info("detached signature of the firmware verified with %s", describe(cert))
        except SigningCertificateRefused as err:
            return Refusal(SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE, str(err))
        except SignatureRefused as err:
            return Refusal(SecurityEvent.INVALID_FIRMWARE_SIGNATURE, str(err))
        return None

    async def verify_signed(self, file: Path, pem: str, signature: str) -> None:
        """Raises SigningCertificateRefused or SignatureRefused; returns when the file is good."""
        cert = self.signing_certificate(pem)
        raw = decode_signature(signature)
        digest = await asyncio.to_thread(file_digest, file)
        verify_digest(cert, digest, raw)

    async def verify_detached(self, file: Path, detached: Path) -> x509.Certificate:
        """The certificate whose detached signature matches ``file``; else SignatureRefused."""
        content = await asyncio.to_thread(_read_small, detached)
        carried, signature = _split(content)
        candidates: list[x509.Certificate] = []
        refusals: list[str] = []
        now = self.clock.now()
        if carried is not None:
            try:
                candidates.append(check_signing_certificate(carried, self.roots(), now))
            except SigningCertificateRefused as err:
                refusals.append(str(err))
        for signer in self.signers:
            try:
                check_signing_key(signer, now)
            except SigningCertificateRefused as err:
                refusals.append(f"firmware_update.signing_certificate: {err}")
                continue
            candidates.append(signer)
        if not candidates:
            why = refusals[0] if refusals else "it carries no certificate and none is configured"
            raise SignatureRefused(f"no trusted certificate for the detached signature: {why}")
        digest = await asyncio.to_thread(file_digest, file)
        for cert in candidates:
            try:
                verify_digest(cert, digest, signature)
                return cert
            except SignatureRefused:
                continue
        names = ", ".join(describe(c) for c in candidates)
        raise SignatureRefused(
            f"the detached signature does not match the file (SHA-256 {digest.hex()}) for {names}"
        )


def _read_small(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_DETACHED_BYTES + 1)
    if len(data) > MAX_DETACHED_BYTES:
        raise SignatureRefused(f"the detached signature is larger than {MAX_DETACHED_BYTES} bytes")
    return data


def _split(content: bytes) -> tuple[bytes | None, bytes]:
    """(the PEM certificate part, if any; the signature bytes)."""
    if not content.strip():
        raise SignatureRefused("the detached signature file is empty")
    end = content.rfind(_END)
    if end >= 0:
        cut = end + len(_END)
        return content[:cut], decode_signature(content[cut:])
    try:
        return None, decode_signature(content)
    except SignatureRefused:
        # Not base64 text: the raw signature bytes themselves.
        if len(content) > MAX_SIGNATURE_BYTES:
            raise
        return None, content
