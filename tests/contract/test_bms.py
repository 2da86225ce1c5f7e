"""BMS contract: state of charge known only with a vehicle, rising while charging."""

from __future__ import annotations

import pytest

from hal.interfaces import Bms, BoardSettings, PilotState
from tests.contract.rigs import MakeRig, Rig, start_charging


def bms_of(rig: Rig, connector_id: int = 1) -> Bms:
    bms = rig.backend.connectors[connector_id].bms
    assert bms is not None
    return bms


async def test_soc_unknown_without_vehicle(rig: Rig) -> None:
    bms = bms_of(rig)
    assert isinstance(bms, Bms)
    assert bms.soc_percent is None
    rig.plant.set_ev(1, cp_state=PilotState.B)
    await rig.settle()
    assert bms.soc_percent is None


async def test_soc_reported_once_set(rig: Rig) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.B, soc=42.5)
    await rig.settle()
    assert bms_of(rig).soc_percent == pytest.approx(42.5, abs=rig.soc_step_percent)
    assert bms_of(rig, 2).soc_percent is None


async def test_soc_forgotten_when_vehicle_leaves(rig: Rig) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.C, soc=50.0)
    rig.plant.set_ev(1, cp_state=PilotState.A)
    await rig.settle()
    assert bms_of(rig).soc_percent is None
    rig.plant.set_ev(1, cp_state=PilotState.B)
    await rig.settle()
    assert bms_of(rig).soc_percent is None


async def test_soc_rises_while_charging_and_not_otherwise(rig: Rig) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.B, soc=20.0)
    await rig.advance(600.0)
    assert bms_of(rig).soc_percent == pytest.approx(20.0, abs=rig.soc_step_percent)
    await start_charging(rig, offer_a=32.0)
    await rig.advance(600.0)
    soc = bms_of(rig).soc_percent
    assert soc is not None and 20.0 < soc < 100.0


async def test_full_battery_stops_drawing(rig: Rig) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.B, soc=99.0)
    await start_charging(rig, offer_a=32.0)
    assert (await rig.backend.connectors[1].meter.read()).power_w > 0.0
    await rig.advance(4 * 3600.0)
    assert bms_of(rig).soc_percent == pytest.approx(100.0)
    reading = await rig.backend.connectors[1].meter.read()
    assert reading.power_w == 0.0
    assert reading.current_a == (0.0, 0.0, 0.0)


async def test_no_bms_on_a_board_without_one(make_rig: MakeRig) -> None:
    rig = await make_rig(connectors=2, board=BoardSettings(has_bms=False))
    assert all(hw.bms is None for hw in rig.backend.connectors.values())
