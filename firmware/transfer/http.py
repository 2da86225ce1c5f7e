"""One attempt of an HTTP(S) download or upload, with aiohttp."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from firmware.transfer.deadline import Deadline
from firmware.transfer.errors import (
    AuthenticationFailed,
    EmptyFile,
    IncompleteTransfer,
    NotFound,
    TransferFailed,
    TransferTimeout,
    describe,
)
from firmware.transfer.partial import PartialFile, local_io
from firmware.transfer.settings import Settings
from firmware.transfer.urls import Location

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class _RangeRefused(Exception):
    """The server will not continue our ``.part``: start over from byte 0."""


async def download(location: Location, part: PartialFile, settings: Settings) -> Path:
    deadline = settings.deadline()
    async with deadline.guard(), _session() as session:
        offset = part.resume_offset()
        try:
            await _get(session, location, part, offset, settings, deadline)
        except _RangeRefused:
            part.discard()
            await _get(session, location, part, 0, settings, deadline)
    size = part.size()
    if size == 0:
        part.discard()
        raise EmptyFile("the server sent an empty file")
    if part.total is not None and size != part.total:
        raise IncompleteTransfer(f"got {size} of {part.total} bytes")
    settings.progress.finish()
    return part.commit()


async def _get(
    session: aiohttp.ClientSession,
    location: Location,
    part: PartialFile,
    offset: int,
    settings: Settings,
    deadline: Deadline,
) -> None:
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if part.validator is not None:
            headers["If-Range"] = part.validator
    with _mapped_errors():
        async with session.get(location.url, headers=headers, ssl=_ssl(settings)) as response:
            deadline.kick()
            if offset and response.status == 416:
                raise _RangeRefused
            _check_status(response)
            if offset and response.status == 206:
                start, total = _content_range(response.headers.get("Content-Range", ""))
                if start != offset or (part.total is not None and total != part.total):
                    raise _RangeRefused
            elif response.status == 206:
                raise TransferFailed("HTTP 206 to a request without Range", status=206)
            else:
                offset, total = 0, response.content_length
                part.restart(_validator(response), total)
            settings.progress.start(offset, part.total)
            with part.appending() as write:
                async for chunk in response.content.iter_chunked(settings.chunk_size):
                    write(chunk)
                    deadline.kick()
                    settings.progress.add(len(chunk))


async def upload(
    location: Location,
    path: Path,
    size: int,
    method: Literal["POST", "PUT"],
    settings: Settings,
) -> None:
    deadline = settings.deadline()
    settings.progress.start(0, size)
    body: Payload = _FilePayload(path, size, settings, deadline)
    if method == "POST":
        form = aiohttp.MultipartWriter("form-data")
        form.append_payload(body).set_content_disposition(
            "form-data", name="file", filename=path.name
        )
        body = form
    async with deadline.guard(), _session() as session:
        with _mapped_errors():
            request = session.request(method, location.url, data=body, ssl=_ssl(settings))
            async with request as response:
                deadline.kick()
                _check_status(response)
                await response.read()
    settings.progress.finish()


class _FilePayload(Payload):
    """The file's bytes, read chunk by chunk; each chunk sent counts as progress."""

    def __init__(self, path: Path, size: int, settings: Settings, deadline: Deadline) -> None:
        super().__init__(path, content_type="application/octet-stream", filename=path.name)
        self._size = size
        self._length = size
        self._settings = settings
        self._deadline = deadline

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a file upload is not text")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        left = self._length if content_length is None else min(content_length, self._length)
        with local_io("read " + self._value.name):
            source = self._value.open("rb")
        with source:
            while left > 0:
                with local_io("read " + self._value.name):
                    chunk = source.read(min(self._settings.chunk_size, left))
                if not chunk:
                    raise TransferFailed("the file shrank while it was being sent")
                await writer.write(chunk)
                left -= len(chunk)
                self._deadline.kick()
                self._settings.progress.add(len(chunk))


@contextlib.asynccontextmanager
async def _session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=None)  # the Deadline bounds every attempt
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        yield session


def _ssl(settings: Settings) -> Any:
    return settings.ssl if settings.ssl is not None else True


def _check_status(response: aiohttp.ClientResponse) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason or ''}".rstrip()
    if status in (401, 403):
        raise AuthenticationFailed(reason, status=status)
    if status in (404, 410):
        raise NotFound(reason, status=status)
    raise TransferFailed(reason, status=status)


def _content_range(value: str) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.match(value)
    if match is None:
        raise _RangeRefused
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def _validator(response: aiohttp.ClientResponse) -> str | None:
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag  # a weak ETag may not be used in If-Range
    return response.headers.get("Last-Modified")


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientConnectorCertificateError as err:
        raise TransferFailed(f"TLS certificate refused: {err.certificate_error}") from None
    except aiohttp.ClientConnectorError as err:
        raise TransferFailed(f"cannot connect to {err.host}:{err.port}: {err.strerror}") from None
    except aiohttp.ClientPayloadError as err:
        raise IncompleteTransfer(f"connection lost mid-body: {describe(err)}") from None
    except aiohttp.ServerTimeoutError as err:
        raise TransferTimeout(describe(err)) from None
    except aiohttp.ClientError as err:
        raise TransferFailed(describe(err)) from None
