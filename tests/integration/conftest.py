from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hil.csms import BenchCsms
from tests.integration.harness import HAL_BACKEND, Daemon


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``emulated`` run a second time on the emulated backend.

    Their daemon drives the real drivers (GPIO, Modbus, CAN, serial readers) against
    the emulated devices. ``HAL_BACKEND=emulated pytest -m hardware tests/integration``
    runs every test that drives the plant that way instead.
    """
    if (
        "hal_backend" in metafunc.fixturenames
        and HAL_BACKEND == "simulated"
        and metafunc.definition.get_closest_marker("emulated") is not None
    ):
        metafunc.parametrize("hal_backend", ["simulated", "emulated"])


@pytest.fixture
def hal_backend() -> str:
    """The HAL backend of the test's daemons (see pytest_generate_tests)."""
    return HAL_BACKEND


@pytest.fixture
async def csms() -> AsyncIterator[BenchCsms]:
    async with BenchCsms(heartbeat_interval=300) as server:
        yield server


@pytest.fixture
async def make_daemon(
    csms: BenchCsms, tmp_path: Path, hal_backend: str
) -> AsyncIterator[Callable[..., Awaitable[Daemon]]]:
    daemons: list[Daemon] = []

    async def factory(
        start: bool = True,
        wait_boot: bool = True,
        env: dict[str, str] | None = None,
        **overrides: Any,
    ) -> Daemon:
        workdir = tmp_path / f"cp{len(daemons)}"
        workdir.mkdir()
        daemon = Daemon(csms, workdir, overrides, env or {}, backend=hal_backend)
        daemons.append(daemon)
        if start:
            await daemon.start(wait_boot=wait_boot)
        return daemon

    yield factory
    for daemon in daemons:
        if daemon.proc is not None and daemon.proc.returncode is None:
            await daemon.kill()
    for daemon in daemons:
        # Every frame the station sent must satisfy the OCA schemas.
        assert daemon.log.violations == [], daemon.log.violations


@pytest.fixture
async def daemon(make_daemon: Callable[..., Awaitable[Daemon]]) -> Daemon:
    return await make_daemon()
