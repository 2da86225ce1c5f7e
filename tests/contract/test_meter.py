"""Energy meter contract: what it measures follows the plant's physics."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hal.errors import MeterError, RelayError
from hal.interfaces import BoardSettings, EnergyMeter, Fault, MeterReading, PilotState
from tests.contract.rigs import MakeRig, OpenRig, Rig, open_rig, start_charging

VOLTS = 230.0
HOUR_S = 3600.0


def approx(value: float | tuple[float, ...]) -> Any:
    # A pilot PWM carries the offer in 0.1 % duty steps (0.06 A): up to 0.4 % off at 10 A.
    return pytest.approx(value, rel=5e-3, abs=1e-3)


def meter_of(rig: Rig, connector_id: int = 1) -> EnergyMeter:
    return rig.backend.connectors[connector_id].meter


async def read(rig: Rig, connector_id: int = 1) -> MeterReading:
    return await meter_of(rig, connector_id).read()


async def test_idle_reading(rig: Rig) -> None:
    meter = meter_of(rig)
    assert isinstance(meter, EnergyMeter)
    reading = await meter.read()
    assert reading.energy_wh >= 0.0
    assert reading.power_w == 0.0
    assert reading.current_a == (0.0, 0.0, 0.0)
    assert reading.voltage_v == approx((VOLTS, VOLTS, VOLTS))
    assert reading.frequency_hz == approx(50.0)


async def test_three_phase_charging_power_and_energy(rig: Rig) -> None:
    before = await read(rig)
    await start_charging(rig, offer_a=16.0)
    await rig.advance(HOUR_S)
    after = await read(rig)
    assert after.current_a == approx((16.0, 16.0, 16.0))
    assert after.voltage_v == approx((VOLTS, VOLTS, VOLTS))
    assert after.power_w == approx(16.0 * VOLTS * 3)
    assert after.energy_wh - before.energy_wh == approx(16.0 * VOLTS * 3)
    idle = await read(rig, 2)
    assert idle.power_w == 0.0 and idle.energy_wh == approx(before.energy_wh)


async def test_single_phase_charging_power_and_energy(make_rig: MakeRig) -> None:
    rig = await make_rig(board=BoardSettings(phases=1))
    before = await read(rig)
    assert before.voltage_v == approx((VOLTS, 0.0, 0.0))
    await start_charging(rig, offer_a=16.0)
    await rig.advance(HOUR_S / 2)
    after = await read(rig)
    assert after.current_a == approx((16.0, 0.0, 0.0))
    assert after.voltage_v == approx((VOLTS, 0.0, 0.0))
    assert after.power_w == approx(16.0 * VOLTS)
    assert after.energy_wh - before.energy_wh == approx(16.0 * VOLTS / 2)


async def test_vehicle_takes_the_lesser_of_its_maximum_and_the_offer(rig: Rig) -> None:
    rig.plant.set_ev(1, ev_max_current_a=10.0)
    await start_charging(rig, offer_a=16.0)
    assert (await read(rig)).current_a == approx((10.0, 10.0, 10.0))
    await rig.backend.connectors[1].evse.offer_current(8.0)
    await rig.settle()
    assert (await read(rig)).current_a == approx((8.0, 8.0, 8.0))


async def test_energy_follows_changes_of_offer(rig: Rig) -> None:
    before = await read(rig)
    await start_charging(rig, offer_a=16.0)
    await rig.advance(HOUR_S)
    await rig.backend.connectors[1].evse.offer_current(32.0)
    await rig.advance(HOUR_S)
    after = await read(rig)
    assert after.energy_wh - before.energy_wh == approx((16.0 + 32.0) * VOLTS * 3)


async def _relay_open(rig: Rig) -> None:
    await rig.backend.connectors[1].relay.open()


async def _pilot_b(rig: Rig) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.B)


async def _pilot_a(rig: Rig) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.A)


async def _pilot_f(rig: Rig) -> None:
    rig.plant.set_ev(1, cp_state=PilotState.F)


async def _no_offer(rig: Rig) -> None:
    await rig.backend.connectors[1].evse.offer_current(0.0)


async def _vehicle_max_zero(rig: Rig) -> None:
    rig.plant.set_ev(1, ev_max_current_a=0.0)


async def _rcd_trip(rig: Rig) -> None:
    rig.plant.set_fault(1, Fault.RCD_TRIP, True)


@pytest.mark.parametrize(
    "withdraw",
    [_relay_open, _pilot_b, _pilot_a, _pilot_f, _no_offer, _vehicle_max_zero, _rcd_trip],
)
async def test_no_energy_unless_relay_closed_pilot_c_d_and_offer(
    rig: Rig, withdraw: Callable[[Rig], Awaitable[None]]
) -> None:
    await start_charging(rig, offer_a=16.0)
    await withdraw(rig)
    await rig.settle()
    before = await read(rig)
    await rig.advance(HOUR_S)
    after = await read(rig)
    assert after.power_w == 0.0
    assert after.current_a == (0.0, 0.0, 0.0)
    assert after.energy_wh == approx(before.energy_wh)


async def test_pilot_d_draws_like_c(rig: Rig) -> None:
    await start_charging(rig, offer_a=16.0)
    rig.plant.set_ev(1, cp_state=PilotState.D)
    await rig.settle()
    assert (await read(rig)).power_w == approx(16.0 * VOLTS * 3)


async def test_energy_is_kept_after_charging_stops(rig: Rig) -> None:
    await start_charging(rig, offer_a=32.0)
    await rig.advance(600.0)
    await rig.backend.connectors[1].relay.open()
    charged = (await read(rig)).energy_wh
    await rig.advance(600.0)
    assert (await read(rig)).energy_wh == approx(charged)
    assert charged > 0.0


async def test_overcurrent_draws_a_quarter_more_than_offered(rig: Rig) -> None:
    rig.plant.set_ev(1, ev_max_current_a=10.0)
    await start_charging(rig, offer_a=16.0)
    rig.plant.set_fault(1, Fault.OVERCURRENT, True)
    await rig.settle()
    assert (await read(rig)).current_a == approx((20.0, 20.0, 20.0))
    rig.plant.set_fault(1, Fault.OVERCURRENT, False)
    await rig.settle()
    assert (await read(rig)).current_a == approx((10.0, 10.0, 10.0))


async def test_meter_offline_raises_and_recovers(rig: Rig) -> None:
    before = await read(rig)
    await start_charging(rig, offer_a=16.0)
    rig.plant.set_fault(1, Fault.METER_OFFLINE, True)
    await rig.settle()
    with pytest.raises(MeterError):
        await read(rig)
    assert (await read(rig, 2)).energy_wh >= 0.0
    await rig.advance(HOUR_S)
    rig.plant.set_fault(1, Fault.METER_OFFLINE, False)
    await rig.settle()
    after = await read(rig)
    assert after.energy_wh - before.energy_wh == approx(16.0 * VOLTS * 3)


# ---------------------------------------------------------------- property

_ops = st.one_of(
    st.tuples(st.just("cp"), st.sampled_from(list(PilotState))),
    st.tuples(st.just("ev_max"), st.floats(0.0, 80.0)),
    st.tuples(st.just("soc"), st.floats(0.0, 100.0)),
    st.tuples(st.just("offer"), st.sampled_from([0.0, 6.0, 10.0, 16.0, 32.0, 63.0, 80.0])),
    st.tuples(st.just("relay"), st.booleans()),
    st.tuples(
        st.just("fault"),
        st.tuples(
            st.sampled_from(
                [Fault.RCD_TRIP, Fault.OVERCURRENT, Fault.CONTACTOR_WELDED, Fault.METER_OFFLINE]
            ),
            st.booleans(),
        ),
    ),
    st.tuples(st.just("advance"), st.floats(0.0, 7200.0)),
)


# One property, two budgets: an emulated rig waits for real CAN, GPIO and Modbus timing.
@settings(max_examples=60, deadline=None)
@given(charging=st.booleans(), ops=st.lists(_ops, max_size=25))
async def test_energy_never_decreases_and_flows_only_when_allowed_simulated(
    charging: bool, ops: list[tuple[str, Any]]
) -> None:
    await _energy_never_decreases(functools.partial(open_rig, "simulated"), charging, ops)


@settings(max_examples=4, deadline=None)
@given(charging=st.booleans(), ops=st.lists(_ops, min_size=3, max_size=6))
# A denormal EV current once made the emulated BMS's charge time estimate infinite.
@example(charging=True, ops=[("ev_max", 0.0), ("ev_max", 2.225073858507203e-309), ("soc", 0.0)])
async def test_energy_never_decreases_and_flows_only_when_allowed_emulated(
    charging: bool, ops: list[tuple[str, Any]]
) -> None:
    await _energy_never_decreases(functools.partial(open_rig, "emulated"), charging, ops)


async def _energy_never_decreases(
    rig_opener: OpenRig, charging: bool, ops: list[tuple[str, Any]]
) -> None:
    async with rig_opener(connectors=1, board=BoardSettings(phases=3)) as rig:
        hw = rig.backend.connectors[1]
        if charging:
            await start_charging(rig, offer_a=16.0)
        last: MeterReading | None = await hw.meter.read()
        for kind, arg in ops:
            if kind == "cp":
                rig.plant.set_ev(1, cp_state=arg)
            elif kind == "ev_max":
                rig.plant.set_ev(1, ev_max_current_a=arg)
            elif kind == "soc":
                rig.plant.set_ev(1, soc=arg)
            elif kind == "offer":
                await hw.evse.offer_current(arg)
            elif kind == "relay":
                with contextlib.suppress(RelayError):
                    await (hw.relay.close() if arg else hw.relay.open())
            elif kind == "fault":
                rig.plant.set_fault(1, arg[0], arg[1])
            else:
                await rig.advance(arg)
            await rig.settle()
            try:
                reading = await hw.meter.read()
            except MeterError:
                last = None
                continue
            if last is not None:
                assert reading.energy_wh >= last.energy_wh
                if kind == "advance":
                    # The state holds during an advance; only a full battery can stop the draw.
                    most_wh = last.power_w * arg / HOUR_S
                    assert reading.energy_wh - last.energy_wh <= most_wh * 1.001 + 1e-3
            last = reading
            assert math.isfinite(reading.power_w) and reading.power_w >= 0.0
            allowed = (
                hw.relay.feedback_closed is not False
                and hw.evse.pilot.requests_energy
                and hw.evse.offered_current_a >= 6.0
            )
            if not allowed:
                assert reading.power_w == 0.0
            soc = hw.bms.soc_percent if hw.bms is not None else None
            assert soc is None or 0.0 <= soc <= 100.0
