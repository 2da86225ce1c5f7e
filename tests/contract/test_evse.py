"""EVSE controller contract: offered current validation, pilot state and its events."""

from __future__ import annotations

import math

import pytest

from hal.interfaces import EvseController, PilotChanged, PilotState
from tests.contract.rigs import Rig, drain


def evse_of(rig: Rig, connector_id: int = 1) -> EvseController:
    return rig.backend.connectors[connector_id].evse


async def test_starts_without_vehicle_and_without_offer(rig: Rig) -> None:
    evse = evse_of(rig)
    assert isinstance(evse, EvseController)
    assert evse.pilot is PilotState.A
    assert evse.offered_current_a == 0.0
    rating = evse.cable_rating_a
    assert rating is None or 6.0 <= rating <= 80.0


@pytest.mark.parametrize("current_a", [6.0, 6, 13.5, 16.0, 32.0, 80.0])
async def test_valid_offer_is_reflected(rig: Rig, current_a: float) -> None:
    evse = evse_of(rig)
    await evse.offer_current(current_a)
    assert evse.offered_current_a == pytest.approx(current_a)
    assert evse_of(rig, 2).offered_current_a == 0.0


async def test_zero_stops_offering(rig: Rig) -> None:
    evse = evse_of(rig)
    await evse.offer_current(16.0)
    await evse.offer_current(0.0)
    assert evse.offered_current_a == 0.0


@pytest.mark.parametrize("current_a", [0.1, 3.0, 5.99, -1.0, 80.1, 100.0, math.nan, math.inf])
async def test_invalid_offer_raises_and_changes_nothing(rig: Rig, current_a: float) -> None:
    evse = evse_of(rig)
    await evse.offer_current(10.0)
    with pytest.raises(ValueError):
        await evse.offer_current(current_a)
    assert evse.offered_current_a == pytest.approx(10.0)


@pytest.mark.parametrize("state", list(PilotState))
async def test_pilot_follows_the_vehicle(rig: Rig, state: PilotState) -> None:
    rig.plant.set_ev(1, cp_state=state)
    await rig.settle()
    assert evse_of(rig).pilot is state
    assert evse_of(rig, 2).pilot is PilotState.A


async def test_pilot_change_emits_one_event_per_change(rig: Rig) -> None:
    # Each state lasts long enough to be seen (a pilot is sampled, not watched).
    for connector, state in [(1, "B"), (1, "B"), (1, "C"), (2, "B"), (1, "A")]:
        rig.plant.set_ev(connector, cp_state=PilotState(state))
        await rig.settle()
    assert await drain(rig) == [
        PilotChanged(1, PilotState.B),
        PilotChanged(1, PilotState.C),
        PilotChanged(2, PilotState.B),
        PilotChanged(1, PilotState.A),
    ]


async def test_unchanged_pilot_emits_nothing(rig: Rig) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.A)
    rig.plant.set_ev(1, ev_max_current_a=16.0)
    assert await drain(rig) == []


async def test_offer_does_not_depend_on_pilot(rig: Rig) -> None:
    evse = evse_of(rig)
    await evse.offer_current(16.0)
    rig.plant.set_ev(1, cp_state=PilotState.C)
    rig.plant.set_ev(1, cp_state=PilotState.A)
    await rig.settle()
    assert evse.offered_current_a == pytest.approx(16.0)
