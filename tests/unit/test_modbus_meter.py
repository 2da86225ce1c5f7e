"""ModbusMeter against EmulatedMeter: real RTU frames over a pty pair, the World behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hal.emulators.meter_server import EmulatedMeter
from hal.emulators.pty_pair import PtyPair
from hal.errors import HalConfigError, MeterError
from hal.interfaces import (
    BoardSettings,
    EnergyMeter,
    Fault,
    FaultChanged,
    HalEvent,
    MeterReading,
    PilotState,
)
from hal.modbus.meter import ModbusMeter
from hal.sim.world import ManualClock, World

START_WH = 1_000_000.0
TIMEOUT_S = 0.2  # far above a pty round trip (about a millisecond), small for the budget
FULL_POWER_W = 16.0 * 230.0 * 3
OFFLINE = FaultChanged(1, Fault.METER_OFFLINE, True)
BACK = FaultChanged(1, Fault.METER_OFFLINE, False)


class Bench:
    """A pty cable, the world and its emulated meter, and the drivers under test."""

    def __init__(self, cable: PtyPair) -> None:
        self.cable = cable
        self.world = World(1, BoardSettings(), clock=ManualClock(1000.0), meter_start_wh=START_WH)
        self.events: asyncio.Queue[HalEvent] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.meters: list[ModbusMeter] = []

    async def emulate(
        self, map: str = "sdm630", *, phases: int = 3, device_id: int = 1
    ) -> EmulatedMeter:
        if phases != self.world.board.phases:
            self.world = World(
                1,
                BoardSettings(phases=phases),
                clock=ManualClock(1000.0),
                meter_start_wh=START_WH,
            )
        emulator = EmulatedMeter(
            self.world, 1, self.cable.server_path, map=map, device_id=device_id
        )
        self.tasks.append(asyncio.create_task(emulator.run(), name="emulated-meter"))
        await asyncio.wait_for(emulator.ready.wait(), 2.0)
        return emulator

    def meter(self, **options: Any) -> ModbusMeter:
        settings: dict[str, Any] = {"timeout_s": TIMEOUT_S, "retries": 1, **options}
        meter = ModbusMeter(1, self.events, port=self.cable.client_path, **settings)
        self.meters.append(meter)
        return meter

    def charge(self, amps: float = 16.0) -> None:
        self.world.set_cp_state(1, PilotState.C)
        self.world.set_offer(1, amps)
        self.world.set_coil(1, True)
        self.world.settle_contact(1)

    def drain(self) -> list[HalEvent]:
        events: list[HalEvent] = []
        while not self.events.empty():
            events.append(self.events.get_nowait())
        return events

    async def close(self) -> None:
        for meter in self.meters:
            meter.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert task.cancelled(), "run() swallowed its cancellation"


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with PtyPair(tmp_path) as cable:
        rig = Bench(cable)
        try:
            yield rig
        finally:
            await rig.close()
    await asyncio.sleep(0)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not others, f"tasks left behind: {others}"


def assert_matches(reading: MeterReading, expected: MeterReading, energy_wh: float) -> None:
    assert reading.energy_wh == pytest.approx(expected.energy_wh, abs=energy_wh)
    assert reading.power_w == pytest.approx(expected.power_w, abs=0.01)
    assert reading.current_a == pytest.approx(expected.current_a, abs=0.01)
    assert reading.voltage_v == pytest.approx(expected.voltage_v, abs=0.1)
    assert reading.frequency_hz == pytest.approx(expected.frequency_hz, abs=0.01)


# ---------------------------------------------------------------- the cable


def links_in(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir() if entry.is_symlink())


async def read_exactly(fd: int, size: int, within_s: float = 1.0) -> bytes:
    data = b""
    for _ in range(int(within_s / 0.005)):
        with contextlib.suppress(BlockingIOError):
            data += os.read(fd, size - len(data))
        if len(data) >= size:
            return data
        await asyncio.sleep(0.005)
    return data


async def test_pty_pair_relays_raw_bytes_and_obeys_its_knobs(tmp_path: Path) -> None:
    cable = PtyPair(tmp_path, "meter")
    assert links_in(tmp_path) == ["meter-client", "meter-server"]  # before the relay runs
    async with cable:
        assert cable.client_path == str(tmp_path / "meter-client")
        flags = os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK
        client, server = os.open(cable.client_path, flags), os.open(cable.server_path, flags)
        try:
            every_byte = bytes(range(256))  # CR, LF, ^C, ^D, ^S...: raw mode passes them all
            os.write(client, every_byte)
            assert await read_exactly(server, 256) == every_byte
            assert await read_exactly(client, 1, within_s=0.05) == b""  # no echo
            os.write(server, b"\x01\x04\x00")
            assert await read_exactly(client, 3) == b"\x01\x04\x00"

            cable.corrupt_next(1)
            os.write(client, b"?")
            await read_exactly(server, 1)
            os.write(server, b"\x01\x04\x00")
            assert await read_exactly(client, 3) == b"\xfe\x04\x00"
            assert cable.frames_corrupted == 1

            cable.cut(True)
            os.write(client, b"lost")
            assert await read_exactly(server, 4, within_s=0.05) == b""
            cable.cut(False)
            os.write(client, b"kept")
            assert await read_exactly(server, 4) == b"kept"
        finally:
            os.close(client)
            os.close(server)
    assert links_in(tmp_path) == []


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize(
    ("map_name", "phases", "energy_wh"),
    [("sdm630", 3, 0.1), ("abb_b23", 3, 10.0), ("sdm120", 1, 0.1)],
)
async def test_reads_the_worlds_values(
    bench: Bench, map_name: str, phases: int, energy_wh: float
) -> None:
    emulator = await bench.emulate(map_name, phases=phases)
    meter = bench.meter(map=map_name)
    assert isinstance(meter, EnergyMeter)
    idle = await meter.read()
    assert_matches(idle, bench.world.reading(1), energy_wh)
    assert idle.power_w == 0.0 and idle.current_a == (0.0, 0.0, 0.0)
    assert emulator.requests == len(meter.register_map.blocks)

    bench.charge(16.0)
    bench.world.advance(3600.0)
    charging = await meter.read()
    expected = bench.world.reading(1)
    assert_matches(charging, expected, energy_wh)
    assert charging.power_w == pytest.approx(16.0 * 230.0 * phases)
    assert charging.energy_wh - idle.energy_wh == pytest.approx(16.0 * 230.0 * phases, abs=20)
    assert bench.drain() == []


async def test_energy_never_goes_backwards(bench: Bench) -> None:
    await bench.emulate()
    meter = bench.meter()
    first = await meter.read()
    bench.world.connector(1).energy_wh -= 500.0  # a glitching meter
    assert (await meter.read()).energy_wh == first.energy_wh


# ---------------------------------------------------------------- failures


async def test_exception_answer_is_retried_then_meter_error(bench: Bench, tmp_path: Path) -> None:
    emulator = await bench.emulate("sdm630")
    beyond = tmp_path / "beyond.yaml"  # energy where the emulated SDM630 has no register
    beyond.write_text(
        "function: input\nphases: 1\nregisters:\n"
        "  power_l1: {address: 0x0C, type: float32, unit: W}\n"
        "  energy_import: {address: 0x0156, type: float32, unit: kWh}\n",
        encoding="utf-8",
    )
    meter = bench.meter(map=str(beyond), retries=2)
    with pytest.raises(MeterError, match="Modbus exception 2"):
        await meter.read()
    assert emulator.requests == 1 + 3  # first block once, second block 1 + 2 retries
    assert emulator.answers == 4
    assert bench.drain() == []  # one failure is not a loss yet


async def test_function_the_meter_lacks_is_an_exception(bench: Bench, tmp_path: Path) -> None:
    await bench.emulate("abb_b23")  # holding registers only
    as_input = tmp_path / "abb_input.yaml"
    as_input.write_text(
        "function: input\nphases: 3\nregisters:\n"
        "  energy_import: {address: 0x5000, type: uint64, scale: 0.01, unit: kWh}\n"
        "  power_total: {address: 0x5B14, type: int32, scale: 0.01, unit: W}\n",
        encoding="utf-8",
    )
    with pytest.raises(MeterError, match="Modbus exception 1"):
        await bench.meter(map=str(as_input), retries=0).read()


async def test_cut_line_loses_the_meter_after_loss_after_reads_and_recovers(
    bench: Bench,
) -> None:
    await bench.emulate()
    meter = bench.meter(loss_after=3)
    await meter.read()
    bench.cable.cut(True)
    for _ in range(2):
        with pytest.raises(MeterError, match="no valid answer"):
            await meter.read()
    assert bench.drain() == [] and not meter.lost
    with pytest.raises(MeterError):
        await meter.read()
    assert bench.drain() == [OFFLINE] and meter.lost
    with pytest.raises(MeterError):
        await meter.read()
    assert bench.drain() == []  # reported once

    bench.cable.cut(False)
    bench.charge()
    bench.world.advance(60.0)
    reading = await meter.read()
    assert bench.drain() == [BACK] and not meter.lost
    assert reading.energy_wh == pytest.approx(bench.world.reading(1).energy_wh, abs=0.1)


async def test_estimate_advances_energy_by_last_power_while_lost(bench: Bench) -> None:
    await bench.emulate()
    clock = ManualClock(0.0)
    meter = bench.meter(on_loss="estimate", loss_after=2, clock=clock)
    bench.charge()
    good = await meter.read()
    assert good.power_w == pytest.approx(FULL_POWER_W)

    bench.cable.cut(True)
    clock.advance(1800.0)
    with pytest.raises(MeterError):  # not lost yet
        await meter.read()
    estimate = await meter.read()
    assert bench.drain() == [OFFLINE]
    assert estimate.energy_wh == pytest.approx(good.energy_wh + FULL_POWER_W / 2)
    assert estimate.power_w == good.power_w and estimate.current_a == good.current_a
    clock.advance(1800.0)
    later = await meter.read()
    assert later.energy_wh == pytest.approx(good.energy_wh + FULL_POWER_W)

    bench.cable.cut(False)  # the world's own clock has not moved: the meter is behind
    back = await meter.read()
    assert bench.drain() == [BACK]
    assert back.energy_wh == later.energy_wh  # never backwards
    bench.world.advance(7200.0)
    ahead = await meter.read()
    assert ahead.energy_wh == pytest.approx(bench.world.reading(1).energy_wh, abs=0.1)
    assert ahead.energy_wh > later.energy_wh


async def test_estimate_without_a_good_reading_raises(bench: Bench) -> None:
    await bench.emulate()
    bench.cable.cut(True)
    meter = bench.meter(on_loss="estimate", loss_after=1, retries=0)
    with pytest.raises(MeterError):
        await meter.read()
    assert bench.drain() == [OFFLINE]


async def test_crc_errors_are_retried(bench: Bench) -> None:
    emulator = await bench.emulate()
    meter = bench.meter(retries=2)
    bench.cable.corrupt_next(2)
    reading = await meter.read()
    assert reading.energy_wh == pytest.approx(START_WH, abs=0.1)
    assert bench.cable.frames_corrupted == 2
    assert emulator.requests == 3 and emulator.answers == 3

    bench.cable.corrupt_next(3)
    with pytest.raises(MeterError, match="3 attempt"):
        await meter.read()
    assert bench.cable.frames_corrupted == 5


async def test_world_meter_offline_silences_the_emulator(bench: Bench) -> None:
    emulator = await bench.emulate()
    meter = bench.meter(retries=0)
    bench.world.set_fault(1, Fault.METER_OFFLINE, True)
    with pytest.raises(MeterError):
        await meter.read()
    assert emulator.requests == 1 and emulator.answers == 0
    bench.world.set_fault(1, Fault.METER_OFFLINE, False)
    assert (await meter.read()).energy_wh == pytest.approx(START_WH, abs=0.1)


async def test_meters_on_one_bus_share_the_port_and_only_their_id_answers(
    bench: Bench,
) -> None:
    emulator = await bench.emulate(device_id=5)
    stranger = bench.meter(device_id=1, retries=0)
    mine = bench.meter(device_id=5)
    twin = bench.meter(device_id=5)
    results = await asyncio.gather(
        stranger.read(), mine.read(), twin.read(), return_exceptions=True
    )
    assert isinstance(results[0], MeterError)
    assert all(isinstance(r, MeterReading) and r.frequency_hz == 50.0 for r in results[1:])
    assert emulator.requests == 3 and emulator.answers == 2
    mine.close()
    assert twin.connected  # still used by the others
    stranger.close()
    twin.close()
    assert not twin.connected


def test_meters_on_one_port_must_agree_on_its_settings() -> None:
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    first = ModbusMeter(1, events, port="/dev/ttyAMA7", baudrate=9600)
    assert first.port == "/dev/ttyAMA7"
    with pytest.raises(HalConfigError, match="same port"):
        ModbusMeter(2, events, port="/dev/ttyAMA7", baudrate=2400, device_id=2)


# ---------------------------------------------------------------- port life cycle


async def test_run_keeps_the_port_open_and_closes_it_when_cancelled(bench: Bench) -> None:
    await bench.emulate()
    meter = bench.meter()
    task = asyncio.create_task(meter.run())
    for _ in range(100):
        if meter.connected:
            break
        await asyncio.sleep(0.01)
    assert meter.connected
    await meter.read()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert not meter.connected
    await meter.read()  # reopened lazily
    assert meter.connected


async def test_missing_port_counts_as_failed_reads(tmp_path: Path) -> None:
    events: asyncio.Queue[HalEvent] = asyncio.Queue()
    meter = ModbusMeter(1, events, port=str(tmp_path / "ttyUSB9"), loss_after=2, timeout_s=0.1)
    for _ in range(2):
        with pytest.raises(MeterError, match="cannot open"):
            await meter.read()
    assert events.get_nowait() == OFFLINE
    task = asyncio.create_task(meter.run())
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()


@pytest.mark.parametrize(
    "options",
    [
        {"parity": "X"},
        {"stopbits": 3},
        {"device_id": 0},
        {"device_id": 248},
        {"timeout_s": 0},
        {"retries": -1},
        {"on_loss": "guess"},
        {"loss_after": 0},
        {"baudrate": True},
        {"map": "no_such_meter"},
        {"port": ""},
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"port": "/dev/ttyUSB0", **options}
    with pytest.raises(HalConfigError):
        ModbusMeter(1, asyncio.Queue(), **settings)
