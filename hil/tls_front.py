"""TLS in front of the bench CSMS, as a reverse proxy in front of a real one.

asyncio's own TLS server drops the connection when a handshake fails without
sending the TLS alert, so a client only sees a reset and cannot tell an
expired certificate from a version or cipher it refused. Real CSMS front ends
(nginx, a Java server) send the alert. This front does the handshake itself
with memory BIOs, flushes the alert on failure, and then passes bytes both
ways to the plain websocket server behind it. Like nginx's ``$ssl_client_cert``
it tells that server about the TLS session in request headers it adds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl

log = logging.getLogger(__name__)

VERSION_HEADER = b"X-Bench-Tls-Version"
CERTIFICATE_HEADER = b"X-Bench-Tls-Client-Certificate"
_CHUNK = 65536
_MAX_HEAD = 65536


class TlsFront:
    def __init__(self, context: ssl.SSLContext, backend_port: int, host: str, port: int) -> None:
        self.context = context  # replaced or changed by the bench: the next handshakes use it
        self.backend_port = backend_port
        self.host = host
        self.port = port
        self.failures: list[ssl.SSLError] = []  # handshakes this side refused
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accepted, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Aborting the sockets ends the sessions (cancelling a stream server's callback
        # task makes asyncio log an error).
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if server is not None:
            await server.wait_closed()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await _Session(self, reader, writer).run()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, EOFError) as err:
            log.debug("TLS front: connection ended: %r", err)
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class _Session:
    def __init__(
        self, front: TlsFront, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.front = front
        self.reader = reader
        self.writer = writer
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = front.context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    async def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _feed(self) -> bool:
        data = await self.reader.read(_CHUNK)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    async def run(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._feed():
                    return
            except ssl.SSLError as err:
                self.front.failures.append(err)
                await self._flush()  # the alert: the whole point of this front
                return
        await self._flush()
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.front.backend_port
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._to_backend(upstream_writer))
                tg.create_task(self._to_client(upstream_reader))
        except* (ConnectionError, ssl.SSLError, EOFError):
            pass
        finally:
            upstream_writer.close()

    def _session_headers(self) -> bytes:
        cert = self.tls.getpeercert(binary_form=True)
        value = base64.b64encode(cert).decode() if cert else "-"
        version = self.tls.version() or "-"
        return (
            VERSION_HEADER + b": " + version.encode() + b"\r\n"
            + CERTIFICATE_HEADER + b": " + value.encode() + b"\r\n"
        )  # fmt: skip

    async def _read_plain(self) -> bytes:
        while True:
            try:
                return self.tls.read(_CHUNK)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._feed():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    async def _to_backend(self, upstream: asyncio.StreamWriter) -> None:
        head = b""
        injected = False
        while True:
            data = await self._read_plain()
            if not data:
                upstream.write_eof()
                raise EOFError  # ends the other direction too
            if not injected:
                head += data
                end = head.find(b"\r\n\r\n")
                if end < 0 and len(head) < _MAX_HEAD:
                    continue
                cut = end + 2 if end >= 0 else len(head)
                data = head[:cut] + self._session_headers() + head[cut:]
                injected = True
            upstream.write(data)
            await upstream.drain()

    async def _to_client(self, upstream: asyncio.StreamReader) -> None:
        while True:
            data = await upstream.read(_CHUNK)
            if not data:
                with contextlib.suppress(ssl.SSLError):
                    self.tls.unwrap()
                await self._flush()
                raise EOFError
            self.tls.write(data)
            await self._flush()
