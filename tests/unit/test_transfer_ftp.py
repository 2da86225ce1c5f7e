"""Downloads and uploads over FTP(S) against a real pyftpdlib server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

from firmware.transfer import (
    AuthenticationFailed,
    EmptyFile,
    NotFound,
    TransferFailed,
    download,
    upload,
)
from tests.unit import selfsigned

PAYLOAD = bytes(range(251)) * 1600  # ~400 KB
FAST = {"timeout_s": 5.0, "stall_timeout_s": 2.0}
USER, PASSWORD = "meter", "pa:ss@w0rd"
QUOTED_PASSWORD = "pa%3Ass%40w0rd"


@dataclass
class Ftp:
    port: int
    home: Path
    commands: list[str] = field(default_factory=list)
    handler: Any = None

    def url(self, path: str, scheme: str = "ftp", password: str = QUOTED_PASSWORD) -> str:
        return f"{scheme}://{USER}:{password}@127.0.0.1:{self.port}/{path}"

    def rests(self) -> list[str]:
        return [c for c in self.commands if c.startswith("REST")]


class _CuttingDTP(DTPHandler):  # type: ignore[misc]
    """Closes the data connection after ``cut_after`` bytes of one transfer, or
    stops sending after ``hold_after`` bytes until that is set back to 0."""

    cut_after = 0
    hold_after = 0

    def writable(self) -> bool:
        hold = type(self).hold_after
        if hold and self.tot_bytes_sent >= hold:
            return False
        return bool(super().writable())

    def send(self, data: bytes) -> int:
        limit = type(self).cut_after or type(self).hold_after
        if type(self).cut_after and self.tot_bytes_sent >= limit:
            type(self).cut_after = 0
            self.handle_close()
            return 0
        sent: int = super().send(data[: limit - self.tot_bytes_sent] if limit else data)
        return sent


def _serve(tmp_path: Path, base: type[Any] = FTPHandler, **attrs: Any) -> Iterator[Ftp]:
    home = tmp_path / "ftp-home"
    home.mkdir()
    (home / "fw.bin").write_bytes(PAYLOAD)
    (home / "empty.bin").write_bytes(b"")
    (home / "incoming").mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(home), perm="elradfmwMT")
    ftp = Ftp(0, home)

    class Handler(base):  # type: ignore[misc,valid-type]
        def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
            ftp.commands.append(line if cmd != "PASS" else "PASS ***")
            super().pre_process_command(line, cmd, arg)

    Handler.authorizer = authorizer
    Handler.auth_failed_timeout = 0.01
    Handler.use_sendfile = False
    Handler.dtp_handler = type("Dtp", (_CuttingDTP, base.dtp_handler), {})
    for name, value in attrs.items():
        setattr(Handler, name, value)
    ftp.handler = Handler
    server = FTPServer(("127.0.0.1", 0), Handler)
    ftp.port = server.address[1]
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.01, blocking=False)
        server.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield ftp
    finally:
        stop.set()
        thread.join(5)


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(autouse=True)
def _quiet_server() -> None:
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[Ftp]:
    yield from _serve(tmp_path)


async def test_download(ftp: Ftp, tmp_path: Path) -> None:
    reports: list[tuple[int, int | None]] = []
    dest = await download(
        ftp.url("fw.bin"),
        tmp_path / "fw.bin",
        progress=lambda done, total: reports.append((done, total)),
        **FAST,
    )
    assert dest.read_bytes() == PAYLOAD
    assert _names(tmp_path) == ["ftp-home", "fw.bin"]
    assert reports[0] == (0, len(PAYLOAD)) and reports[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert "TYPE I" in ftp.commands and f"USER {USER}" in ftp.commands


async def test_a_cut_data_connection_is_resumed_with_rest(ftp: Ftp, tmp_path: Path) -> None:
    ftp.handler.dtp_handler.cut_after = 100_000
    dest = await download(ftp.url("fw.bin"), tmp_path / "fw.bin", retries=1, **FAST)
    assert dest.read_bytes() == PAYLOAD
    [rest] = ftp.rests()
    assert 0 < int(rest.split()[1]) <= 100_000


async def test_a_later_call_resumes_after_a_cancelled_one(ftp: Ftp, tmp_path: Path) -> None:
    dest = tmp_path / "fw.bin"
    halfway = asyncio.Event()

    def progress(done: int, total: int | None) -> None:
        if done >= len(PAYLOAD) // 3:
            halfway.set()

    ftp.handler.dtp_handler.hold_after = len(PAYLOAD) // 2
    task = asyncio.create_task(
        download(
            ftp.url("fw.bin"),
            dest,
            progress=progress,
            progress_every_bytes=1,
            progress_every_s=0,
            timeout_s=30,
            stall_timeout_s=30,
        )
    )
    await asyncio.wait_for(halfway.wait(), 5)
    task.cancel()  # the service stops mid-body, as at a shutdown
    with pytest.raises(asyncio.CancelledError):
        await task
    ftp.handler.dtp_handler.hold_after = 0
    kept = dest.with_name("fw.bin.part").stat().st_size
    assert len(PAYLOAD) // 3 <= kept <= len(PAYLOAD) // 2 and not dest.exists()
    await download(ftp.url("fw.bin"), dest, **FAST)
    assert ftp.rests() == [f"REST {kept}"]
    assert dest.read_bytes() == PAYLOAD


async def test_without_rest_the_download_starts_over(tmp_path: Path) -> None:
    commands = dict(FTPHandler.proto_cmds)
    del commands["REST"]
    for ftp in _serve(tmp_path, proto_cmds=commands):
        ftp.handler.dtp_handler.cut_after = 100_000
        dest = await download(ftp.url("fw.bin"), tmp_path / "fw.bin", retries=1, **FAST)
        assert dest.read_bytes() == PAYLOAD
        assert len(ftp.rests()) == 1  # tried, refused, started over
        assert sum(c.startswith("RETR") for c in ftp.commands) == 2


async def test_missing_file_is_550(ftp: Ftp, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as raised:
        await download(ftp.url("nope.bin"), tmp_path / "fw.bin", retries=1, **FAST)
    assert raised.value.status == 550
    assert sum(c.startswith("RETR") for c in ftp.commands) == 2
    assert not [name for name in _names(tmp_path) if name.startswith("fw.bin")]


async def test_wrong_password(ftp: Ftp, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationFailed) as raised:
        await download(ftp.url("fw.bin", password="guess-42"), tmp_path / "fw.bin", **FAST)
    assert raised.value.status == 530
    assert "guess-42" not in str(raised.value)
    mine = [r.getMessage() for r in caplog.records if not r.name.startswith("pyftpdlib")]
    assert mine and not any("guess-42" in m for m in mine)
    assert any(f"{USER}:***@" in m for m in mine)


async def test_empty_file(ftp: Ftp, tmp_path: Path) -> None:
    with pytest.raises(EmptyFile):
        await download(ftp.url("empty.bin"), tmp_path / "out.bin", **FAST)
    assert not [name for name in _names(tmp_path) if name.startswith("out.bin")]


async def test_stor_upload(ftp: Ftp, tmp_path: Path) -> None:
    source = tmp_path / "diagnostics.tar.gz"
    source.write_bytes(PAYLOAD)
    reports: list[tuple[int, int | None]] = []
    await upload(
        ftp.url("incoming/diagnostics.tar.gz"),
        source,
        progress=lambda done, total: reports.append((done, total)),
        **FAST,
    )
    assert (ftp.home / "incoming" / "diagnostics.tar.gz").read_bytes() == PAYLOAD
    assert reports[-1] == (len(PAYLOAD), len(PAYLOAD))


async def test_stor_into_a_missing_directory_fails(ftp: Ftp, tmp_path: Path) -> None:
    source = tmp_path / "diagnostics.tar.gz"
    source.write_bytes(PAYLOAD)
    with pytest.raises(TransferFailed):
        await upload(ftp.url("no/such/dir/d.tar.gz"), source, **FAST)


async def test_explicit_ftps(tmp_path: Path) -> None:
    certs = selfsigned.make(tmp_path)
    attrs = {
        "certfile": str(certs.cert),
        "keyfile": str(certs.key),
        "tls_control_required": True,
        "tls_data_required": True,
    }
    for ftp in _serve(tmp_path, TLS_FTPHandler, **attrs):
        context = certs.client_context()
        dest = await download(ftp.url("fw.bin", "ftps"), tmp_path / "fw.bin", ssl=context, **FAST)
        assert dest.read_bytes() == PAYLOAD
        await upload(ftp.url("incoming/up.bin", "ftps"), dest, ssl=context, **FAST)
        assert (ftp.home / "incoming" / "up.bin").read_bytes() == PAYLOAD
        assert "AUTH TLS" in ftp.commands and "PROT P" in ftp.commands
        with pytest.raises(TransferFailed, match="certificate verify failed"):
            await download(ftp.url("fw.bin", "ftps"), tmp_path / "again.bin", **FAST)
