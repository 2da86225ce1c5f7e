"""Run an installer's process: its output to the log, a time limit, a clear failure.

The output goes to the log one line each (at most ``MAX_LOGGED_LINES``). A run
longer than its timeout is killed and failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from firmware.errors import FirmwareError

log = logging.getLogger("firmware.management.install")

MAX_LOGGED_LINES = 200


class InstallFailed(FirmwareError):
    """The installer did not install the file; the message says why."""


async def run_logged(
    argv: list[str] | None,
    shell: str | None,
    timeout_s: float,
    what: str,
    *,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run ``argv`` (or the ``shell`` command); raises InstallFailed unless it exits 0."""
    try:
        if argv is not None:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
        else:
            assert shell is not None
            proc = await asyncio.create_subprocess_shell(
                shell,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
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
