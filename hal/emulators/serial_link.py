"""An emulated serial link: a pseudo-terminal behind a stable path.

``SerialLink(directory, name)`` opens a pty pair and points the symlink
``directory/name`` at the slave tty; a driver opens that path like a real
serial port. The emulated device uses the master side: ``read()`` returns
what the driver wrote, ``write()`` sends bytes to the driver.

``unplug()`` closes the pty and removes the link (the driver's reads see end
of file, its writes ``EIO``, a reopen finds no port); ``replug()`` opens a
new pty behind the same path. ``generation`` counts replugs, so a device can
tell that it was power-cycled.

The link keeps its own descriptor of the slave open. Without it, a master
with no slave open reads ``EIO`` at once, so the device would spin while the
driver is between two opens. Bytes written while the driver has the port
closed wait in the tty's input queue (pyserial flushes it on open); when the
queue is full, ``write()`` drops what does not fit, like a UART nobody reads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tty
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

READ_CHUNK = 4096


class LinkClosed(EOFError):
    """The link was closed for good."""


class SerialLink:
    """A pty pair behind ``path`` (see the module docstring)."""

    def __init__(self, directory: Path | str, name: str) -> None:
        if not name or "/" in name:
            raise ValueError(f"link name must be a plain file name, got {name!r}")
        self._path = Path(directory) / name
        self._master = -1
        self._slave = -1
        self._generation = 0
        self._closed = False
        self._rx = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._waiter_loop: asyncio.AbstractEventLoop | None = None
        self._registered = -1  # master fd registered with add_reader, -1 if none
        self._io_error = False
        self._plugged = asyncio.Event()
        self._open_pty()

    # ------------------------------------------------------------ state

    @property
    def path(self) -> Path:
        """The stable path a driver opens (a symlink to the current slave tty)."""
        return self._path

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def generation(self) -> int:
        """0 for the first pty, incremented on each ``replug()``."""
        return self._generation

    @property
    def tty_name(self) -> str | None:
        """The slave tty the link points at now (e.g. ``/dev/pts/3``), None when unplugged."""
        return os.ttyname(self._slave) if self._slave >= 0 else None

    def _open_pty(self) -> None:
        if self._path.exists() and not self._path.is_symlink():
            raise FileExistsError(f"{self._path} exists and is not a symlink")
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            os.set_blocking(master, False)
            tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            os.symlink(os.ttyname(slave), tmp)
            os.replace(tmp, self._path)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        self._plugged.set()
        log.debug("%s -> %s", self._path, os.ttyname(slave))

    def unplug(self) -> None:
        """Pull the cable: remove the link and close the pty."""
        if self._master < 0:
            return
        self._path.unlink(missing_ok=True)
        self._unregister()
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = -1
        self._rx.clear()
        self._plugged.clear()
        self._wake()
        log.debug("%s unplugged", self._path)

    def replug(self) -> None:
        """Plug back in: a new pty behind the same path."""
        if self._closed:
            raise LinkClosed(f"{self._path}: link closed")
        if self._master >= 0:
            return
        self._generation += 1
        self._open_pty()
        log.debug("%s replugged", self._path)

    def close(self) -> None:
        """Unplug for good (idempotent); a waiting ``read()`` raises ``LinkClosed``."""
        if self._closed:
            return
        self.unplug()
        self._closed = True
        self._plugged.set()
        self._wake()

    def __enter__(self) -> SerialLink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ I/O

    async def read(self) -> bytes:
        """What the driver wrote: at least one byte. Waits while unplugged.

        Raises ``LinkClosed`` once the link is closed. One reader at a time.
        """
        loop = asyncio.get_running_loop()
        while True:
            if self._rx:
                data = bytes(self._rx)
                self._rx.clear()
                return data
            if self._closed:
                raise LinkClosed(f"{self._path}: link closed")
            if self._master < 0:
                await self._plugged.wait()
                continue
            if self._io_error:
                self._io_error = False
                await asyncio.sleep(0.05)
                continue
            if self._waiter is not None:
                raise RuntimeError("SerialLink.read() is already waiting in another task")
            waiter = loop.create_future()
            self._waiter, self._waiter_loop = waiter, loop
            self._registered = self._master
            loop.add_reader(self._master, self._on_readable)
            try:
                await waiter
            finally:
                self._unregister()
                self._waiter = self._waiter_loop = None

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:  # EIO: no slave open (should not happen, we hold one)
            log.debug("%s: master read: %s", self._path, err)
            self._io_error = True
            self._unregister()
            self._wake()
            return
        self._rx += data
        self._wake()

    def _unregister(self) -> None:
        if self._registered >= 0 and self._waiter_loop is not None:
            self._waiter_loop.remove_reader(self._registered)
        self._registered = -1

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def write(self, data: bytes) -> int:
        """Send ``data`` to the driver; returns how many bytes went out.

        Nothing goes out while unplugged; bytes that do not fit in the tty's
        queue are dropped.
        """
        if self._master < 0:
            return 0
        view = memoryview(data)
        sent = 0
        while sent < len(view):
            try:
                sent += os.write(self._master, view[sent:])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                log.debug("%s: master write: %s", self._path, err)
                break
        if sent < len(view):
            log.debug("%s: %d byte(s) dropped, nobody reads", self._path, len(view) - sent)
        return sent

    async def run(self) -> None:
        """Consume (and drop) what the driver writes until cancelled; closes the link on exit.

        For devices that only talk; a device that listens runs its own loop.
        """
        try:
            while True:
                data = await self.read()
                log.debug("%s: %d byte(s) from the driver ignored", self._path, len(data))
        except LinkClosed:
            return
        finally:
            self.close()
