"""Firmware Management transfers: download (UpdateFirmware), upload and the
diagnostics archive (GetDiagnostics). Not tied to OCPP messages."""

from firmware.transfer.client import download, upload
from firmware.transfer.diagnostics import build_archive, build_archive_async, rotated_logs
from firmware.transfer.errors import (
    AuthenticationFailed,
    EmptyFile,
    IncompleteTransfer,
    InvalidUrl,
    LocalFileError,
    NotFound,
    TransferError,
    TransferFailed,
    TransferTimeout,
    UnsupportedScheme,
)
from firmware.transfer.progress import ProgressCallback
from firmware.transfer.urls import redact_url

__all__ = [
    "AuthenticationFailed",
    "EmptyFile",
    "IncompleteTransfer",
    "InvalidUrl",
    "LocalFileError",
    "NotFound",
    "ProgressCallback",
    "TransferError",
    "TransferFailed",
    "TransferTimeout",
    "UnsupportedScheme",
    "build_archive",
    "build_archive_async",
    "download",
    "redact_url",
    "rotated_logs",
    "upload",
]
