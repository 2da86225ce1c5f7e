"""The power path: a contactor that drops out on its own is held open for a while."""

from __future__ import annotations

from firmware.connector.power import DROP_OUT_HOLD_S, PowerPath
from hal.interfaces import BoardSettings, PilotState
from hal.sim.backend import build


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_dropped_out_contactor_is_held_open_before_it_closes_again() -> None:
    backend = build({}, 1, BoardSettings())
    backend.world.set_cp_state(1, PilotState.C)
    hw = backend.connectors[1]
    clock = Clock()
    power = PowerPath(hw, clock)
    assert await power.drive(16.0, True) == set()
    assert hw.relay.commanded_closed
    backend.world.release_coil(1, "supply cut")  # e.g. an RCD, reported a moment later
    assert not hw.relay.commanded_closed
    clock.now += DROP_OUT_HOLD_S / 2
    assert await power.drive(16.0, True) == set()
    assert not hw.relay.commanded_closed  # held open
    clock.now += DROP_OUT_HOLD_S
    assert await power.drive(16.0, True) == set()
    assert hw.relay.commanded_closed


async def test_opening_it_ourselves_is_no_drop_out() -> None:
    backend = build({}, 1, BoardSettings())
    backend.world.set_cp_state(1, PilotState.C)
    hw = backend.connectors[1]
    power = PowerPath(hw, Clock())
    await power.drive(16.0, True)
    await power.drive(0.0, False)
    assert not hw.relay.commanded_closed
    await power.drive(16.0, True)  # at once: nothing dropped out
    assert hw.relay.commanded_closed
