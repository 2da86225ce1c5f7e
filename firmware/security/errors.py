"""Exception root of the security layer."""

from __future__ import annotations

from firmware.errors import FirmwareError


class SecurityError(FirmwareError):
    """Root of the errors the security layer raises on purpose."""


class CertificateError(SecurityError, ValueError):
    """A certificate, chain, key or request is unusable; the message says why."""


class StoreError(SecurityError, OSError):
    """The certificate store cannot be read or written."""
