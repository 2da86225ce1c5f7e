"""A null-modem cable made of two pseudo-terminals and an asyncio relay.

``os.openpty()`` gives a master and a slave, and only the slave has a path,
so one pty cannot connect two programs that both open a serial port by name.
``PtyPair`` opens two ptys and relays bytes between their masters; the two
slaves are the cable's ends, reachable through stable symlinks in a
directory of your choice::

    async with PtyPair(tmp_dir, "meter1") as cable:
        driver_port = cable.client_path     # <tmp_dir>/meter1-client -> /dev/pts/7
        device_port = cable.server_path     # <tmp_dir>/meter1-server -> /dev/pts/8

The ptys and symlinks exist from construction, so both ends can be opened in
any order; bytes flow while the relay runs (``open()`` .. ``close()``,
``async with``, or ``run()`` until cancelled). ``close()`` removes everything;
``open()`` after it makes new ptys behind the same paths.

Both slaves are in raw mode (no echo, no line editing). The relay holds the
slaves open itself, so either end may be opened and closed at will.

Fault knobs for tests of the client (the side on ``client_path``):

- ``cut(True)`` drops every byte in both directions (a cut cable: the client
  times out) until ``cut(False)``;
- ``corrupt_next(n)`` flips the first byte of each of the next ``n`` frames
  going to the client, so their checksum fails. A frame starts when data
  turns around (the client spoke since the last bytes to it) or after
  ``frame_gap_s`` of silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from pathlib import Path
from types import TracebackType

_READ_SIZE = 4096
_MAX_PENDING = 65536


class PtyPair:
    """Two ptys joined by a relay; ``client_path`` and ``server_path`` are the ends."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        name: str = "pty",
        *,
        frame_gap_s: float = 0.002,
    ) -> None:
        if not name or "/" in name:
            raise ValueError(f"name must be a plain file name, got {name!r}")
        base = Path(directory)
        self._client_link = base / f"{name}-client"
        self._server_link = base / f"{name}-server"
        self._frame_gap_s = frame_gap_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fds: list[int] = []
        self._client_master = -1
        self._server_master = -1
        self._pending: dict[int, bytearray] = {}
        self._cut = False
        self._corrupt = 0
        self._turned = True
        self._last_to_client_s = -1.0
        self.frames_to_client = 0
        self.frames_corrupted = 0
        self.bytes_dropped = 0
        self._create()

    # ------------------------------------------------------------ paths and knobs

    @property
    def client_path(self) -> str:
        """Path the client (the driver under test) opens."""
        return str(self._client_link)

    @property
    def server_path(self) -> str:
        """Path the server (the emulated device) opens."""
        return str(self._server_link)

    @property
    def relaying(self) -> bool:
        return self._loop is not None

    def cut(self, cut: bool = True) -> None:
        """Stop (True) or resume (False) relaying; bytes sent while cut are lost."""
        self._cut = cut

    def corrupt_next(self, n: int = 1) -> None:
        """Flip a byte in each of the next ``n`` frames going to the client."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self._corrupt = n

    # ------------------------------------------------------------ life cycle

    def open(self) -> None:
        """Start relaying on the running loop (after ``close()``: with new ptys)."""
        if self._loop is not None:
            raise RuntimeError("PtyPair is already relaying")
        loop = asyncio.get_running_loop()
        if not self._fds:
            self._create()
        client, server = self._client_master, self._server_master
        loop.add_reader(client, self._relay, client, server)
        loop.add_reader(server, self._relay, server, client)
        self._loop = loop

    def close(self) -> None:
        """Stop relaying, close every descriptor and remove the symlinks."""
        loop, self._loop = self._loop, None
        for fd in (self._client_master, self._server_master):
            if loop is not None and fd >= 0:
                loop.remove_reader(fd)
                loop.remove_writer(fd)
        self._release()

    async def run(self) -> None:
        """Open, relay until cancelled, then close."""
        self.open()
        try:
            await asyncio.Future()
        finally:
            self.close()

    async def __aenter__(self) -> PtyPair:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _create(self) -> None:
        try:
            client_master, client_slave = self._openpty()
            server_master, server_slave = self._openpty()
            self._link(self._client_link, client_slave)
            self._link(self._server_link, server_slave)
        except BaseException:
            self._release()
            raise
        self._client_master, self._server_master = client_master, server_master
        self._pending = {client_master: bytearray(), server_master: bytearray()}

    def _openpty(self) -> tuple[int, int]:
        master, slave = os.openpty()
        self._fds += [master, slave]
        tty.setraw(slave)
        os.set_blocking(master, False)
        return master, slave

    def _link(self, link: Path, slave: int) -> None:
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.ttyname(slave))

    def _release(self) -> None:
        for link in (self._client_link, self._server_link):
            if link.is_symlink():
                link.unlink()
        fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._client_master = self._server_master = -1
        self._pending = {}

    # ------------------------------------------------------------ relay

    def _relay(self, source: int, target: int) -> None:
        try:
            data = os.read(source, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: no slave open; cannot happen while the relay holds them
            return
        if not data:
            return
        if self._cut:
            self.bytes_dropped += len(data)
            return
        if target == self._client_master:
            data = self._to_client(data)
        else:
            self._turned = True
        self._write(target, data)

    def _to_client(self, data: bytes) -> bytes:
        assert self._loop is not None
        now = self._loop.time()
        new_frame = self._turned or now - self._last_to_client_s > self._frame_gap_s
        self._turned = False
        self._last_to_client_s = now
        if not new_frame:
            return data
        self.frames_to_client += 1
        if self._corrupt <= 0:
            return data
        self._corrupt -= 1
        self.frames_corrupted += 1
        return bytes([data[0] ^ 0xFF]) + data[1:]

    def _write(self, fd: int, data: bytes) -> None:
        pending = self._pending[fd]
        if pending:
            self._queue(fd, pending, data)
            return
        try:
            written = os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError:
            self.bytes_dropped += len(data)
            return
        if written < len(data):
            self._queue(fd, pending, data[written:])
            assert self._loop is not None
            self._loop.add_writer(fd, self._flush, fd)

    def _queue(self, fd: int, pending: bytearray, data: bytes) -> None:
        room = _MAX_PENDING - len(pending)
        pending += data[:room]
        self.bytes_dropped += max(0, len(data) - room)

    def _flush(self, fd: int) -> None:
        pending = self._pending.get(fd)
        if pending is None:
            return
        try:
            written = os.write(fd, pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.bytes_dropped += len(pending)
            written = len(pending)
        del pending[:written]
        if not pending and self._loop is not None:
            self._loop.remove_writer(fd)
