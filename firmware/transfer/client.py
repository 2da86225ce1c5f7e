"""Download and upload of whole files over http, https, ftp and ftps.

The entry points a Firmware Management service calls for UpdateFirmware and
GetDiagnostics. ``retries`` and ``retry_interval_s`` are the OCPP fields: how
many more attempts after the first failed one, and the wait between two.
``timeout_s`` bounds one attempt; ``stall_timeout_s`` bounds the time in which
no byte moved (connecting and waiting for the server count). URLs are logged
with their password hidden.
"""

from __future__ import annotations

import logging
import ssl as ssl_module
from pathlib import Path
from types import ModuleType
from typing import Literal

from firmware.transfer import http
from firmware.transfer.errors import EmptyFile
from firmware.transfer.partial import PartialFile, local_io, source_key
from firmware.transfer.progress import Progress, ProgressCallback
from firmware.transfer.retry import attempts
from firmware.transfer.settings import Settings
from firmware.transfer.urls import parse

log = logging.getLogger("firmware.transfer")

Method = Literal["POST", "PUT"]

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_STALL_TIMEOUT_S = 60.0
DEFAULT_PROGRESS_EVERY_BYTES = 256 * 1024
DEFAULT_PROGRESS_EVERY_S = 1.0


async def download(
    url: str,
    dest: Path,
    *,
    retries: int = 0,
    retry_interval_s: float = 0.0,
    progress: ProgressCallback | None = None,
    ssl: ssl_module.SSLContext | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
    progress_every_bytes: int = DEFAULT_PROGRESS_EVERY_BYTES,
    progress_every_s: float = DEFAULT_PROGRESS_EVERY_S,
) -> Path:
    """Fetch ``url`` into ``dest`` and return ``dest``.

    Bytes go to ``<dest>.part`` (with its resume record ``<dest>.part.json``);
    the complete file is synced and renamed to ``dest``. A ``.part`` left by an
    interrupted download of the same URL is continued (HTTP Range, FTP REST)
    when the server allows it and the file did not change, else replaced.
    Cancellation propagates and keeps the ``.part`` for a later resume.

    Raises UnsupportedScheme / InvalidUrl (before any attempt), LocalFileError
    (at once), or the last attempt's TransferFailed (NotFound,
    AuthenticationFailed, TransferTimeout, EmptyFile, IncompleteTransfer, ...).
    """
    location = parse(url)
    _check(retries, retry_interval_s, timeout_s, stall_timeout_s)
    settings = Settings(
        timeout_s=timeout_s,
        stall_timeout_s=stall_timeout_s,
        ssl=ssl,
        progress=Progress(progress, every_bytes=progress_every_bytes, every_s=progress_every_s),
    )
    part = PartialFile(dest, source_key(location.url))
    fetch = _ftp().download if location.scheme.startswith("ftp") else http.download

    async def attempt() -> Path:
        log.info("downloading %s to %s", location.safe, dest)
        return await fetch(location, part, settings)

    result = await attempts(
        attempt,
        retries=retries,
        retry_interval_s=retry_interval_s,
        what=f"download of {location.safe}",
    )
    log.info("downloaded %s (%d bytes)", dest, settings.progress.done)
    return result


async def upload(
    url: str,
    path: Path,
    *,
    method: Method = "POST",
    retries: int = 0,
    retry_interval_s: float = 0.0,
    progress: ProgressCallback | None = None,
    ssl: ssl_module.SSLContext | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
    progress_every_bytes: int = DEFAULT_PROGRESS_EVERY_BYTES,
    progress_every_s: float = DEFAULT_PROGRESS_EVERY_S,
) -> None:
    """Send the file at ``path`` to ``url``.

    http(s): ``method`` POST sends multipart/form-data with the file in field
    ``file`` (named by its basename); PUT sends the raw bytes. Any 2xx is a
    success. ftp(s): STOR to the URL's path (``method`` is ignored). Each
    attempt sends the whole file again.

    Raises UnsupportedScheme / InvalidUrl, EmptyFile or LocalFileError (before
    any attempt), or the last attempt's TransferFailed.
    """
    location = parse(url)
    _check(retries, retry_interval_s, timeout_s, stall_timeout_s)
    if method not in ("POST", "PUT"):
        raise ValueError(f"method must be POST or PUT, not {method!r}")
    size = _file_size(path)
    if size == 0:
        raise EmptyFile(f"{path.name} is empty: nothing to upload")
    settings = Settings(
        timeout_s=timeout_s,
        stall_timeout_s=stall_timeout_s,
        ssl=ssl,
        progress=Progress(progress, every_bytes=progress_every_bytes, every_s=progress_every_s),
    )

    async def attempt() -> None:
        log.info("uploading %s (%d bytes) to %s", path.name, size, location.safe)
        if location.scheme.startswith("ftp"):
            await _ftp().upload(location, path, size, settings)
        else:
            await http.upload(location, path, size, method, settings)

    await attempts(
        attempt,
        retries=retries,
        retry_interval_s=retry_interval_s,
        what=f"upload to {location.safe}",
    )
    log.info("uploaded %s to %s", path.name, location.safe)


def _file_size(path: Path) -> int:
    with local_io("read " + path.name):
        return path.stat().st_size


def _check(retries: int, retry_interval_s: float, timeout_s: float, stall_timeout_s: float) -> None:
    if retries < 0 or retry_interval_s < 0:
        raise ValueError("retries and retry_interval_s must not be negative")
    if timeout_s <= 0 or stall_timeout_s <= 0:
        raise ValueError("timeout_s and stall_timeout_s must be positive")


def _ftp() -> ModuleType:
    """The FTP(S) transfers, loaded on the first ftp:// URL: most stations never see
    one, and aioftp adds some 50 ms to every start of the daemon."""
    from firmware.transfer import ftp

    return ftp
