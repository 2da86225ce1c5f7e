"""Firmware Management transfers: download (UpdateFirmware) and upload
(GetDiagnostics). Not tied to OCPP messages."""

from firmware.transfer.client import download, upload
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
    "download",
    "redact_url",
    "upload",
]
