"""HTTP and FTP servers for the Firmware Management tests, in the test process.

The HTTP server is the transfer layer's test app (tests/unit/test_transfer_http)
with three more routes: ``/slow/{name}`` sends a file in small chunks with a
pause between them and honours ``Range`` (a power cut mid-download, then its
resumption), ``/flaky/{name}`` answers 503 to its first ``flaky`` requests,
and ``/files/{name}`` serves any file put in ``root``. The FTP server is the
transfer layer's pyftpdlib one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.unit.test_transfer_http import Seen, build_app

SLOW_CHUNK = 4096


@dataclass
class Http:
    base: str
    root: Path
    seen: Seen
    slow_sent: int = 0
    slow_pause_s: float = 0.03
    flaky: int = 0
    flaky_seen: int = 0
    uploads: list[tuple[str, str | None, bytes]] = field(default_factory=list)

    def ranges(self, path: str) -> list[str | None]:
        return self.seen.ranges(path)


@asynccontextmanager
async def http_server(root: Path) -> AsyncIterator[Http]:
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    seen = Seen()
    app = build_app(root, seen)
    state = Http("", root, seen)

    async def files(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(root / request.match_info["name"])

    async def slow(request: web.Request) -> web.StreamResponse:
        data = (root / request.match_info["name"]).read_bytes()
        start = 0
        wanted = request.headers.get("Range")
        if wanted:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
        response = web.StreamResponse(status=206 if start else 200)
        response.headers["ETag"] = '"slow-v1"'
        response.content_length = len(data) - start
        if start:
            response.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await response.prepare(request)
        for offset in range(start, len(data), SLOW_CHUNK):
            await response.write(data[offset : offset + SLOW_CHUNK])
            state.slow_sent = offset + SLOW_CHUNK
            await asyncio.sleep(state.slow_pause_s)
        return response

    async def flaky(request: web.Request) -> web.StreamResponse:
        state.flaky_seen += 1
        if state.flaky_seen <= state.flaky:
            return web.Response(status=503, text="busy")
        return web.FileResponse(root / request.match_info["name"])

    app.router.add_get("/files/{name}", files)
    app.router.add_get("/slow/{name}", slow)
    app.router.add_get("/flaky/{name}", flaky)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.base = f"http://{host}:{port}"
    try:
        yield state
    finally:
        seen.release.set()
        await runner.cleanup()


def build_wheel(directory: Path, distribution: str, version: str, module_text: str) -> Path:
    """A minimal real wheel of ``distribution`` holding one module of the same name."""
    tag = "py3-none-any"
    info = f"{distribution}-{version}.dist-info"
    files = {
        f"{distribution}.py": module_text.encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        ).encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{distribution}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path
