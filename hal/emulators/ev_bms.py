"""Emulated CHAdeMO vehicle on CAN, backed by the simulated world.

``EmulatedChademoVehicle`` sends the vehicle frames of
``config/can/chademo.dbc`` for one connector every ``period_s`` while a
vehicle is plugged in the world (pilot not A): ``EV_Parameters`` (0x100),
``EV_ChargeTime`` (0x101) and ``EV_ChargeRequest`` (0x102), whose state of
charge is the world's (255 "not available" while the world has none, rounded
to whole percent otherwise). The vehicle requests its maximum current while
its pilot requests energy and the battery is not full, and asks to stop once
it is full.
"""

from __future__ import annotations

import asyncio
import math

import can

from hal.can import busio
from hal.can.bms import (
    BATTERY_CAPACITY,
    CHARGE_TIME_MESSAGE,
    CHARGED_RATE_REF,
    CURRENT_REQUEST,
    EST_CHARGE_TIME_MIN,
    FAULT_SIGNALS,
    MAX_BATTERY_VOLTAGE,
    MAX_CHARGE_TIME_10S,
    MAX_CHARGE_TIME_MIN,
    MESSAGE_SIGNALS,
    MIN_BATTERY_VOLTAGE,
    MIN_CURRENT,
    PARAMETERS_MESSAGE,
    PROTOCOL_NUMBER,
    REQUEST_MESSAGE,
    SOC,
    SOC_NOT_AVAILABLE,
    STATUS_SIGNALS,
    TARGET_VOLTAGE,
    ChademoStatus,
)
from hal.can.dbc import FrameCodec, check_standard_id, load
from hal.errors import HalConfigError
from hal.interfaces import PilotState
from hal.sim.world import ConnectorState, World

PROTOCOL = 2
MAX_CHARGE_TIME_MINUTES = 90
USE_MINUTES = 255
BYTE_MAX = 254
VOLTAGE_MAX_V = 65535


class EmulatedChademoVehicle:
    """The vehicle end of the CHAdeMO CAN link of ``connector_id``."""

    def __init__(
        self,
        world: World,
        bus: can.BusABC,
        connector_id: int,
        period_s: float = 0.1,
        *,
        parameters_id: int = 0x100,
        charge_time_id: int = 0x101,
        request_id: int = 0x102,
        target_voltage_v: float = 410.0,
        min_battery_voltage_v: float = 300.0,
        max_battery_voltage_v: float = 435.0,
        dbc: str = "chademo",
    ) -> None:
        self._state = world.connector(connector_id)
        period = float(period_s)
        if not (math.isfinite(period) and period > 0.0):
            raise HalConfigError(f"period_s: must be a number > 0, got {period_s!r}")
        db = load(dbc)
        self._world = world
        self._bus = bus
        self._id = connector_id
        self._period_s = period
        for name, volts in (
            ("target_voltage_v", target_voltage_v),
            ("min_battery_voltage_v", min_battery_voltage_v),
            ("max_battery_voltage_v", max_battery_voltage_v),
        ):
            if not (math.isfinite(volts) and 0.0 <= volts <= VOLTAGE_MAX_V):
                raise HalConfigError(f"{name}: must be 0..{VOLTAGE_MAX_V} V, got {volts!r}")
        self.target_voltage_v = target_voltage_v
        self.min_battery_voltage_v = min_battery_voltage_v
        self.max_battery_voltage_v = max_battery_voltage_v
        ids = {
            PARAMETERS_MESSAGE: check_standard_id("parameters_id", parameters_id),
            CHARGE_TIME_MESSAGE: check_standard_id("charge_time_id", charge_time_id),
            REQUEST_MESSAGE: check_standard_id("request_id", request_id),
        }
        self._codecs = {
            name: FrameCodec(db, name, frame_id, MESSAGE_SIGNALS[name])
            for name, frame_id in ids.items()
        }
        self._tx = busio.Transmitter(bus, f"emulated CHAdeMO vehicle {connector_id}")

    def frame_values(self) -> dict[str, dict[str, float]] | None:
        """Signal values of the three frames per message name; None while unplugged."""
        self._world.step()
        state = self._state
        if state.cp_state is PilotState.A:
            return None
        full = state.soc is not None and state.soc >= 100.0
        requesting = state.cp_state.requests_energy and not full
        request_a = min(state.ev_max_current_a, 255.0) if requesting else 0.0
        status = ChademoStatus.NONE
        if requesting:
            status |= ChademoStatus.CHARGING_ENABLED
        else:
            status |= ChademoStatus.CONTACTOR_OPEN
        if full:
            status |= ChademoStatus.STOP_REQUEST
        request: dict[str, float] = {
            PROTOCOL_NUMBER: PROTOCOL,
            TARGET_VOLTAGE: self.target_voltage_v,
            CURRENT_REQUEST: round(request_a),
            SOC: _soc_byte(state.soc),
        }
        request.update((name, 0) for name, _ in FAULT_SIGNALS)
        request.update((name, int(flag in status)) for name, flag in STATUS_SIGNALS)
        capacity_kwh = 0.0 if self._world.battery_wh is None else self._world.battery_wh / 1000.0
        return {
            PARAMETERS_MESSAGE: {
                MIN_CURRENT: 0,
                MIN_BATTERY_VOLTAGE: self.min_battery_voltage_v,
                MAX_BATTERY_VOLTAGE: self.max_battery_voltage_v,
                CHARGED_RATE_REF: 100,
            },
            CHARGE_TIME_MESSAGE: {
                MAX_CHARGE_TIME_10S: USE_MINUTES * 10,
                MAX_CHARGE_TIME_MIN: MAX_CHARGE_TIME_MINUTES,
                EST_CHARGE_TIME_MIN: self._estimate_minutes(state, request_a),
                BATTERY_CAPACITY: min(capacity_kwh, 6553.5),
            },
            REQUEST_MESSAGE: request,
        }

    def send_frames(self) -> int:
        """Send the three frames now (none while unplugged); the number sent."""
        values = self.frame_values()
        if values is None:
            return 0
        return sum(
            self._tx.send(self._codecs[name].encode(signals)) for name, signals in values.items()
        )

    async def run(self) -> None:
        """Send the vehicle frames every ``period_s`` until cancelled."""
        loop = asyncio.get_running_loop()
        next_send = loop.time()
        while True:
            self.send_frames()
            next_send += self._period_s
            now = loop.time()
            if next_send <= now:
                next_send = now + self._period_s
            await asyncio.sleep(next_send - now)

    def _estimate_minutes(self, state: ConnectorState, request_a: float) -> int:
        battery_wh = self._world.battery_wh
        if state.soc is None or battery_wh is None or request_a <= 0.0:
            return 0
        board = self._world.board
        power_w = request_a * board.nominal_voltage_v * board.phases
        remaining_wh = max(0.0, 100.0 - state.soc) / 100.0 * battery_wh
        minutes = remaining_wh / power_w * 60.0
        # A vanishing request (a denormal current) makes that infinite: the byte's maximum.
        return BYTE_MAX if not math.isfinite(minutes) else min(BYTE_MAX, math.ceil(minutes))


def _soc_byte(soc: float | None) -> int:
    if soc is None or not math.isfinite(soc):
        return SOC_NOT_AVAILABLE
    return min(100, max(0, math.floor(soc + 0.5)))
