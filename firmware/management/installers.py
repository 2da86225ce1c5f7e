"""Pluggable installers of a downloaded firmware file (``firmware_update.installer``).

- ``release`` (default): the file is a wheel of this firmware, or a tar archive
  of wheels (the firmware's and any dependency it needs that the running one
  lacks); it becomes a new environment under ``<state_dir>/releases``, run
  from the restart on and kept once it has come up, else rolled back
  (firmware/management/release_installer.py, releases.py). Works on a board
  installed by ``scripts/install.sh``: ``/opt`` stays read-only.
- ``wheel``: the file is a wheel of the firmware; it is installed into the
  daemon's own environment (``<python> -m pip install --no-deps --no-index
  --force-reinstall <file>``), and the restart that follows runs it. Needs a
  writable environment with pip (a development checkout).
- ``command``: a shell command (an A/B image updater such as ``rauc install
  {file}`` or ``swupdate -i {file}``); ``{file}`` is replaced by the quoted
  path, or the path is appended. Exit code 0 means installed.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from firmware.config import FirmwareUpdateSettings
from firmware.management.commands import InstallFailed, run_logged
from firmware.management.release_installer import ReleaseInstaller
from firmware.management.releases import Releases

__all__ = ["CommandInstaller", "InstallFailed", "Installer", "WheelInstaller", "build_installer"]


class Installer(Protocol):
    @property
    def name(self) -> str: ...

    async def install(self, file: Path) -> None:
        """Install ``file``; raises InstallFailed."""

    async def activated(self) -> bool:
        """After the restart that follows an install: whether the new firmware runs."""


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
        await run_logged(argv, None, self.timeout_s, "pip install")

    async def activated(self) -> bool:
        return True


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
        await run_logged(None, self.command_for(file), self.timeout_s, "install command")

    async def activated(self) -> bool:
        return True


def build_installer(
    settings: FirmwareUpdateSettings, state_dir: Path, ready: asyncio.Event
) -> Installer:
    if settings.installer == "command":
        assert settings.command is not None  # the config loader checked it
        return CommandInstaller(settings.command, settings.install_timeout_s)
    if settings.installer == "wheel":
        return WheelInstaller(settings.install_timeout_s)
    return ReleaseInstaller(Releases(state_dir), ready, settings.install_timeout_s)
