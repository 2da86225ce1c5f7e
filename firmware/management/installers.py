"""Pluggable installers of a downloaded firmware file (``firmware_update.installer``).

- ``wheel``: the file is a Python wheel of the firmware; it is installed into
  the daemon's own environment (``<python> -m pip install --no-deps --no-index
  --force-reinstall <file>``), and the restart that follows runs it.
- ``command``: a shell command (an A/B image updater such as ``rauc install
  {file}`` or ``swupdate -i {file}``); ``{file}`` is replaced by the quoted
  path, or the path is appended. Exit code 0 means installed.

The installer's output goes to the log, one line each (at most
``MAX_LOGGED_LINES``). A run longer than its timeout is killed and failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from firmware.config import FirmwareUpdateSettings
from firmware.errors import FirmwareError

log = logging.getLogger("firmware.management.install")

MAX_LOGGED_LINES = 200


class InstallFailed(FirmwareError):
    """The installer did not install the file; the message says why."""


class Installer(Protocol):
    @property
    def name(self) -> str: ...

    async def install(self, file: Path) -> None:
        """Install ``file``; raises InstallFailed."""


@dataclass(frozen=True, slots=True)
class WheelInstaller:
    timeout_s: float
    python: str = sys.executable
    name: str = "wheel"

    async def install(self, file: Path) -> None:
        if file.suffix != ".whl":
            raise InstallFailed(f"{file.name} is not a wheel (*.whl)")
        argv = [self.python, "-m", "pip", "install", "--no-deps", "--no-index"]
        argv += ["--force-reinstall", "--disable-pip-version-check", str(file)]
        await _run(argv, None, self.timeout_s, "pip install")


@dataclass(frozen=True, slots=True)
class CommandInstaller:
    command: str
    timeout_s: float
    name: str = "command"

    def command_for(self, file: Path) -> str:
        quoted = shlex.quote(str(file))
        if "{file}" in self.command:
            return self.command.replace("{file}", quoted)
        return f"{self.command} {quoted}"

    async def install(self, file: Path) -> None:
        await _run(None, self.command_for(file), self.timeout_s, "install command")


def build_installer(settings: FirmwareUpdateSettings) -> Installer:
    if settings.installer == "command":
        assert settings.command is not None  # the config loader checked it
        return CommandInstaller(settings.command, settings.install_timeout_s)
    return WheelInstaller(settings.install_timeout_s)


async def _run(argv: list[str] | None, shell: str | None, timeout_s: float, what: str) -> None:
    try:
        if argv is not None:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        else:
            assert shell is not None
            proc = await asyncio.create_subprocess_shell(
                shell,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
    except OSError as err:
        raise InstallFailed(f"cannot start {what}: {err.strerror or err}") from err
    try:
        async with asyncio.timeout(timeout_s):
            await _log_output(proc, what)
            code = await proc.wait()
    except TimeoutError:
        raise InstallFailed(f"{what} did not finish within {timeout_s:g} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    if code != 0:
        raise InstallFailed(f"{what} exited with code {code}")


async def _log_output(proc: asyncio.subprocess.Process, what: str) -> None:
    assert proc.stdout is not None
    logged = 0
    async for raw in proc.stdout:
        if logged < MAX_LOGGED_LINES:
            log.info("%s: %s", what, raw.decode("utf-8", "replace").rstrip())
            logged += 1
        elif logged == MAX_LOGGED_LINES:
            log.info("%s: (further output not logged)", what)
            logged += 1
