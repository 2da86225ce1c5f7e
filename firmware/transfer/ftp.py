"""One attempt of an FTP(S) download or upload, with aioftp.

Passive mode (EPSV, then PASV), binary type. A ``.part`` is continued only when
the server answers SIZE, SIZE and MDTM match what the ``.part`` was started
from, and the server accepts REST; otherwise the download starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioftp

from firmware.transfer.deadline import Deadline
from firmware.transfer.errors import (
    AuthenticationFailed,
    EmptyFile,
    IncompleteTransfer,
    LocalFileError,
    NotFound,
    TransferFailed,
    TransferTimeout,
    describe,
)
from firmware.transfer.partial import PartialFile, local_io
from firmware.transfer.settings import Settings
from firmware.transfer.urls import Location

ANONYMOUS = ("anonymous", "anonymous@")


async def download(location: Location, part: PartialFile, settings: Settings) -> Path:
    path = location.ftp_path
    deadline = settings.deadline()
    async with deadline.guard():
        with _mapped_errors():
            async with _connected(location, settings, deadline) as client:
                await client.command("TYPE I", "200")
                total = _int(await _query(client, "SIZE " + path, "213"))
                modified = await _query(client, "MDTM " + path, "213")
                validator = None if total is None and modified is None else f"{total} {modified}"
                offset = part.resume_offset()
                if validator != part.validator or (total or 0) <= offset:
                    offset = 0
                stream, offset = await _retrieve(client, path, offset)
                try:
                    if not offset:
                        part.restart(validator, total)
                    settings.progress.start(offset, total)
                    with part.appending() as write:
                        async for block in stream.iter_by_block(settings.chunk_size):
                            write(block)
                            deadline.kick()
                            settings.progress.add(len(block))
                    await stream.finish()
                finally:
                    stream.close()
    size = part.size()
    if size == 0:
        part.discard()
        raise EmptyFile("the server sent an empty file")
    if total is not None and size != total:
        raise IncompleteTransfer(f"got {size} of {total} bytes")
    settings.progress.finish()
    return part.commit()


async def _retrieve(
    client: aioftp.Client, path: str, offset: int
) -> tuple[aioftp.DataConnectionThrottleStreamIO, int]:
    """RETR from ``offset``, or from 0 if the server refuses REST; returns where it starts."""
    reader, writer = await client.get_passive_connection("I")
    try:
        if offset:
            try:
                await client.command(f"REST {offset}", "350")
            except aioftp.StatusCodeError:
                offset = 0
        await client.command("RETR " + path, "1xx")
    except BaseException:
        writer.close()
        raise
    return _stream(client, reader, writer), offset


async def upload(location: Location, source: Path, size: int, settings: Settings) -> None:
    deadline = settings.deadline()
    settings.progress.start(0, size)
    async with deadline.guard():
        with _mapped_errors():
            async with _connected(location, settings, deadline) as client:
                reader, writer = await client.get_passive_connection("I")
                try:
                    await client.command("STOR " + location.ftp_path, "1xx")
                except BaseException:
                    writer.close()
                    raise
                stream = _stream(client, reader, writer)
                try:
                    await _send(source, size, stream, settings, deadline)
                    await stream.finish()
                finally:
                    stream.close()
    settings.progress.finish()


async def _send(
    source: Path,
    size: int,
    stream: aioftp.DataConnectionThrottleStreamIO,
    settings: Settings,
    deadline: Deadline,
) -> None:
    with local_io("read " + source.name):
        handle = source.open("rb")
    with handle:
        left = size
        while left > 0:
            with local_io("read " + source.name):
                chunk = handle.read(min(settings.chunk_size, left))
            if not chunk:
                raise TransferFailed("the file shrank while it was being sent")
            await stream.write(chunk)
            left -= len(chunk)
            deadline.kick()
            settings.progress.add(len(chunk))


@contextlib.asynccontextmanager
async def _connected(
    location: Location, settings: Settings, deadline: Deadline
) -> AsyncIterator[aioftp.Client]:
    tls = location.scheme == "ftps"
    context = settings.ssl_context() if tls else None
    client = aioftp.Client(ssl=context if location.implicit_tls else None)
    try:
        await client.connect(location.host, location.port)
        deadline.kick()
        if tls and not location.implicit_tls:
            await client.upgrade_to_tls(context)
        user, password = ANONYMOUS
        if location.user:
            user, password = location.user, location.password or ""
        await client.login(user, password)
        if location.implicit_tls:
            await client.command("PBSZ 0", "200")
            await client.command("PROT P", "200")
        deadline.kick()
        yield client
    finally:
        client.close()


def _stream(
    client: aioftp.Client, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> aioftp.DataConnectionThrottleStreamIO:
    return aioftp.DataConnectionThrottleStreamIO(
        client, reader, writer, throttles={"_": client.throttle}
    )


async def _query(client: aioftp.Client, command: str, code: str) -> str | None:
    """The text of a positive reply, or None when the server refuses (5xx)."""
    try:
        _, info = await client.command(command, code)
    except aioftp.StatusCodeError as err:
        if any(received.matches("5xx") for received in err.received_codes):
            return None
        raise
    return " ".join(line.strip() for line in info).strip() or None


def _int(text: str | None) -> int | None:
    try:
        return int(text.split()[-1]) if text else None
    except ValueError:
        return None


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except aioftp.StatusCodeError as err:
        code = str(err.received_codes[0]) if err.received_codes else "?"
        info = " ".join(str(line).strip() for line in _lines(err.info))
        reason = f"FTP {code} {info}".strip()
        status = int(code) if code.isdigit() else None
        if code == "550":
            raise NotFound(reason, status=status) from None
        if code == "530":
            raise AuthenticationFailed(reason, status=status) from None
        raise TransferFailed(reason, status=status) from None
    except LocalFileError:
        raise
    except TransferFailed:
        raise
    except EOFError as err:
        raise IncompleteTransfer(f"connection lost: {describe(err)}") from None
    except TimeoutError as err:
        raise TransferTimeout(describe(err)) from None
    except (OSError, aioftp.AIOFTPException, ValueError) as err:
        raise TransferFailed(describe(err)) from None


def _lines(info: list[str] | str) -> list[str]:
    return [info] if isinstance(info, str) else info
