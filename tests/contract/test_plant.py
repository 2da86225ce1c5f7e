"""Plant contract: the bundle, vehicle validation, tokens, faults and their events, safe state."""

from __future__ import annotations

import math

import pytest

from hal.errors import RelayError
from hal.interfaces import (
    Bms,
    ConnectorLock,
    EnergyMeter,
    EvseController,
    Fault,
    FaultChanged,
    HalEvent,
    PilotChanged,
    PilotState,
    PlantControl,
    Relay,
    TokenPresented,
)
from tests.contract.rigs import Rig, collect, drain, start_charging

STATION_FAULTS = [Fault.READER_OFFLINE, Fault.EMERGENCY_STOP, Fault.TAMPER]


async def test_bundle_has_connectors_one_to_n(rig: Rig) -> None:
    assert sorted(rig.backend.connectors) == [1, 2]
    for cid, hw in rig.backend.connectors.items():
        assert hw.connector_id == cid
        assert isinstance(hw.relay, Relay)
        assert isinstance(hw.evse, EvseController)
        assert isinstance(hw.meter, EnergyMeter)
        assert isinstance(hw.lock, ConnectorLock)
        assert isinstance(hw.bms, Bms)
    assert isinstance(rig.backend.plant, PlantControl)
    assert await drain(rig) == []


# ---------------------------------------------------------------- set_ev


@pytest.mark.parametrize("connector_id", [0, 3, -1, 99])
async def test_set_ev_unknown_connector(rig: Rig, connector_id: int) -> None:
    with pytest.raises(KeyError):
        rig.plant.set_ev(connector_id, cp_state=PilotState.B)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cp_state": "G"},
        {"cp_state": "AB"},
        {"ev_max_current_a": -0.1},
        {"ev_max_current_a": 80.5},
        {"ev_max_current_a": math.nan},
        {"soc": -1.0},
        {"soc": 100.1},
        {"soc": math.inf},
        {"cp_state": PilotState.C, "soc": 150.0},
        {"cp_state": PilotState.C, "ev_max_current_a": 81.0},
    ],
)
async def test_set_ev_bad_value_changes_nothing(rig: Rig, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        rig.plant.set_ev(1, **kwargs)  # type: ignore[arg-type]
    assert rig.backend.connectors[1].evse.pilot is PilotState.A
    assert await drain(rig) == []


@pytest.mark.parametrize("value", [0.0, 80.0])
async def test_set_ev_accepts_bounds(rig: Rig, value: float) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.B, ev_max_current_a=value, soc=min(value, 100.0))
    assert await drain(rig) == [PilotChanged(1, PilotState.B)]


# ---------------------------------------------------------------- tokens


@pytest.mark.parametrize(
    "uid",
    [
        "04A2B3C4",
        "04a2b3c4",
        "0A",
        "F" * 20,
        "ABC",
        "RFID_VALID1",
        "TAG0001",
        "user-42",
        "abc",
        "04 A2",
        "x",
    ],
)
async def test_any_id_tag_is_presented_as_given(rig: Rig, uid: str) -> None:
    rig.plant.present_token(uid)
    rig.plant.present_token(uid, 2)
    got = await collect(rig, 2)  # two readers: in either order
    assert set(got) == {TokenPresented(uid, None), TokenPresented(uid, 2)}
    assert len(got) == 2


@pytest.mark.parametrize("uid", ["", "F" * 21, " 04A2", "04A2 ", "04A2\n", "carte-\u00e9", 42])
async def test_bad_token_uid(rig: Rig, uid: str) -> None:
    with pytest.raises(ValueError):
        rig.plant.present_token(uid)
    assert await drain(rig) == []


@pytest.mark.parametrize("connector_id", [0, 3])
async def test_token_for_unknown_connector(rig: Rig, connector_id: int) -> None:
    with pytest.raises(KeyError):
        rig.plant.present_token("04A2", connector_id)
    assert await drain(rig) == []


async def test_token_ignored_while_station_reader_offline(rig: Rig) -> None:
    rig.plant.set_fault(0, Fault.READER_OFFLINE, True)
    assert await collect(rig, 1) == [FaultChanged(0, Fault.READER_OFFLINE, True)]
    rig.plant.present_token("04A2")
    rig.plant.present_token("04A2", 1)
    assert await drain(rig) == []
    rig.plant.set_fault(0, Fault.READER_OFFLINE, False)
    assert await collect(rig, 1) == [FaultChanged(0, Fault.READER_OFFLINE, False)]
    rig.plant.present_token("04A2")
    assert await collect(rig, 1) == [TokenPresented("04A2")]


async def test_token_ignored_while_connector_reader_offline(rig: Rig) -> None:
    rig.plant.set_fault(1, Fault.READER_OFFLINE, True)
    assert await collect(rig, 1) == [FaultChanged(1, Fault.READER_OFFLINE, True)]
    rig.plant.present_token("04A2", 1)
    rig.plant.present_token("04A3", 2)
    rig.plant.present_token("04A4")
    got = await collect(rig, 2)
    assert set(got) == {TokenPresented("04A3", 2), TokenPresented("04A4")}
    assert len(got) == 2


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("fault", list(Fault))
async def test_fault_events_once_per_change(rig: Rig, fault: Fault) -> None:
    seen = fault in rig.idle_faults  # else found by a driver when it acts, or by the firmware

    async def faults() -> list[HalEvent]:  # a silent controller also shows pilot F
        events = await collect(rig, 1) if seen else await drain(rig)
        return [e for e in events if isinstance(e, FaultChanged)]

    rig.plant.set_fault(2, fault, True)
    rig.plant.set_fault(2, fault, True)
    assert await faults() == ([FaultChanged(2, fault, True)] if seen else [])
    rig.plant.set_fault(2, fault, False)
    rig.plant.set_fault(2, fault, False)
    assert await faults() == ([FaultChanged(2, fault, False)] if seen else [])


@pytest.mark.parametrize("fault", sorted(STATION_FAULTS))
async def test_station_faults_on_connector_zero(rig: Rig, fault: Fault) -> None:
    rig.plant.set_fault(0, fault, True)
    rig.plant.set_fault(0, fault, True)
    assert await collect(rig, 1) == [FaultChanged(0, fault, True)]


@pytest.mark.parametrize("fault", [f for f in Fault if f not in STATION_FAULTS])
async def test_connector_faults_refused_on_connector_zero(rig: Rig, fault: Fault) -> None:
    with pytest.raises(ValueError):
        rig.plant.set_fault(0, fault, True)
    assert await drain(rig) == []


@pytest.mark.parametrize("connector_id", [3, -1])
async def test_fault_on_unknown_connector(rig: Rig, connector_id: int) -> None:
    with pytest.raises(KeyError):
        rig.plant.set_fault(connector_id, Fault.RCD_TRIP, True)


async def test_faults_of_connectors_are_separate(rig: Rig) -> None:
    for connector, active in [(1, True), (2, True), (1, False)]:
        rig.plant.set_fault(connector, Fault.RCD_TRIP, active)
        await rig.settle()
    assert await drain(rig) == [
        FaultChanged(1, Fault.RCD_TRIP, True),
        FaultChanged(2, Fault.RCD_TRIP, True),
        FaultChanged(1, Fault.RCD_TRIP, False),
    ]


async def test_rcd_trip_opens_the_relay_at_once(rig: Rig) -> None:
    await start_charging(rig, 1)
    await start_charging(rig, 2)
    rig.plant.set_fault(1, Fault.RCD_TRIP, True)
    await rig.settle()
    relay = rig.backend.connectors[1].relay
    assert relay.feedback_closed is False
    assert relay.commanded_closed is False
    assert (await rig.backend.connectors[1].meter.read()).power_w == 0.0
    assert rig.backend.connectors[2].relay.feedback_closed is True
    assert (await rig.backend.connectors[2].meter.read()).power_w > 0.0


async def test_relay_may_close_again_after_rcd_clears(rig: Rig) -> None:
    await start_charging(rig, 1)
    rig.plant.set_fault(1, Fault.RCD_TRIP, True)
    rig.plant.set_fault(1, Fault.RCD_TRIP, False)
    await rig.settle()  # a driver may have seen the contact drop out meanwhile
    await rig.backend.connectors[1].relay.close()
    await rig.settle()
    assert (await rig.backend.connectors[1].meter.read()).power_w > 0.0


# ---------------------------------------------------------------- safe state


async def test_safe_state_opens_relays_and_stops_offering(rig: Rig) -> None:
    await start_charging(rig, 1)
    await start_charging(rig, 2)
    await rig.backend.safe_state()
    await rig.settle()
    for hw in rig.backend.connectors.values():
        assert hw.relay.commanded_closed is False
        assert hw.relay.feedback_closed in (False, None)
        assert hw.evse.offered_current_a == 0.0
        assert (await hw.meter.read()).power_w == 0.0


async def test_safe_state_never_raises_even_when_welded(rig: Rig) -> None:
    await start_charging(rig, 1)
    rig.plant.set_fault(1, Fault.CONTACTOR_WELDED, True)
    rig.plant.set_fault(1, Fault.METER_OFFLINE, True)
    rig.plant.set_fault(1, Fault.LOCK_FAILURE, True)
    await rig.backend.safe_state()
    await rig.backend.safe_state()
    hw = rig.backend.connectors[1]
    assert hw.relay.commanded_closed is False
    assert hw.evse.offered_current_a == 0.0
    with pytest.raises(RelayError):
        await hw.relay.open()
