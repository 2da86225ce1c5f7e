"""The service manager's side of sd_notify, for tests: a bound AF_UNIX datagram socket.

Like systemd, it turns on SO_PASSCRED, so every message comes with the PID the
kernel vouches for (what ``NotifyAccess=main`` checks). A thread receives, so
datagrams are taken (and timed) even while the test's event loop is blocked.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

_UCRED = struct.Struct("3i")  # pid, uid, gid


@dataclass(frozen=True)
class Notification:
    at: float  # time.monotonic() on reception
    pid: int | None
    fields: dict[str, str]
    raw: bytes

    def get(self, key: str) -> str | None:
        return self.fields.get(key)


class NotifyListener:
    """Receives notifications at ``address`` (a path, or ``@name`` for the abstract namespace)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.messages: list[Notification] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self._sock.settimeout(0.05)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-listener", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data, ancdata, _flags, _addr = self._sock.recvmsg(
                    65536, socket.CMSG_SPACE(_UCRED.size)
                )
            except TimeoutError:
                continue
            pid = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _UCRED.unpack(payload[: _UCRED.size])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._lock:
                self.messages.append(Notification(time.monotonic(), pid, fields, data))

    def snapshot(self) -> list[Notification]:
        with self._lock:
            return list(self.messages)

    def having(self, key: str, value: str | None = None) -> list[Notification]:
        return [
            m
            for m in self.snapshot()
            if key in m.fields and (value is None or m.fields[key] == value)
        ]

    def statuses(self) -> list[str]:
        return [m.fields["STATUS"] for m in self.having("STATUS")]

    async def wait_for(
        self, predicate: Callable[[list[Notification]], bool], what: str, timeout: float = 15
    ) -> list[Notification]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.snapshot()
            if predicate(seen):
                return seen
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {what} within {timeout} s; received {self.snapshot()}")

    async def wait_message(
        self, key: str, value: str | None = None, *, count: int = 1, timeout: float = 15
    ) -> Notification:
        """Wait until ``count`` messages with ``key`` (= ``value``) arrived; return the last."""

        def enough(_seen: list[Notification]) -> bool:
            return len(self.having(key, value)) >= count

        await self.wait_for(enough, f"{count} x {key}={value or '*'}", timeout)
        return self.having(key, value)[count - 1]
