"""Downloads and uploads over HTTP(S) against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from firmware.transfer import (
    AuthenticationFailed,
    EmptyFile,
    IncompleteTransfer,
    InvalidUrl,
    NotFound,
    TransferFailed,
    TransferTimeout,
    UnsupportedScheme,
    download,
    upload,
)
from tests.unit import selfsigned

PAYLOAD = bytes(range(256)) * 1200  # 300 KiB, no two neighbouring chunks alike
HALF = len(PAYLOAD) // 2
FAST = {"timeout_s": 5.0, "stall_timeout_s": 2.0}


@dataclass
class Seen:
    """What the server was asked: (method, path, headers) of every request."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    uploads: list[tuple[str, str | None, bytes, dict[str, str]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    drops: int = 1

    def ranges(self, path: str) -> list[str | None]:
        return [h.get("Range") for _, p, h in self.requests if p == path]


def build_app(root: Path, seen: Seen) -> web.Application:
    firmware = root / "fw.bin"
    firmware.write_bytes(PAYLOAD)
    (root / "empty.bin").write_bytes(b"")

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen.requests.append((request.method, request.path, dict(request.headers)))
        return await handler(request)

    async def ranged(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(root / request.match_info["name"])

    async def no_range(request: web.Request) -> web.Response:
        return web.Response(body=PAYLOAD, content_type="application/octet-stream")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def half_then_wait(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(PAYLOAD)
        await response.prepare(request)
        await response.write(PAYLOAD[:HALF])
        await seen.release.wait()
        return response

    async def cut_at_half(request: web.Request, etag: str | None) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(PAYLOAD)
        if etag:
            response.headers["ETag"] = etag
        await response.prepare(request)
        await response.write(PAYLOAD[:HALF])
        assert request.transport is not None
        request.transport.abort()  # a power cut or lost link, seen from the server
        return response

    async def drops_once(request: web.Request) -> web.StreamResponse:
        if seen.drops > 0:
            seen.drops -= 1
            stat = firmware.stat()  # the ETag FileResponse gives the same file
            return await cut_at_half(request, f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')
        return web.FileResponse(firmware)

    async def drops_once_then_ignores_range(request: web.Request) -> web.StreamResponse:
        if seen.drops > 0:
            seen.drops -= 1
            return await cut_at_half(request, None)
        return web.Response(body=PAYLOAD, content_type="application/octet-stream")

    async def dribble(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(PAYLOAD)
        await response.prepare(request)
        for offset in range(0, len(PAYLOAD), 1000):
            await response.write(PAYLOAD[offset : offset + 1000])
            await asyncio.sleep(0.02)
        return response

    async def protected(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        if auth != "Basic " + base64.b64encode(b"user:s3cret:pw").decode():
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        return web.FileResponse(firmware)

    async def receive(request: web.Request) -> web.Response:
        if request.method == "POST":
            form = await request.post()
            item = form["file"]
            assert isinstance(item, web.FileField)
            seen.uploads.append(("POST", item.filename, item.file.read(), dict(request.headers)))
        else:
            body = await request.read()
            seen.uploads.append(("PUT", None, body, dict(request.headers)))
        return web.Response(status=201 if request.method == "PUT" else 200)

    app = web.Application(middlewares=[record], client_max_size=16 * 1024 * 1024)
    app.router.add_get("/ranged/{name}", ranged)
    app.router.add_get("/no-range/fw.bin", no_range)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_get("/stall/fw.bin", half_then_wait)
    app.router.add_get("/drop/fw.bin", drops_once)
    app.router.add_get("/drop-no-range/fw.bin", drops_once_then_ignores_range)
    app.router.add_get("/dribble/fw.bin", dribble)
    app.router.add_get("/auth/fw.bin", protected)
    app.router.add_post("/upload", receive)
    app.router.add_put("/upload/{name}", receive)
    return app


@dataclass
class Server:
    base: str
    seen: Seen
    root: Path


async def _serve(
    tmp_path: Path, ssl_context: Any = None, scheme: str = "http"
) -> AsyncIterator[Server]:
    seen = Seen()
    root = tmp_path / "www"
    root.mkdir()
    runner = web.AppRunner(build_app(root, seen), shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Server(f"{scheme}://{host}:{port}", seen, root)
    finally:
        seen.release.set()
        await runner.cleanup()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async for running in _serve(tmp_path):
        yield running


def _dest(tmp_path: Path) -> Path:
    return tmp_path / "out" / "firmware.bin"


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir()) if dest.parent.exists() else []


async def test_download_writes_the_file_and_reports_progress(
    server: Server, tmp_path: Path
) -> None:
    reports: list[tuple[int, int | None]] = []
    dest = _dest(tmp_path)
    result = await download(
        f"{server.base}/ranged/fw.bin",
        dest,
        progress=lambda done, total: reports.append((done, total)),
        progress_every_bytes=64 * 1024,
        progress_every_s=0,
        **FAST,
    )
    assert result == dest and dest.read_bytes() == PAYLOAD
    assert _leftovers(dest) == ["firmware.bin"]  # no .part, no resume record
    assert reports[0] == (0, len(PAYLOAD)) and reports[-1] == (len(PAYLOAD), len(PAYLOAD))
    dones = [done for done, _ in reports]
    assert dones == sorted(dones) and len(reports) <= 2 + len(PAYLOAD) // (64 * 1024)
    assert server.seen.requests[0][2].get("Accept-Encoding") == "identity"


async def test_connection_lost_mid_body_is_resumed_with_range(
    server: Server, tmp_path: Path
) -> None:
    dest = _dest(tmp_path)
    await download(f"{server.base}/drop/fw.bin", dest, retries=1, retry_interval_s=0.01, **FAST)
    ranges = server.seen.ranges("/drop/fw.bin")
    assert ranges[0] is None and ranges[1] is not None
    offset = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= HALF
    assert dest.read_bytes() == PAYLOAD


async def test_a_later_call_resumes_the_part_left_by_an_interrupted_one(
    server: Server, tmp_path: Path
) -> None:
    dest = _dest(tmp_path)
    url = f"{server.base}/drop/fw.bin"
    with pytest.raises(IncompleteTransfer):
        await download(url, dest, **FAST)
    part = dest.with_name("firmware.bin.part")
    kept = part.stat().st_size
    assert 0 < kept <= HALF and not dest.exists()
    await download(url, dest, **FAST)  # as after a reboot
    assert server.seen.ranges("/drop/fw.bin")[-1] == f"bytes={kept}-"
    assert dest.read_bytes() == PAYLOAD and not part.exists()


async def test_a_changed_file_is_fetched_whole(server: Server, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    url = f"{server.base}/drop/fw.bin"
    with pytest.raises(IncompleteTransfer):
        await download(url, dest, **FAST)
    (server.root / "fw.bin").write_bytes(PAYLOAD[::-1] + b"v2")  # a new build, same URL
    await download(url, dest, **FAST)
    headers = server.seen.requests[1][2]
    assert headers["Range"].startswith("bytes=") and headers["If-Range"].startswith('"')
    # aiohttp's FileResponse checks If-Range only as a date and answers 206; the
    # total size in Content-Range then differs from the recorded one: restart from 0
    assert dest.read_bytes() == PAYLOAD[::-1] + b"v2"


async def test_a_server_without_range_support_restarts_from_zero(
    server: Server, tmp_path: Path
) -> None:
    dest = _dest(tmp_path)
    url = f"{server.base}/drop-no-range/fw.bin"
    await download(url, dest, retries=1, **FAST)
    assert server.seen.ranges("/drop-no-range/fw.bin")[1] is not None  # asked, got 200
    assert dest.read_bytes() == PAYLOAD


async def test_a_part_of_another_url_is_not_continued(server: Server, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    with pytest.raises(TransferTimeout):
        await download(f"{server.base}/stall/fw.bin", dest, timeout_s=5, stall_timeout_s=0.3)
    assert dest.with_name("firmware.bin.part").exists()
    await download(f"{server.base}/ranged/fw.bin", dest, **FAST)
    assert server.seen.ranges("/ranged/fw.bin") == [None]
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize(("code", "error"), [(404, NotFound), (500, TransferFailed)])
async def test_http_errors_are_retried_then_raised(
    server: Server, tmp_path: Path, code: int, error: type[TransferFailed]
) -> None:
    dest = _dest(tmp_path)
    with pytest.raises(error) as raised:
        await download(
            f"{server.base}/status/{code}", dest, retries=2, retry_interval_s=0.01, **FAST
        )
    assert raised.value.status == code and str(code) in str(raised.value)
    assert len(server.seen.ranges(f"/status/{code}")) == 3  # first try + 2 retries
    assert not dest.exists()


async def test_a_stalled_body_times_out_and_keeps_the_part(server: Server, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    with pytest.raises(TransferTimeout, match="stalled"):
        await download(f"{server.base}/stall/fw.bin", dest, timeout_s=5, stall_timeout_s=0.3)
    assert dest.with_name("firmware.bin.part").read_bytes() == PAYLOAD[:HALF]


async def test_the_overall_timeout_bounds_a_slow_but_moving_body(
    server: Server, tmp_path: Path
) -> None:
    with pytest.raises(TransferTimeout, match="timed out after"):
        await download(
            f"{server.base}/dribble/fw.bin", _dest(tmp_path), timeout_s=0.3, stall_timeout_s=2
        )


async def test_unreachable_host_fails_cleanly(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransferFailed, match="cannot connect"):
        await download(f"http://127.0.0.1:{port}/fw.bin", _dest(tmp_path), **FAST)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("gopher://127.0.0.1/fw.bin", UnsupportedScheme),
        ("file:///etc/passwd", UnsupportedScheme),
        ("/just/a/path", UnsupportedScheme),
        ("http:///no-host", InvalidUrl),
        ("http://127.0.0.1:99999/x", InvalidUrl),
    ],
)
async def test_bad_locations_are_refused_before_any_attempt(
    tmp_path: Path, url: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await download(url, _dest(tmp_path), retries=5, retry_interval_s=60, **FAST)


async def test_an_empty_file_is_an_error(server: Server, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    with pytest.raises(EmptyFile):
        await download(f"{server.base}/ranged/empty.bin", dest, **FAST)
    assert _leftovers(dest) == []


async def test_cancellation_propagates_and_keeps_the_part(server: Server, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    started = asyncio.Event()

    def progress(done: int, total: int | None) -> None:
        if done >= HALF:
            started.set()

    task = asyncio.create_task(
        download(
            f"{server.base}/stall/fw.bin",
            dest,
            progress=progress,
            progress_every_bytes=1,
            progress_every_s=0,
            timeout_s=30,
            stall_timeout_s=30,
        )
    )
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dest.with_name("firmware.bin.part").read_bytes() == PAYLOAD[:HALF]
    assert dest.with_name("firmware.bin.part.json").exists() and not dest.exists()


async def test_credentials_in_the_url_are_used_and_never_logged(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    authority = server.base.removeprefix("http://")
    good = f"http://user:s3cret%3Apw@{authority}/auth/fw.bin"
    dest = await download(good, _dest(tmp_path), **FAST)
    assert dest.read_bytes() == PAYLOAD
    bad = f"http://user:wr0ng-pw@{authority}/auth/fw.bin"
    with pytest.raises(AuthenticationFailed) as raised:
        await download(bad, tmp_path / "other.bin", retries=1, **FAST)
    assert raised.value.status == 401 and "wr0ng" not in str(raised.value)
    assert "user:***@" in caplog.text
    assert "s3cret" not in caplog.text and "wr0ng" not in caplog.text


async def test_post_upload_is_multipart_with_a_file_field(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "diagnostics-CP1-20260101T000000Z.tar.gz"
    source.write_bytes(PAYLOAD)
    reports: list[tuple[int, int | None]] = []
    await upload(
        f"{server.base}/upload",
        source,
        method="POST",
        progress=lambda done, total: reports.append((done, total)),
        **FAST,
    )
    [(method, filename, body, headers)] = server.seen.uploads
    assert (method, filename, body) == ("POST", source.name, PAYLOAD)
    assert headers["Content-Type"].startswith("multipart/form-data")
    assert "Content-Length" in headers and "Transfer-Encoding" not in headers
    assert reports[0] == (0, len(PAYLOAD)) and reports[-1] == (len(PAYLOAD), len(PAYLOAD))


async def test_put_upload_sends_the_raw_bytes(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "diag.tar.gz"
    source.write_bytes(PAYLOAD)
    await upload(f"{server.base}/upload/diag.tar.gz", source, method="PUT", **FAST)
    [(method, _, body, headers)] = server.seen.uploads
    assert (method, body) == ("PUT", PAYLOAD)
    assert headers["Content-Length"] == str(len(PAYLOAD))


async def test_upload_errors_are_retried_then_raised(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "diag.tar.gz"
    source.write_bytes(PAYLOAD)
    with pytest.raises(TransferFailed) as raised:
        await upload(
            f"{server.base}/status/500",
            source,
            method="PUT",
            retries=1,
            retry_interval_s=0.01,
            **FAST,
        )
    assert raised.value.status == 500
    assert len(server.seen.ranges("/status/500")) == 2


async def test_an_empty_upload_is_refused_before_any_request(
    server: Server, tmp_path: Path
) -> None:
    source = tmp_path / "empty.tar.gz"
    source.write_bytes(b"")
    with pytest.raises(EmptyFile):
        await upload(f"{server.base}/upload", source, **FAST)
    assert server.seen.requests == []


async def test_https_with_the_deployments_ca_bundle(tmp_path: Path) -> None:
    certs = selfsigned.make(tmp_path)
    async for running in _serve(tmp_path, certs.server_context(), scheme="https"):
        dest = await download(
            f"{running.base}/ranged/fw.bin", _dest(tmp_path), ssl=certs.client_context(), **FAST
        )
        assert dest.read_bytes() == PAYLOAD
        source = tmp_path / "diag.tar.gz"
        source.write_bytes(PAYLOAD[:5000])
        await upload(f"{running.base}/upload", source, ssl=certs.client_context(), **FAST)
        assert running.seen.uploads[0][2] == PAYLOAD[:5000]
        with pytest.raises(TransferFailed, match="certificate"):
            await download(f"{running.base}/ranged/fw.bin", tmp_path / "untrusted.bin", **FAST)
