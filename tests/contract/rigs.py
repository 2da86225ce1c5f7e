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

from hal.emulated.backend import EmulatedBackend
from hal.emulated.backend import build as build_emulated
from hal.interfaces import (
    BoardSettings,
    Fault,
    HalBackend,
    HalEvent,
    PilotState,
    PlantControl,
)
from hal.sim.backend import SimBackend, build
from hal.sim.world import ManualClock


class Rig(Protocol):
    @property
    def backend(self) -> HalBackend: ...

    @property
    def soc_step_percent(self) -> float:
        """Resolution of the SoC the backend's protocol carries (0: exact)."""

    @property
    def idle_faults(self) -> frozenset[Fault]:
        """Faults the backend reports on a connector with no session running.

        The simulator reports every injected fault; real drivers find some only
        when they act (a lock that does not move, a contactor that does not
        close) or leave them to the firmware (overcurrent from the meter).
        """

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

    soc_step_percent = 0.0
    idle_faults = frozenset(Fault)

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


class EmulatedRig(SimRig):
    """The real drivers against their emulators; the plant's clock is manual.

    Drivers and emulators keep real time (CAN periods, debounce, Modbus
    round trips), so ``settle`` waits for them: a few CAN status periods, the
    contactor and lock travel, the GPIO debounce and a BMS frame period.
    """

    soc_step_percent = 1.0  # CHAdeMO carries whole percent
    idle_faults = frozenset(
        {
            Fault.CONTACTOR_WELDED,  # the auxiliary contact closes with the coil released
            Fault.RCD_TRIP,
            Fault.READER_OFFLINE,
            Fault.DIODE_FAULT,
            Fault.EV_COMMUNICATION_LOST,
            Fault.OVER_TEMPERATURE,
        }
    )
    SETTLE_S = 0.3

    def __init__(self, backend: EmulatedBackend) -> None:
        self.emulated = backend
        self._task = None

    @property
    def backend(self) -> HalBackend:
        return self.emulated

    @property
    def plant(self) -> PlantControl:
        return self.emulated.plant

    async def start(self) -> None:
        self._task = asyncio.create_task(self.emulated.run(), name="emulated-run")
        await self._ready()

    async def _ready(self) -> None:
        """Wait until every driver has heard its device once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        hardware = self.emulated.connectors.values()
        while not all(_evse_heard(hw.evse) for hw in hardware):
            assert loop.time() < deadline, "the emulated EVSE controllers never reported"
            await asyncio.sleep(0.02)
        await self.settle()

    async def advance(self, dt_s: float) -> None:
        await self.settle()  # the plant first sees what was just commanded
        self.emulated.world.advance(dt_s)
        await self.settle()

    async def settle(self) -> None:
        """At least ``SETTLE_S`` (debounce, contact and lock travel, a BMS frame period),
        and until every EVSE driver took two fresh status frames, however slowly a loaded
        machine delivers them (2 s at most: a controller may be silent on purpose)."""
        loop = asyncio.get_running_loop()
        evses = [hw.evse for hw in self.emulated.connectors.values()]
        seen = [_frames(e) for e in evses]
        await asyncio.sleep(self.SETTLE_S)
        deadline = loop.time() + 2.0  # a controller may be silent on purpose (lost link)
        while any(_frames(e) - n < 2 for e, n in zip(evses, seen, strict=True)):
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.02)


def _frames(evse: object) -> int:
    frames = getattr(evse, "status_frames", 0)
    assert isinstance(frames, int)
    return frames


def _evse_heard(evse: object) -> bool:
    return getattr(evse, "contactor_feedback", None) is not None


def _simulated(options: Mapping[str, object], connectors: int, board: BoardSettings) -> Rig:
    return SimRig(build(options, connectors, board, clock=ManualClock(1000.0)))


def _emulated(options: Mapping[str, object], connectors: int, board: BoardSettings) -> Rig:
    return EmulatedRig(build_emulated(options, connectors, board, clock=ManualClock(1000.0)))


RIG_BUILDERS: dict[str, RigBuilder] = {
    "simulated": _simulated,
    "emulated": _emulated,
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


async def collect(rig: Rig, count: int, timeout_s: float = 3.0) -> list[HalEvent]:
    """Events until ``count`` have come or ``timeout_s`` passed, and any that follow at once.

    For reactions that take a driver a while (a reader reopening with backoff,
    a CAN status that stops arriving); the simulator's are there already.
    """
    events = await drain(rig)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(events) < count and loop.time() < deadline:
        try:
            async with asyncio.timeout(deadline - loop.time()):
                events.append(await rig.backend.events.get())
        except TimeoutError:
            break
    return events + await drain(rig)


async def start_charging(rig: Rig, connector_id: int = 1, offer_a: float = 16.0) -> None:
    """Plug a vehicle that requests energy, offer ``offer_a`` and close the relay."""
    rig.plant.set_ev(connector_id, cp_state=PilotState.C)
    hw = rig.backend.connectors[connector_id]
    await hw.evse.offer_current(offer_a)
    await hw.relay.close()
    await rig.settle()
