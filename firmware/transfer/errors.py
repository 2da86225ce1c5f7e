"""Exceptions of the transfer layer, rooted at ``TransferError``.

Raised before any attempt (not retried): ``UnsupportedScheme``, ``InvalidUrl``,
``LocalFileError``, ``EmptyFile`` for an upload. Raised by an attempt and
retried while attempts remain: every ``TransferFailed``. Messages never hold a
password.
"""

from __future__ import annotations

from firmware.errors import FirmwareError
from firmware.logs import redact


class TransferError(FirmwareError):
    """Root of every error of firmware.transfer."""


class InvalidUrl(TransferError, ValueError):
    """The location is not a usable URL (no host, bad port, ...)."""


class UnsupportedScheme(InvalidUrl):
    """The URL scheme is none of http, https, ftp, ftps."""


class LocalFileError(TransferError, OSError):
    """The local file cannot be read, written, synced or renamed (disk full, ...)."""


class TransferFailed(TransferError):
    """One attempt failed on the network or at the server; ``reason`` says why.

    ``status`` is the HTTP status or FTP reply code when the server gave one.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NotFound(TransferFailed):
    """HTTP 404/410, FTP 550: the server has no such file (or refuses to say)."""


class AuthenticationFailed(TransferFailed):
    """HTTP 401/403, FTP 530: the credentials were refused."""


class TransferTimeout(TransferFailed, TimeoutError):
    """The attempt took longer than its timeout, or no byte moved for the stall timeout."""


class EmptyFile(TransferFailed):
    """Nothing to transfer: the server sent zero bytes, or the file to upload is empty."""


class IncompleteTransfer(TransferFailed):
    """The connection ended before the announced size was reached."""


def describe(err: BaseException) -> str:
    """``Type: message`` of a library error, passwords in URLs hidden."""
    text = str(err)
    return redact(f"{type(err).__name__}: {text}" if text else type(err).__name__)
