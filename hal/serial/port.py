"""A small asyncio serial port on pyserial that never blocks the event loop.

pyserial opens and configures the device (``O_NONBLOCK``, 8N1, raw mode, no
flow control); reads and writes then go straight to the file descriptor,
driven by ``loop.add_reader`` / ``loop.add_writer``. A port that is missing,
or that disappears while open (EOF, ``EIO``, any other ``OSError``), raises
``SerialPortError``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from types import TracebackType

import serial

from hal.errors import HalConfigError, HalError

log = logging.getLogger(__name__)

READ_CHUNK = 4096


class SerialPortError(HalError):
    """The serial port is missing, could not be opened, or went away."""


class SerialPort:
    """An open serial port. Create with ``await SerialPort.open(path, baudrate)``.

    Only one task may ``read`` at a time, and one may ``write`` at a time.
    Bytes are read from the device only while a ``read`` is waiting, so the
    kernel buffer (not this object) holds what nobody has asked for yet.
    A ``read`` that is cancelled loses nothing: bytes already taken from the
    device are returned by the next ``read``.
    """

    def __init__(self, device: serial.Serial, path: str, baudrate: int) -> None:
        self._device = device
        self._fd = device.fileno()
        self._path = path
        self._baudrate = baudrate
        self._loop = asyncio.get_running_loop()
        self._rx = bytearray()
        self._error: SerialPortError | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_waiter: asyncio.Future[None] | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: str, baudrate: int) -> SerialPort:
        """Open ``path`` at ``baudrate``, 8N1, without flow control.

        Raises ``SerialPortError`` when the port cannot be opened (missing,
        busy, permission) and ``HalConfigError`` for a bad setting such as
        an unsupported baud rate.
        """
        try:
            device = serial.Serial(
                port=path,
                baudrate=baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=0,
                write_timeout=0,
                xonxoff=False,
                rtscts=False,
                dsrdtr=False,
                exclusive=True,
            )
        except ValueError as err:
            raise HalConfigError(f"serial port {path}: {err}") from err
        except (serial.SerialException, OSError) as err:
            raise SerialPortError(f"serial port {path}: cannot open: {err}") from err
        try:
            port = cls(device, path, baudrate)
        except BaseException:
            device.close()
            raise
        log.debug("opened %s at %d baud", path, baudrate)
        return port

    @property
    def path(self) -> str:
        return self._path

    @property
    def baudrate(self) -> int:
        return self._baudrate

    @property
    def is_open(self) -> bool:
        return not self._closed

    def fileno(self) -> int:
        return self._fd

    async def read(self) -> bytes:
        """Wait for and return at least one byte (everything available, up to a chunk).

        Raises ``SerialPortError`` when the port went away or was closed.
        """
        while True:
            if self._rx:
                data = bytes(self._rx)
                self._rx.clear()
                return data
            if self._error is not None:
                raise self._error
            if self._closed:
                raise SerialPortError(f"serial port {self._path}: closed")
            if self._read_waiter is not None:
                raise RuntimeError("SerialPort.read() is already waiting in another task")
            waiter = self._loop.create_future()
            self._read_waiter = waiter
            self._loop.add_reader(self._fd, self._on_readable)
            try:
                await waiter
            finally:
                self._read_waiter = None
                if not self._closed:
                    self._loop.remove_reader(self._fd)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            self._fail(SerialPortError(f"serial port {self._path}: read failed: {err}"))
            return
        if not data:
            self._fail(SerialPortError(f"serial port {self._path}: end of file (device gone)"))
            return
        self._rx += data
        self._wake_reader()

    def _fail(self, error: SerialPortError) -> None:
        if self._error is None:
            self._error = error
        if not self._closed:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
        self._wake_reader()
        self._wake_writer()

    def _wake_reader(self) -> None:
        if self._read_waiter is not None and not self._read_waiter.done():
            self._read_waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_result(None)

    async def write(self, data: bytes) -> None:
        """Write all of ``data``, waiting while the device's buffer is full.

        Raises ``SerialPortError`` when the port went away or was closed.
        """
        view = memoryview(data)
        while view:
            if self._error is not None:
                raise self._error
            if self._closed:
                raise SerialPortError(f"serial port {self._path}: closed")
            try:
                written = os.write(self._fd, view)
            except (BlockingIOError, InterruptedError):
                await self._wait_writable()
                continue
            except OSError as err:
                error = SerialPortError(f"serial port {self._path}: write failed: {err}")
                self._fail(error)
                raise error from err
            view = view[written:]

    async def _wait_writable(self) -> None:
        if self._write_waiter is not None:
            raise RuntimeError("SerialPort.write() is already waiting in another task")
        waiter = self._loop.create_future()
        self._write_waiter = waiter
        self._loop.add_writer(self._fd, self._wake_writer)
        try:
            await waiter
        finally:
            self._write_waiter = None
            if not self._closed:
                self._loop.remove_writer(self._fd)

    def close(self) -> None:
        """Close the port (idempotent). Waiting reads and writes raise ``SerialPortError``."""
        if self._closed:
            return
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._closed = True
        try:
            self._device.close()
        except (serial.SerialException, OSError) as err:
            log.debug("closing %s: %s", self._path, err)
        self._wake_reader()
        self._wake_writer()
        log.debug("closed %s", self._path)

    async def __aenter__(self) -> SerialPort:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
