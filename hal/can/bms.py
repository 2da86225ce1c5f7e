"""Vehicle battery data of one DC connector from the CHAdeMO vehicle frames.

The vehicle sends, every 100 ms while a session is open, ``EV_Parameters``
(0x100: minimum current, battery voltage window), ``EV_ChargeTime`` (0x101:
time limits, battery capacity) and ``EV_ChargeRequest`` (0x102: protocol,
target voltage, current request, fault bits, status bits, state of charge).
Frame layouts come from ``config/can/chademo.dbc``; identifiers can be moved
per connector.

Every value is None before its frame arrives and again once its frame has
been missing for ``stale_after_s`` (the vehicle left or went silent).
``EV_SoC`` 255 means "not available" and reads as None. Malformed frames and
frames with values outside the DBC ranges are logged and ignored.

The driver reports no events: CHAdeMO session faults are the charging
logic's business; they are exposed as ``fault_flags`` and ``status_flags``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math

import can

from hal.can import busio
from hal.can.dbc import BadFrame, FrameCodec, check_standard_id, load
from hal.errors import HalConfigError
from hal.interfaces import HalEvent

log = logging.getLogger("hal.can.bms")

PARAMETERS_MESSAGE = "EV_Parameters"
CHARGE_TIME_MESSAGE = "EV_ChargeTime"
REQUEST_MESSAGE = "EV_ChargeRequest"

MIN_CURRENT = "EV_MinCurrent"
MIN_BATTERY_VOLTAGE = "EV_MinBatteryVoltage"
MAX_BATTERY_VOLTAGE = "EV_MaxBatteryVoltage"
CHARGED_RATE_REF = "EV_ChargedRateRef"
MAX_CHARGE_TIME_10S = "EV_MaxChargeTime10s"
MAX_CHARGE_TIME_MIN = "EV_MaxChargeTimeMin"
EST_CHARGE_TIME_MIN = "EV_EstChargeTimeMin"
BATTERY_CAPACITY = "EV_BatteryCapacity"
PROTOCOL_NUMBER = "EV_ProtocolNumber"
TARGET_VOLTAGE = "EV_TargetVoltage"
CURRENT_REQUEST = "EV_CurrentRequest"
SOC = "EV_SoC"
SOC_NOT_AVAILABLE = 255


class ChademoFault(enum.IntFlag):
    """Fault bits of ``EV_ChargeRequest`` byte 4."""

    NONE = 0
    OVERVOLTAGE = 0x01
    UNDERVOLTAGE = 0x02
    CURRENT_DEVIATION = 0x04
    HIGH_TEMPERATURE = 0x08
    VOLTAGE_DEVIATION = 0x10


class ChademoStatus(enum.IntFlag):
    """Status bits of ``EV_ChargeRequest`` byte 5."""

    NONE = 0
    CHARGING_ENABLED = 0x01
    NOT_IN_PARK = 0x02
    SYSTEM_FAULT = 0x04
    CONTACTOR_OPEN = 0x08
    STOP_REQUEST = 0x10


FAULT_SIGNALS: tuple[tuple[str, ChademoFault], ...] = (
    ("EV_Fault_Overvoltage", ChademoFault.OVERVOLTAGE),
    ("EV_Fault_Undervoltage", ChademoFault.UNDERVOLTAGE),
    ("EV_Fault_CurrentDeviation", ChademoFault.CURRENT_DEVIATION),
    ("EV_Fault_HighTemperature", ChademoFault.HIGH_TEMPERATURE),
    ("EV_Fault_VoltageDeviation", ChademoFault.VOLTAGE_DEVIATION),
)
STATUS_SIGNALS: tuple[tuple[str, ChademoStatus], ...] = (
    ("EV_Status_ChargingEnabled", ChademoStatus.CHARGING_ENABLED),
    ("EV_Status_NotInPark", ChademoStatus.NOT_IN_PARK),
    ("EV_Status_SystemFault", ChademoStatus.SYSTEM_FAULT),
    ("EV_Status_ContactorOpen", ChademoStatus.CONTACTOR_OPEN),
    ("EV_Status_StopRequest", ChademoStatus.STOP_REQUEST),
)
MESSAGE_SIGNALS: dict[str, tuple[str, ...]] = {
    PARAMETERS_MESSAGE: (MIN_CURRENT, MIN_BATTERY_VOLTAGE, MAX_BATTERY_VOLTAGE, CHARGED_RATE_REF),
    CHARGE_TIME_MESSAGE: (
        MAX_CHARGE_TIME_10S,
        MAX_CHARGE_TIME_MIN,
        EST_CHARGE_TIME_MIN,
        BATTERY_CAPACITY,
    ),
    REQUEST_MESSAGE: (
        PROTOCOL_NUMBER,
        TARGET_VOLTAGE,
        CURRENT_REQUEST,
        *(name for name, _ in FAULT_SIGNALS),
        *(name for name, _ in STATUS_SIGNALS),
        SOC,
    ),
}


class ChademoBms:
    """``hal.interfaces.Bms`` plus the CHAdeMO request data of one vehicle."""

    def __init__(
        self,
        connector_id: int,
        events: asyncio.Queue[HalEvent],
        bus: can.BusABC,
        *,
        dbc: str = "chademo",
        parameters_id: int = 0x100,
        charge_time_id: int = 0x101,
        request_id: int = 0x102,
        stale_after_s: float = 1.0,
    ) -> None:
        db = load(dbc)
        ids = {
            PARAMETERS_MESSAGE: check_standard_id("parameters_id", parameters_id),
            CHARGE_TIME_MESSAGE: check_standard_id("charge_time_id", charge_time_id),
            REQUEST_MESSAGE: check_standard_id("request_id", request_id),
        }
        if len(set(ids.values())) != len(ids):
            raise HalConfigError(f"CHAdeMO frame ids must differ, got {ids}")
        stale = float(stale_after_s)
        if not (math.isfinite(stale) and stale > 0.0):
            raise HalConfigError(f"stale_after_s: must be a number > 0, got {stale_after_s!r}")
        self.connector_id = connector_id
        self._events = events
        self._bus = bus
        self._stale_after_s = stale
        self._codecs = {
            frame_id: FrameCodec(db, name, frame_id, MESSAGE_SIGNALS[name])
            for name, frame_id in ids.items()
        }
        self._values: dict[str, dict[str, float]] = {}
        self._deadlines: dict[str, float] = {}
        self._bad_run = 0
        self.ignored_frames = 0

    # ------------------------------------------------------------ Bms

    @property
    def soc_percent(self) -> float | None:
        """State of charge from ``EV_SoC``; None while unknown or not available."""
        soc = self._get(REQUEST_MESSAGE, SOC)
        if soc is None or soc > 100.0:
            return None
        return soc

    # ------------------------------------------------------------ EV_ChargeRequest

    @property
    def protocol_number(self) -> int | None:
        value = self._get(REQUEST_MESSAGE, PROTOCOL_NUMBER)
        return None if value is None else int(value)

    @property
    def target_voltage_v(self) -> float | None:
        return self._get(REQUEST_MESSAGE, TARGET_VOLTAGE)

    @property
    def current_request_a(self) -> float | None:
        return self._get(REQUEST_MESSAGE, CURRENT_REQUEST)

    @property
    def fault_flags(self) -> ChademoFault | None:
        """Vehicle fault bits; None while no request frame is current."""
        values = self._values.get(REQUEST_MESSAGE)
        if values is None:
            return None
        flags = ChademoFault.NONE
        for name, flag in FAULT_SIGNALS:
            if values[name]:
                flags |= flag
        return flags

    @property
    def status_flags(self) -> ChademoStatus | None:
        """Vehicle status bits; None while no request frame is current."""
        values = self._values.get(REQUEST_MESSAGE)
        if values is None:
            return None
        flags = ChademoStatus.NONE
        for name, flag in STATUS_SIGNALS:
            if values[name]:
                flags |= flag
        return flags

    @property
    def stop_request(self) -> bool:
        """The vehicle asks to stop charging (False while unknown)."""
        flags = self.status_flags
        return flags is not None and ChademoStatus.STOP_REQUEST in flags

    @property
    def charging_enabled(self) -> bool:
        """The vehicle allows charging (False while unknown)."""
        flags = self.status_flags
        return flags is not None and ChademoStatus.CHARGING_ENABLED in flags

    # ------------------------------------------------------------ EV_Parameters / EV_ChargeTime

    @property
    def min_current_a(self) -> float | None:
        return self._get(PARAMETERS_MESSAGE, MIN_CURRENT)

    @property
    def max_battery_voltage_v(self) -> float | None:
        return self._get(PARAMETERS_MESSAGE, MAX_BATTERY_VOLTAGE)

    @property
    def battery_capacity_kwh(self) -> float | None:
        return self._get(CHARGE_TIME_MESSAGE, BATTERY_CAPACITY)

    # ------------------------------------------------------------ background work

    async def run(self) -> None:
        """Read the vehicle frames and forget them once stale, until cancelled."""
        loop = asyncio.get_running_loop()
        with busio.receive(self._bus, tuple(self._codecs)) as reader:
            while True:
                self._expire(loop.time())
                wake = min(self._deadlines.values(), default=math.inf)
                try:
                    if math.isinf(wake):
                        frame = await reader.get_message()
                    else:
                        async with asyncio.timeout_at(wake):
                            frame = await reader.get_message()
                except TimeoutError:
                    continue
                self._on_frame(frame, loop.time())

    # ------------------------------------------------------------ internals

    def _get(self, message: str, signal: str) -> float | None:
        values = self._values.get(message)
        return None if values is None else values[signal]

    def _expire(self, now: float) -> None:
        for name, deadline in list(self._deadlines.items()):
            if now >= deadline:
                del self._deadlines[name]
                self._values.pop(name, None)
                log.info("connector %d: CHAdeMO %s no longer received", self.connector_id, name)

    def _on_frame(self, frame: can.Message, now: float) -> None:
        codec = self._codecs[frame.arbitration_id]
        try:
            values = codec.decode(frame)
        except BadFrame as err:
            self.ignored_frames += 1
            self._bad_run += 1
            level = logging.WARNING if self._bad_run == 1 else logging.DEBUG
            log.log(level, "connector %d: ignoring CHAdeMO frame: %s", self.connector_id, err)
            return
        self._bad_run = 0
        if codec.name not in self._values:
            log.info("connector %d: CHAdeMO %s received", self.connector_id, codec.name)
        self._values[codec.name] = values
        self._deadlines[codec.name] = now + self._stale_after_s
