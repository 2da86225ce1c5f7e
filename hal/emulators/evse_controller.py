"""Emulated pilot/proximity controller on CAN, backed by the simulated world.

``EmulatedEvseController`` plays the controller side of ``config/can/evse.dbc``
for one connector: every ``period_s`` it sends ``EVSE_Status`` with the
world's pilot state, the cable rating, the duty cycle it generates, the
connector's RCD / diode / over-temperature faults and the contactor's contacts; each
``EVSE_Command`` it receives sets the current the vehicle reads from the
PWM as the world's offer (0 when the PWM is disabled or the duty is not a
valid offer).

While ``Fault.EV_COMMUNICATION_LOST`` is active on the connector in the
world, it stops sending status (commands are still applied).
"""

from __future__ import annotations

import asyncio
import logging
import math

import can

from hal.can import busio, pwm
from hal.can.dbc import BadFrame, FrameCodec, check_standard_id, load
from hal.can.evse import (
    COMMAND_MESSAGE,
    COMMAND_SIGNALS,
    CONTACTOR_FEEDBACK,
    CP_DUTY_ACTUAL,
    CP_STATE,
    FAULT_DIODE_MISSING,
    FAULT_OVER_TEMPERATURE,
    FAULT_RCD_TRIP,
    PILOT_STATES,
    PP_AMPACITY,
    PWM_DUTY_SETPOINT,
    PWM_ENABLE,
    STATUS_MESSAGE,
    STATUS_SIGNALS,
)
from hal.errors import HalConfigError
from hal.interfaces import Fault
from hal.sim.world import World

log = logging.getLogger("hal.emulators.evse")


class EmulatedEvseController:
    """The controller end of the EVSE CAN link of ``connector_id``."""

    def __init__(
        self,
        world: World,
        bus: can.BusABC,
        connector_id: int,
        *,
        cable_rating_a: float | None = 32.0,
        status_id: int = 0x200,
        command_id: int = 0x201,
        period_s: float = 0.1,
        dbc: str = "evse",
    ) -> None:
        self._state = world.connector(connector_id)
        if cable_rating_a is not None and not (
            pwm.MIN_CURRENT_A <= cable_rating_a <= pwm.MAX_CURRENT_A
        ):
            raise HalConfigError(
                f"cable_rating_a: must be null or {pwm.MIN_CURRENT_A:g}..{pwm.MAX_CURRENT_A:g} A, "
                f"got {cable_rating_a!r}"
            )
        period = float(period_s)
        if not (math.isfinite(period) and period > 0.0):
            raise HalConfigError(f"period_s: must be a number > 0, got {period_s!r}")
        db = load(dbc)
        self._world = world
        self._bus = bus
        self._id = connector_id
        self._cable_rating_a = cable_rating_a
        self._period_s = period
        self._status = FrameCodec(
            db, STATUS_MESSAGE, check_standard_id("status_id", status_id), STATUS_SIGNALS
        )
        self._command = FrameCodec(
            db, COMMAND_MESSAGE, check_standard_id("command_id", command_id), COMMAND_SIGNALS
        )
        self._tx = busio.Transmitter(bus, f"emulated EVSE controller {connector_id}")
        self._duty: float | None = None
        self.commands_received = 0
        self.ignored_frames = 0

    @property
    def duty_percent(self) -> float | None:
        """Duty cycle generated now; None while the PWM is off."""
        return self._duty

    def status_values(self) -> dict[str, float]:
        """``EVSE_Status`` signal values from the world's state now."""
        self._world.step()
        faults = self._world.faults(self._id)
        return {
            CP_STATE: PILOT_STATES.index(self._state.cp_state),
            PP_AMPACITY: self._cable_rating_a or 0,
            CP_DUTY_ACTUAL: self._duty or 0.0,
            FAULT_RCD_TRIP: int(Fault.RCD_TRIP in faults),
            FAULT_DIODE_MISSING: int(Fault.DIODE_FAULT in faults),
            FAULT_OVER_TEMPERATURE: int(Fault.OVER_TEMPERATURE in faults),
            CONTACTOR_FEEDBACK: int(self._state.contact),
        }

    def send_status(self) -> bool:
        """Send one ``EVSE_Status`` now unless the link is down in the world."""
        if Fault.EV_COMMUNICATION_LOST in self._world.faults(self._id):
            return False
        return self._tx.send(self._status.encode(self.status_values()))

    async def run(self) -> None:
        """Send the status every ``period_s`` and apply commands, until cancelled."""
        loop = asyncio.get_running_loop()
        with busio.receive(self._bus, (self._command.frame_id,)) as reader:
            next_status = loop.time()
            while True:
                now = loop.time()
                if now >= next_status:
                    self.send_status()
                    next_status += self._period_s
                    if next_status <= now:
                        next_status = now + self._period_s
                try:
                    async with asyncio.timeout_at(next_status):
                        frame = await reader.get_message()
                except TimeoutError:
                    continue
                self._on_command(frame)

    def _on_command(self, frame: can.Message) -> None:
        try:
            values = self._command.decode(frame)
        except BadFrame as err:
            self.ignored_frames += 1
            log.warning("connector %d: ignoring command frame: %s", self._id, err)
            return
        self.commands_received += 1
        duty = values[PWM_DUTY_SETPOINT] if values[PWM_ENABLE] else None
        self._duty = duty
        current_a = pwm.current_for_duty(duty)
        if current_a != self._state.offered_a:
            self._world.record(self._state.evse_history, f"offer {current_a}")
            self._world.set_offer(self._id, current_a)
