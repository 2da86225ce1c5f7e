"""Rigs: one HAL backend plus the means to drive its far side, alike for every backend.

A rig owns a backend, runs its ``run()`` in the background for the rig's life
and lets a test move the plant's time. The contract tests speak only to the
``Rig`` surface and to ``hal.interfaces``, so adding a backend to the suite
means writing one builder and adding it to ``RIG_BUILDERS``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from hal.interfaces import BoardSettings, HalBackend, HalEvent, PilotState, PlantControl
from hal.sim.backend import SimBackend, build
from hal.sim.world import ManualClock


class Rig(Protocol):
    @property
    def backend(self) -> HalBackend: ...

    @property
    def plant(self) -> PlantControl: ...

    async def start(self) -> None:
        """Start the backend's ``run()``."""

    async def advance(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds of plant time pass (deterministically where possible)."""

    async def settle(self) -> None:
        """Wait until the backend has seen the plant's reaction to the last action."""

    async def close(self) -> None:
        """Cancel ``run()`` and check that it let the cancellation through."""


RigBuilder = Callable[[Mapping[str, object], int, BoardSettings], Rig]
OpenRig = Callable[..., AbstractAsyncContextManager[Rig]]
MakeRig = Callable[..., Awaitable[Rig]]


class SimRig:
    """The simulated backend on a manual clock: time moves only through ``advance``."""

    def __init__(self, backend: SimBackend) -> None:
        self.sim = backend
        self._task: asyncio.Task[None] | None = None

    @property
    def backend(self) -> HalBackend:
        return self.sim

    @property
    def plant(self) -> PlantControl:
        return self.sim.plant

    async def start(self) -> None:
        self._task = asyncio.create_task(self.sim.run(), name="sim-run")
        await asyncio.sleep(0)

    async def advance(self, dt_s: float) -> None:
        self.sim.world.advance(dt_s)
        await asyncio.sleep(0)

    async def settle(self) -> None:
        await asyncio.sleep(0)

    async def close(self) -> None:
        task = self._task
        if task is None:
            return
        if task.done():
            task.result()
            raise AssertionError("run() returned before it was cancelled")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled(), "run() swallowed its cancellation"


def _simulated(options: Mapping[str, object], connectors: int, board: BoardSettings) -> Rig:
    return SimRig(build(options, connectors, board, clock=ManualClock(1000.0)))


RIG_BUILDERS: dict[str, RigBuilder] = {
    "simulated": _simulated,
}


@contextlib.asynccontextmanager
async def open_rig(
    backend_name: str,
    connectors: int = 1,
    board: BoardSettings | None = None,
    **options: object,
) -> AsyncIterator[Rig]:
    rig = RIG_BUILDERS[backend_name](options, connectors, board or BoardSettings())
    await rig.start()
    try:
        yield rig
    finally:
        await rig.close()


# ---------------------------------------------------------------- helpers for tests


async def drain(rig: Rig) -> list[HalEvent]:
    """Every event the backend has queued so far, oldest first."""
    await rig.settle()
    events: list[HalEvent] = []
    while not rig.backend.events.empty():
        events.append(rig.backend.events.get_nowait())
    return events


async def start_charging(rig: Rig, connector_id: int = 1, offer_a: float = 16.0) -> None:
    """Plug a vehicle that requests energy, offer ``offer_a`` and close the relay."""
    rig.plant.set_ev(connector_id, cp_state=PilotState.C)
    hw = rig.backend.connectors[connector_id]
    await hw.evse.offer_current(offer_a)
    await hw.relay.close()
    await rig.settle()
