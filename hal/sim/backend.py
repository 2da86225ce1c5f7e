"""The simulated backend: one coherent plant so the whole firmware runs on a laptop.

``build()`` is the factory ``hal.registry`` names for ``backend: simulated``.
The returned ``SimBackend`` offers, beyond ``HalBackend``:

- ``world``: the ``World`` (physics, ``advance(dt_s)``, ``step()``, ``now()``);
- ``devices[connector_id]``: the concrete ``SimDevices`` with their histories;
- ``plant``: the ``SimPlant`` (``PlantControl`` plus its own ``history``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from hal.errors import HalConfigError
from hal.interfaces import BoardSettings, ConnectorHardware, HalEvent
from hal.registry import BackendCheck, BackendFactory
from hal.sim.devices import SimBms, SimDevices, SimEvse, SimLock, SimMeter, SimRelay
from hal.sim.plant import SimPlant
from hal.sim.world import MAX_CURRENT_A, MIN_OFFER_A, Clock, World

log = logging.getLogger("hal.sim")


def number_option(
    name: str,
    value: object,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    null: str = "",
) -> float:
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    in_range = (number > low if low_open else number >= low) and number <= high
    if not (math.isfinite(number) and in_range):
        bounds = f"> {low:g}" if low_open else f">= {low:g}"
        if high != math.inf:
            bounds = f"between {low:g} and {high:g}"
        raise HalConfigError(f"hal.{name}: must be {null}a number {bounds}, got {value!r}")
    return number


def nullable_option(
    name: str,
    value: object,
    meaning: str,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
) -> float | None:
    if value is None:
        return None
    null = f"null ({meaning}) or "
    return number_option(name, value, low=low, high=high, low_open=low_open, null=null)


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Options of the simulated backend (the ``hal:`` mapping minus ``backend``)."""

    tick_s: float = 0.1
    relay_delay_s: float = 0.0
    lock_delay_s: float = 0.0
    cable_rating_a: float | None = 32.0  # None: fixed cable / unknown rating
    ev_max_current_a: float = 32.0
    battery_kwh: float | None = 60.0  # None: no battery model, no SoC
    meter_start_wh: float = 0.0  # energy register at start (a real meter keeps counting)

    @classmethod
    def parse(cls, options: Mapping[str, object]) -> SimOptions:
        """Validate ``options``; ``HalConfigError`` names ``hal.<option>`` and the problem."""
        get = option_getter(options, cls, "simulated")
        return cls(
            tick_s=number_option("tick_s", get("tick_s"), low=0.0, low_open=True),
            relay_delay_s=number_option("relay_delay_s", get("relay_delay_s"), low=0.0),
            lock_delay_s=number_option("lock_delay_s", get("lock_delay_s"), low=0.0),
            cable_rating_a=nullable_option(
                "cable_rating_a",
                get("cable_rating_a"),
                "fixed cable",
                low=MIN_OFFER_A,
                high=MAX_CURRENT_A,
            ),
            ev_max_current_a=number_option(
                "ev_max_current_a", get("ev_max_current_a"), low=0.0, high=MAX_CURRENT_A
            ),
            battery_kwh=nullable_option(
                "battery_kwh", get("battery_kwh"), "no SoC", low=0.0, low_open=True
            ),
            meter_start_wh=number_option("meter_start_wh", get("meter_start_wh"), low=0.0),
        )


def option_getter(
    options: Mapping[str, object], cls: type[Any], backend: str
) -> Callable[[str], object]:
    """Check ``options`` against the fields of dataclass ``cls``; name → value or default."""
    if not isinstance(options, Mapping):
        raise HalConfigError(f"hal: options must be a mapping, got {options!r}")
    known = {f.name for f in fields(cls)}
    for key in options:
        if key not in known:
            raise HalConfigError(
                f"hal.{key}: unknown option of the {backend} backend "
                f"(known: {', '.join(sorted(known))})"
            )
    default = cls()
    return lambda name: options.get(name, getattr(default, name))


def _check_station(connectors: int, board: BoardSettings) -> None:
    if isinstance(connectors, bool) or not isinstance(connectors, int) or connectors < 1:
        raise HalConfigError(f"connectors: must be a whole number >= 1, got {connectors!r}")
    if board.phases not in (1, 2, 3):
        raise HalConfigError(f"board.phases: must be 1, 2 or 3, got {board.phases!r}")
    volts = board.nominal_voltage_v
    if not (isinstance(volts, int | float) and math.isfinite(volts) and volts > 0):
        raise HalConfigError(f"board.nominal_voltage_v: must be a number > 0, got {volts!r}")


class SimBackend:
    """``HalBackend`` over a simulated ``World``; ``plant`` drives the far side."""

    def __init__(
        self,
        connectors: int,
        board: BoardSettings,
        options: SimOptions | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        _check_station(connectors, board)
        opts = options if options is not None else SimOptions()
        self.options = opts
        self.board = board
        self.world = World(
            connectors,
            board,
            ev_max_current_a=opts.ev_max_current_a,
            battery_kwh=opts.battery_kwh,
            meter_start_wh=opts.meter_start_wh,
            clock=clock,
        )
        self._events: asyncio.Queue[HalEvent] = asyncio.Queue()
        self._plant = SimPlant(self.world, self._events)
        devices: dict[int, SimDevices] = {}
        for cid in self.world.connector_ids:
            lock = SimLock(self.world, cid, delay_s=opts.lock_delay_s) if board.has_lock else None
            devices[cid] = SimDevices(
                connector_id=cid,
                relay=SimRelay(self.world, cid, delay_s=opts.relay_delay_s),
                evse=SimEvse(self.world, cid, cable_rating_a=opts.cable_rating_a),
                meter=SimMeter(self.world, cid),
                lock=lock,
                bms=SimBms(self.world, cid) if board.has_bms else None,
            )
        self.devices: Mapping[int, SimDevices] = MappingProxyType(devices)
        self._hardware: Mapping[int, ConnectorHardware] = MappingProxyType(
            {
                cid: ConnectorHardware(
                    connector_id=cid,
                    relay=d.relay,
                    evse=d.evse,
                    meter=d.meter,
                    lock=d.lock,
                    bms=d.bms,
                )
                for cid, d in devices.items()
            }
        )

    @property
    def connectors(self) -> Mapping[int, ConnectorHardware]:
        return self._hardware

    @property
    def events(self) -> asyncio.Queue[HalEvent]:
        return self._events

    @property
    def plant(self) -> SimPlant:
        return self._plant

    async def run(self) -> None:
        """Advance the physics every ``tick_s`` until cancelled."""
        log.info(
            "simulated plant running: %d connector(s), %d phase(s), tick %g s",
            len(self._hardware),
            self.board.phases,
            self.options.tick_s,
        )
        while True:
            self.world.step()
            await asyncio.sleep(self.options.tick_s)

    async def safe_state(self) -> None:
        """Stop offering and release every contactor coil at once; never raises."""
        for cid in self.world.connector_ids:
            try:
                state = self.world.connector(cid)
                self.world.record(state.evse_history, "offer 0.0 (safe_state)")
                self.world.set_offer(cid, 0.0)
                self.world.release_coil(cid, "open (safe_state)")
                if state.contact:
                    log.error("connector %d: contactor still closed in safe state (welded)", cid)
            except Exception:
                log.exception("connector %d: safe state failed", cid)


def build(
    options: Mapping[str, object],
    connectors: int,
    board: BoardSettings,
    *,
    clock: Clock = time.monotonic,
) -> SimBackend:
    """Factory for ``hal.registry``; ``clock`` lets tests inject a manual clock."""
    return SimBackend(connectors, board, SimOptions.parse(options), clock=clock)


def check(options: Mapping[str, object], connectors: int, board: BoardSettings) -> None:
    """What ``build`` refuses; the simulated plant opens nothing, so it is built and dropped."""
    SimBackend(connectors, board, SimOptions.parse(options))


_FACTORY: BackendFactory = build  # mypy: SimBackend must satisfy HalBackend
_CHECK: BackendCheck = check
