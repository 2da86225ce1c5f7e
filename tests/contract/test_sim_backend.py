"""What only the simulated backend promises: options, clock, histories, delays, battery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator

import pytest

from hal.errors import HalConfigError, RelayError
from hal.interfaces import BoardSettings, Fault, PilotState, TokenPresented
from hal.registry import build_backend
from hal.sim.backend import SimBackend, SimOptions, build
from hal.sim.plant import SimPlant
from hal.sim.world import HISTORY_LIMIT, ManualClock

T0 = 500.0


def make(connectors: int = 1, board: BoardSettings | None = None, **options: object) -> SimBackend:
    return build(options, connectors, board or BoardSettings(), clock=ManualClock(T0))


async def charge(sim: SimBackend, connector_id: int = 1, offer_a: float = 16.0) -> None:
    sim.plant.set_ev(connector_id, cp_state=PilotState.C)
    await sim.devices[connector_id].evse.offer_current(offer_a)
    await sim.devices[connector_id].relay.close()


@contextlib.asynccontextmanager
async def running(sim: SimBackend) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sim.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ---------------------------------------------------------------- build and options


def test_registry_builds_the_simulated_backend() -> None:
    backend = build_backend("simulated", {"tick_s": 0.05}, 3, BoardSettings())
    assert isinstance(backend, SimBackend)
    assert isinstance(backend.plant, SimPlant)
    assert sorted(backend.connectors) == [1, 2, 3]
    assert backend.options.tick_s == 0.05


def test_default_options() -> None:
    assert SimOptions.parse({}) == SimOptions(
        tick_s=0.1,
        relay_delay_s=0.0,
        lock_delay_s=0.0,
        cable_rating_a=32.0,
        ev_max_current_a=32.0,
        battery_kwh=60.0,
    )


def test_options_accept_whole_numbers_and_nulls() -> None:
    options = SimOptions.parse(
        {"tick_s": 1, "relay_delay_s": 0, "cable_rating_a": None, "battery_kwh": None}
    )
    assert options.tick_s == 1.0 and isinstance(options.tick_s, float)
    assert options.cable_rating_a is None and options.battery_kwh is None


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"tick": 0.1}, "hal.tick"),
        ({"backend": "simulated"}, "hal.backend"),
        ({"tick_s": 0}, "hal.tick_s"),
        ({"tick_s": -0.1}, "hal.tick_s"),
        ({"tick_s": "fast"}, "hal.tick_s"),
        ({"tick_s": True}, "hal.tick_s"),
        ({"tick_s": math.nan}, "hal.tick_s"),
        ({"tick_s": None}, "hal.tick_s"),
        ({"relay_delay_s": -1}, "hal.relay_delay_s"),
        ({"lock_delay_s": math.inf}, "hal.lock_delay_s"),
        ({"cable_rating_a": 5}, "hal.cable_rating_a"),
        ({"cable_rating_a": "32"}, "hal.cable_rating_a"),
        ({"ev_max_current_a": 81}, "hal.ev_max_current_a"),
        ({"ev_max_current_a": None}, "hal.ev_max_current_a"),
        ({"battery_kwh": 0}, "hal.battery_kwh"),
    ],
)
def test_bad_option_names_the_option(options: dict[str, object], name: str) -> None:
    with pytest.raises(HalConfigError, match=rf"^{name}: "):
        build(options, 1, BoardSettings())


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(HalConfigError, match="mapping"):
        build([("tick_s", 1.0)], 1, BoardSettings())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("connectors", "board"),
    [
        (0, BoardSettings()),
        (-1, BoardSettings()),
        (1, BoardSettings(phases=4)),
        (1, BoardSettings(nominal_voltage_v=0.0)),
    ],
)
def test_bad_station_is_a_config_error(connectors: int, board: BoardSettings) -> None:
    with pytest.raises(HalConfigError):
        build({}, connectors, board)


@pytest.mark.parametrize("rating", [None, 20.0, 63])
def test_cable_rating_is_the_option(rating: float | None) -> None:
    sim = make(cable_rating_a=rating)
    assert sim.connectors[1].evse.cable_rating_a == rating


async def test_ev_max_current_option_is_the_vehicle_default() -> None:
    sim = make(ev_max_current_a=10)
    await charge(sim, offer_a=32.0)
    assert (await sim.devices[1].meter.read()).current_a == (10.0, 10.0, 10.0)


# ---------------------------------------------------------------- time


async def test_injected_clock_drives_the_physics() -> None:
    clock = ManualClock(T0)
    sim = build({}, 1, BoardSettings(), clock=clock)
    await charge(sim)
    clock.advance(1800.0)
    assert sim.world.now() == T0 + 1800.0
    assert (await sim.devices[1].meter.read()).energy_wh == pytest.approx(16 * 230 * 3 / 2)
    sim.world.advance(1800.0)
    assert sim.world.now() == T0 + 3600.0
    assert (await sim.devices[1].meter.read()).energy_wh == pytest.approx(16 * 230 * 3)


@pytest.mark.parametrize("dt_s", [-1.0, math.nan, math.inf])
def test_advance_refuses_bad_durations(dt_s: float) -> None:
    with pytest.raises(ValueError):
        make().world.advance(dt_s)
    with pytest.raises(ValueError):
        ManualClock().advance(dt_s)


async def test_run_steps_the_world_every_tick_and_stops_on_cancel() -> None:
    clock = ManualClock(T0)
    sim = build({"tick_s": 0.005}, 1, BoardSettings(), clock=clock)
    await charge(sim)
    async with running(sim) as task:
        clock.advance(3600.0)
        await asyncio.sleep(0.03)
        assert sim.world.connector(1).energy_wh == pytest.approx(16 * 230 * 3)
    assert task.cancelled()


# ---------------------------------------------------------------- histories


async def test_device_histories_record_commands_with_times() -> None:
    sim = make()
    dev = sim.devices[1]
    assert dev.lock is not None
    await dev.evse.offer_current(16)
    await dev.lock.lock()
    sim.world.advance(2.0)
    await dev.relay.close()
    await dev.relay.open()
    await dev.lock.unlock()
    await dev.meter.read()
    assert dev.evse.history == [(T0, "offer 16.0")]
    assert dev.relay.history == [(T0 + 2.0, "close"), (T0 + 2.0, "open")]
    assert dev.lock.history == [(T0, "lock"), (T0 + 2.0, "unlock")]
    assert dev.meter.history == [(T0 + 2.0, "read")]


async def test_plant_actions_on_devices_are_noted() -> None:
    sim = make(2)
    await charge(sim, 1)
    await charge(sim, 2)
    sim.plant.set_fault(1, Fault.RCD_TRIP, True)
    await sim.safe_state()
    assert [text for _, text in sim.devices[1].relay.history] == [
        "close",
        "open (rcd_trip)",
        "open (safe_state)",
    ]
    assert sim.devices[2].evse.history[-1][1] == "offer 0.0 (safe_state)"
    assert [text for _, text in sim.plant.history] == [
        "connector 1 cp_state C",
        "connector 2 cp_state C",
        "connector 1 fault rcd_trip raised",
    ]


async def test_history_is_bounded() -> None:
    sim = make()
    for _ in range(HISTORY_LIMIT + 10):
        await sim.devices[1].meter.read()
    assert len(sim.devices[1].meter.history) == HISTORY_LIMIT


# ---------------------------------------------------------------- delays


async def test_relay_contacts_follow_the_coil_after_the_delay() -> None:
    sim = make(relay_delay_s=0.02)
    relay = sim.devices[1].relay
    closing = asyncio.create_task(relay.close())
    await asyncio.sleep(0.005)
    assert relay.commanded_closed is True and relay.feedback_closed is False
    await closing
    assert relay.feedback_closed is True


async def test_rcd_trip_during_the_close_delay_fails_the_close() -> None:
    sim = make(relay_delay_s=0.02)
    relay = sim.devices[1].relay
    closing = asyncio.create_task(relay.close())
    await asyncio.sleep(0.005)
    sim.plant.set_fault(1, Fault.RCD_TRIP, True)
    with pytest.raises(RelayError):
        await closing
    assert relay.commanded_closed is False and relay.feedback_closed is False


async def test_lock_takes_its_delay() -> None:
    sim = make(lock_delay_s=0.02)
    lock = sim.devices[1].lock
    assert lock is not None
    locking = asyncio.create_task(lock.lock())
    await asyncio.sleep(0.005)
    assert lock.locked is False
    await locking
    assert lock.locked is True


# ---------------------------------------------------------------- vehicle and battery


async def test_battery_fills_exactly_and_stops() -> None:
    sim = make(battery_kwh=10)
    sim.plant.set_ev(1, cp_state=PilotState.B, soc=50.0)
    await charge(sim)
    sim.world.advance(3600.0)
    reading = await sim.devices[1].meter.read()
    assert reading.energy_wh == pytest.approx(5000.0)
    assert reading.power_w == 0.0
    assert sim.connectors[1].bms is not None
    assert sim.connectors[1].bms.soc_percent == 100.0


async def test_without_battery_there_is_no_soc() -> None:
    sim = make(battery_kwh=None)
    with pytest.raises(ValueError, match="battery"):
        sim.plant.set_ev(1, cp_state=PilotState.B, soc=50.0)
    assert sim.devices[1].evse.pilot is PilotState.A
    await charge(sim)
    sim.world.advance(3600.0)
    assert sim.devices[1].bms is not None and sim.devices[1].bms.soc_percent is None
    assert (await sim.devices[1].meter.read()).energy_wh == pytest.approx(16 * 230 * 3)


async def test_soc_set_without_vehicle_belongs_to_the_next_one() -> None:
    sim = make()
    bms = sim.devices[1].bms
    assert bms is not None
    sim.plant.set_ev(1, soc=30.0)
    assert bms.soc_percent is None
    sim.plant.set_ev(1, cp_state=PilotState.B)
    assert bms.soc_percent == 30.0
    assert [text for _, text in bms.history] == ["soc 30.0"]
    sim.plant.set_ev(1, cp_state=PilotState.A)
    assert [text for _, text in bms.history] == ["soc 30.0", "soc None"]


# ---------------------------------------------------------------- plant inputs


def test_plant_accepts_strings_for_enums() -> None:
    sim = make()
    sim.plant.set_ev(1, cp_state="c")  # type: ignore[arg-type]
    sim.plant.set_fault(1, "rcd_trip", True)  # type: ignore[arg-type]
    assert sim.devices[1].evse.pilot is PilotState.C
    assert Fault.RCD_TRIP in sim.world.connector(1).faults


@pytest.mark.parametrize(("fault", "active"), [("melted", True), (Fault.RCD_TRIP, 1)])
def test_plant_refuses_unknown_fault_or_non_bool(fault: object, active: object) -> None:
    with pytest.raises(ValueError):
        make().plant.set_fault(1, fault, active)  # type: ignore[arg-type]


async def test_token_kept_as_given_and_offline_reader_logged_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = make()
    sim.plant.present_token("Rfid_04a2")
    assert sim.events.get_nowait() == TokenPresented("Rfid_04a2")
    sim.plant.set_fault(1, Fault.READER_OFFLINE, True)
    sim.events.get_nowait()
    with caplog.at_level(logging.WARNING, logger="hal.sim"):
        sim.plant.present_token("Rfid_04a2", 1)
    assert sim.events.empty()
    assert "token *****04a2 ignored" in caplog.text


async def test_welded_fault_cleared_while_energized_keeps_contacts_closed() -> None:
    sim = make()
    relay = sim.devices[1].relay
    await relay.close()
    sim.plant.set_fault(1, Fault.CONTACTOR_WELDED, True)
    sim.plant.set_fault(1, Fault.CONTACTOR_WELDED, False)
    assert relay.feedback_closed is True
    await relay.open()
    assert relay.feedback_closed is False
