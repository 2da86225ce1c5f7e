"""EVSE controller of one connector behind a pilot/proximity controller on CAN.

The controller sends ``EVSE_Status`` cyclically (pilot state, cable rating,
measured duty, RCD, diode and temperature faults, contactor feedback); the host sends
``EVSE_Command`` (PWM duty setpoint and enable) on every change and again
every ``command_period_s`` from ``run()``, so a controller that restarts gets
the offer back. Frame layouts come from a DBC file (``config/can/evse.dbc``);
the identifiers are per connector so one bus serves several connectors.

Events go to the backend queue: ``PilotChanged`` when the reported pilot
changes, ``FaultChanged`` on edges of ``Fault_RCD_Trip`` (``RCD_TRIP``) and
``Fault_DiodeMissing`` (``DIODE_FAULT``) and ``Fault_OverTemperature``
(``OVER_TEMPERATURE``). When no valid status arrives for
``status_timeout_s``, the driver reports ``EV_COMMUNICATION_LOST``, withdraws
its offer (sends 0 A) and reports the pilot as F until a valid status
arrives again; the offer stays withdrawn after the recovery. Malformed
frames and frames with values outside the DBC ranges are logged and ignored;
they do not count as a status.
"""

from __future__ import annotations

import asyncio
import logging
import math

import can

from hal.can import busio, pwm
from hal.can.dbc import BadFrame, FrameCodec, check_standard_id, load
from hal.errors import HalConfigError
from hal.interfaces import Fault, FaultChanged, HalEvent, PilotChanged, PilotState

log = logging.getLogger("hal.can.evse")

STATUS_MESSAGE = "EVSE_Status"
COMMAND_MESSAGE = "EVSE_Command"
CP_STATE = "CP_State"
PP_AMPACITY = "PP_Ampacity"
CP_DUTY_ACTUAL = "CP_DutyActual"
FAULT_RCD_TRIP = "Fault_RCD_Trip"
FAULT_DIODE_MISSING = "Fault_DiodeMissing"
FAULT_OVER_TEMPERATURE = "Fault_OverTemperature"
CONTACTOR_FEEDBACK = "Contactor_Feedback"
PWM_DUTY_SETPOINT = "PWM_DutySetpoint"
PWM_ENABLE = "PWM_Enable"
STATUS_SIGNALS = (
    CP_STATE,
    PP_AMPACITY,
    CP_DUTY_ACTUAL,
    FAULT_RCD_TRIP,
    FAULT_DIODE_MISSING,
    FAULT_OVER_TEMPERATURE,
    CONTACTOR_FEEDBACK,
)
COMMAND_SIGNALS = (PWM_DUTY_SETPOINT, PWM_ENABLE)

# CP_State 0..5 in the order of the DBC value table.
PILOT_STATES: tuple[PilotState, ...] = (
    PilotState.A,
    PilotState.B,
    PilotState.C,
    PilotState.D,
    PilotState.E,
    PilotState.F,
)
STATUS_FAULTS: tuple[tuple[str, Fault], ...] = (
    (FAULT_RCD_TRIP, Fault.RCD_TRIP),
    (FAULT_DIODE_MISSING, Fault.DIODE_FAULT),
    (FAULT_OVER_TEMPERATURE, Fault.OVER_TEMPERATURE),
)


def _positive(name: str, value: float) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0.0):
        raise HalConfigError(f"{name}: must be a number > 0, got {value!r}")
    return number


def command_values(duty_percent: float | None) -> dict[str, float]:
    """``EVSE_Command`` signal values for a duty setpoint; None disables the PWM."""
    if duty_percent is None:
        return {PWM_DUTY_SETPOINT: 0.0, PWM_ENABLE: 0}
    return {PWM_DUTY_SETPOINT: duty_percent, PWM_ENABLE: 1}


class CanEvseController:
    """``hal.interfaces.EvseController`` over ``EVSE_Status`` / ``EVSE_Command`` frames."""

    def __init__(
        self,
        connector_id: int,
        events: asyncio.Queue[HalEvent],
        bus: can.BusABC,
        *,
        dbc: str = "evse",
        status_id: int = 0x200,
        command_id: int = 0x201,
        status_timeout_s: float = 0.35,
        command_period_s: float = 0.1,
    ) -> None:
        db = load(dbc)
        status_id = check_standard_id("status_id", status_id)
        command_id = check_standard_id("command_id", command_id)
        if status_id == command_id:
            raise HalConfigError(f"status_id and command_id must differ, both are {status_id:#x}")
        self.connector_id = connector_id
        self._events = events
        self._bus = bus
        self._status = FrameCodec(db, STATUS_MESSAGE, status_id, STATUS_SIGNALS)
        self._command = FrameCodec(db, COMMAND_MESSAGE, command_id, COMMAND_SIGNALS)
        self._status_timeout_s = _positive("status_timeout_s", status_timeout_s)
        self._command_period_s = _positive("command_period_s", command_period_s)
        self._tx = busio.Transmitter(bus, f"connector {connector_id} EVSE controller")
        self._cp_state = PilotState.A
        self._cable_rating_a: float | None = None
        self._duty_actual: float | None = None
        self._contactor: bool | None = None
        self._faults = dict.fromkeys((fault for _, fault in STATUS_FAULTS), False)
        self._comm_lost = False
        self._offered_a = 0.0
        self._duty: float | None = None
        self._deadline = math.inf
        self._bad_run = 0
        self.ignored_frames = 0
        self.status_frames = 0  # valid status frames taken so far

    # ------------------------------------------------------------ EvseController

    @property
    def pilot(self) -> PilotState:
        """Pilot state of the latest valid status; F while the controller is silent."""
        return PilotState.F if self._comm_lost else self._cp_state

    @property
    def cable_rating_a(self) -> float | None:
        """Cable rating from ``PP_Ampacity``; None before a status or when below 6 A (no cable)."""
        return self._cable_rating_a

    @property
    def offered_current_a(self) -> float:
        return self._offered_a

    async def offer_current(self, current_a: float) -> None:
        value = pwm.check_offer(current_a)
        duty = pwm.duty_setpoint(value)
        if value != self._offered_a:
            log.info("connector %d: offering %g A (duty %s %%)", self.connector_id, value, duty)
        self._offered_a = value
        self._duty = duty
        self._send_command()

    # ------------------------------------------------------------ extra state

    @property
    def communication_lost(self) -> bool:
        """True while no valid status has arrived for ``status_timeout_s``."""
        return self._comm_lost

    @property
    def duty_setpoint_percent(self) -> float | None:
        """Duty cycle commanded to the controller; None when the PWM is off."""
        return self._duty

    @property
    def duty_actual_percent(self) -> float | None:
        """Duty cycle the controller measures (``CP_DutyActual``); None before a status."""
        return self._duty_actual

    @property
    def contactor_feedback(self) -> bool | None:
        """Auxiliary contact reported by the controller; None before a status."""
        return self._contactor

    @property
    def faults(self) -> frozenset[Fault]:
        """Faults active now as reported by the controller (incl. lost communication)."""
        active = {fault for fault, on in self._faults.items() if on}
        if self._comm_lost:
            active.add(Fault.EV_COMMUNICATION_LOST)
        return frozenset(active)

    # ------------------------------------------------------------ background work

    async def run(self) -> None:
        """Read status frames, watch their timing and repeat the command, until cancelled."""
        loop = asyncio.get_running_loop()
        with busio.receive(self._bus, (self._status.frame_id,)) as reader:
            now = loop.time()
            self._deadline = now + self._status_timeout_s
            next_command = now
            while True:
                now = loop.time()
                if now >= next_command:
                    self._send_command()
                    next_command += self._command_period_s
                    if next_command <= now:
                        next_command = now + self._command_period_s
                if not self._comm_lost and now >= self._deadline:
                    self._lose_communication()
                wake = next_command if self._comm_lost else min(next_command, self._deadline)
                try:
                    async with asyncio.timeout_at(wake):
                        frame = await reader.get_message()
                except TimeoutError:
                    continue
                self._on_frame(frame, loop.time())

    # ------------------------------------------------------------ internals

    def _send_command(self) -> None:
        self._tx.send(self._command.encode(command_values(self._duty)))

    def _emit(self, event: HalEvent) -> None:
        self._events.put_nowait(event)

    def _on_frame(self, frame: can.Message, now: float) -> None:
        try:
            values = self._status.decode(frame)
            cp_index = int(values[CP_STATE])
            if not 0 <= cp_index < len(PILOT_STATES):
                raise BadFrame(f"{STATUS_MESSAGE}.{CP_STATE}: no pilot state {cp_index}")
        except BadFrame as err:
            self.ignored_frames += 1
            self._bad_run += 1
            level = logging.WARNING if self._bad_run == 1 else logging.DEBUG
            log.log(level, "connector %d: ignoring status frame: %s", self.connector_id, err)
            return
        self._bad_run = 0
        self.status_frames += 1
        self._deadline = now + self._status_timeout_s
        before = self.pilot
        if self._comm_lost:
            self._comm_lost = False
            log.warning("connector %d: EVSE controller status is back", self.connector_id)
            self._emit(FaultChanged(self.connector_id, Fault.EV_COMMUNICATION_LOST, False))
        rating = values[PP_AMPACITY]
        self._cable_rating_a = rating if rating >= pwm.MIN_CURRENT_A else None
        self._duty_actual = values[CP_DUTY_ACTUAL]
        self._contactor = bool(values[CONTACTOR_FEEDBACK])
        for signal, fault in STATUS_FAULTS:
            active = bool(values[signal])
            if active != self._faults[fault]:
                self._faults[fault] = active
                log.warning(
                    "connector %d: %s %s",
                    self.connector_id,
                    fault.value,
                    "active" if active else "cleared",
                )
                self._emit(FaultChanged(self.connector_id, fault, active))
        self._cp_state = PILOT_STATES[cp_index]
        if self.pilot is not before:
            log.info("connector %d: pilot %s -> %s", self.connector_id, before, self.pilot)
            self._emit(PilotChanged(self.connector_id, self.pilot))

    def _lose_communication(self) -> None:
        before = self.pilot
        self._comm_lost = True
        log.error(
            "connector %d: no EVSE controller status for %g s; withdrawing the offer",
            self.connector_id,
            self._status_timeout_s,
        )
        self._emit(FaultChanged(self.connector_id, Fault.EV_COMMUNICATION_LOST, True))
        if self._offered_a != 0.0 or self._duty is not None:
            self._offered_a = 0.0
            self._duty = None
            self._send_command()
        if self.pilot is not before:
            self._emit(PilotChanged(self.connector_id, self.pilot))
