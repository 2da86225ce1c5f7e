"""The world around the charge point, as the bench scenarios act on it.

A scenario never touches the station except over OCPP (through the bench CSMS) and through a
:class:`PlantDriver`: the vehicle (its control pilot state), the RFID card on the reader, the
faults a bench can cause, and the one thing it must be able to see without OCPP, whether the
contactor is closed (a session that runs while the station is offline shows nowhere else).

Implementations here:

- :class:`LocalApiPlant`: the simulated or emulated plant behind the station's local API
  (``/api/v1/sim/...``), for CI and a laptop.
- :class:`OperatorPlant`: a person at a real bench, asked on the terminal.

To drive a real bench unattended (an IEC 61851 EV simulator with relay-switched pilot
resistors, an RFID card on a servo, relays that cause the faults), write a class with these
four coroutines and run the scenarios with it (:func:`hil.runner.run_station`, an example
is in hil/README.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from hil.results import NotApplicable

__all__ = [
    "FAULT_INSTRUCTIONS",
    "PILOT_INSTRUCTIONS",
    "LocalApiPlant",
    "OperatorPlant",
    "PlantDriver",
    "PlantError",
]

PILOT_STATES = ("A", "B", "C", "D", "E", "F")


class PlantError(RuntimeError):
    """The plant could not do what was asked (not an outcome of the station's behaviour)."""


class PlantDriver(Protocol):
    """What a bench scenario may ask of the world around the station.

    Connector ids are OCPP's (1..N; 0 = the station as a whole, for station-wide faults).
    Every coroutine returns once the action has been done (not once the station reacted) and
    raises :class:`PlantError` when it cannot be done, or :class:`hil.results.NotApplicable`
    when this bench has no means to do it (the scenario is then reported N/A).
    """

    async def set_pilot(self, connector: int, state: str) -> None:
        """Put the vehicle on ``connector`` in IEC 61851 control pilot state ``state`` (A-F):
        A unplugged, B plugged and not asking for energy, C/D asking for energy, E/F errors."""
        ...

    async def tap(self, uid: str, connector: int | None = None) -> None:
        """Present the idTag ``uid`` once, as given, on ``connector``'s reader if given."""
        ...

    async def set_fault(self, fault: str, active: bool, connector: int) -> None:
        """Cause (``active``) or clear a fault named as in ``hal.interfaces.Fault``."""
        ...

    async def wait_relay(self, connector: int, closed: bool, timeout: float) -> None:
        """Return once ``connector``'s contactor is closed (or open); PlantError after
        ``timeout`` seconds."""
        ...


class LocalApiPlant:
    """The simulated or emulated plant behind a station's local API (``.../api/v1``)."""

    def __init__(self, api: str, *, poll_s: float = 0.05) -> None:
        self.api = api.rstrip("/")
        self.poll_s = poll_s

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with aiohttp.ClientSession() as s, s.post(self.api + path, json=body) as r:
                data = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, OSError, ValueError) as err:
            raise PlantError(f"POST {self.api}{path}: {type(err).__name__}: {err}") from err
        if status == 404 and isinstance(data, dict) and "no simulated" in str(data.get("error")):
            raise PlantError(
                f"{self.api} has no simulated or emulated plant: run with --operator "
                "(or a driver of the bench's own) against real hardware"
            )
        if status != 200:
            raise PlantError(f"POST {path} {body}: HTTP {status} {data}")
        result: dict[str, Any] = data if isinstance(data, dict) else {}
        return result

    async def status(self) -> dict[str, Any]:
        try:
            async with aiohttp.ClientSession() as s, s.get(self.api + "/status") as r:
                r.raise_for_status()
                data: dict[str, Any] = await r.json()
                return data
        except (aiohttp.ClientError, OSError, ValueError) as err:
            raise PlantError(f"GET {self.api}/status: {type(err).__name__}: {err}") from err

    async def sim(self, connector: int = 1, **body: Any) -> dict[str, Any]:
        """Any of ``cp_state``, ``ev_max_current_a``, ``soc`` of the simulated vehicle."""
        return await self.post(f"/sim/connectors/{connector}", body)

    async def set_pilot(self, connector: int, state: str) -> None:
        await self.sim(connector, cp_state=state)

    async def tap(self, uid: str, connector: int | None = None) -> None:
        body: dict[str, Any] = {"uid": uid}
        if connector is not None:
            body["connector"] = connector
        await self.post("/sim/rfid", body)

    async def set_fault(self, fault: str, active: bool, connector: int) -> None:
        await self.post(f"/sim/faults/{connector}", {"fault": fault, "active": active})

    async def wait_relay(self, connector: int, closed: bool, timeout: float) -> None:
        # The plant lives inside the daemon: its contactor is what the status reports, the
        # auxiliary contact where there is one (a contactor follows its coil with a delay).
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            connectors = (await self.status())["connectors"]
            if connector > len(connectors):
                raise PlantError(f"the station has no connector {connector}")
            c = connectors[connector - 1]
            last = c.get("relay_feedback")
            if last is None:
                last = c["relay_closed"]
            if last is closed:
                return
            await asyncio.sleep(self.poll_s)
        want = "closed" if closed else "open"
        raise PlantError(f"connector {connector} contactor not {want} after {timeout} s ({last})")


PILOT_INSTRUCTIONS: dict[str, str] = {
    "A": "unplug the vehicle (EV simulator: state A)",
    "B": "plug the vehicle in, not asking for energy (EV simulator: state B)",
    "C": "make the vehicle ask for energy (EV simulator: state C)",
    "D": "make the vehicle ask for energy with ventilation (EV simulator: state D)",
    "E": "short the control pilot to PE (EV simulator: state E / error)",
    "F": "set the EV simulator to state F",
}

# How to cause (True) and clear (False) each fault on the reference bench (hil/README.md).
FAULT_INSTRUCTIONS: dict[str, tuple[str, str]] = {
    "rcd_trip": (
        "trip the residual current device (its test button)",
        "reset the residual current device",
    ),
    "contactor_welded": (
        "make the contactor's auxiliary contact read closed while the coil is off "
        "(bridge the feedback input to GND)",
        "remove the bridge on the contactor feedback input",
    ),
    "contactor_failed_to_close": (
        "disconnect the contactor coil (the relay HAT output stays, the contactor does not close)",
        "reconnect the contactor coil",
    ),
    "lock_failure": (
        "disconnect the cable lock's position switch (the lock can no longer report locked)",
        "reconnect the cable lock's position switch",
    ),
    "overcurrent": (
        "make the vehicle draw more than offered (EV simulator load above the offer + margin)",
        "bring the load back to at most the offered current",
    ),
    "meter_offline": (
        "disconnect the energy meter's RS-485 A/B wires",
        "reconnect the energy meter's RS-485 A/B wires",
    ),
    "reader_offline": (
        "disconnect the RFID reader (its UART or its power)",
        "reconnect the RFID reader",
    ),
    "diode_fault": (
        "short the EV simulator's pilot diode (diode fault switch)",
        "remove the diode short",
    ),
    "ev_communication_lost": (
        "disconnect the CAN bus between the board and the EVSE pilot controller",
        "reconnect the CAN bus",
    ),
    "over_temperature": (
        "raise the EVSE controller's over-temperature input (heat the sensor or its test input)",
        "clear the over-temperature input",
    ),
    "emergency_stop": ("press the emergency stop", "release the emergency stop"),
    "tamper": ("open the enclosure (the tamper switch)", "close the enclosure"),
}

SKIP_ANSWERS = frozenset({"n/a", "na", "skip", "s"})


class OperatorPlant:
    """A person at a real bench: every action is a prompt, done when they press Enter.

    ``prompt`` is called with the instruction and returns what was typed (``input`` by
    default). It runs in a worker thread so the bench CSMS keeps answering the station while
    the operator acts. Typing ``n/a`` (or ``skip``) says this bench cannot do it: the
    scenario is reported N/A.
    """

    def __init__(self, prompt: Callable[[str], str] = input, *, card_hint: str = "") -> None:
        self._prompt = prompt
        self.card_hint = card_hint
        self.asked: list[str] = []

    async def ask(self, instruction: str) -> None:
        text = f"\n▶ {instruction}\n  then press Enter (or type n/a if this bench cannot): "
        self.asked.append(instruction)
        try:
            answer = await asyncio.to_thread(self._prompt, text)
        except EOFError as err:
            raise PlantError(f"no operator to ask (end of input): {instruction}") from err
        if answer.strip().lower() in SKIP_ANSWERS:
            raise NotApplicable(f"the operator could not: {instruction}")

    async def set_pilot(self, connector: int, state: str) -> None:
        if state not in PILOT_STATES:
            raise PlantError(f"pilot state must be one of A..F, not {state!r}")
        await self.ask(f"connector {connector}: {PILOT_INSTRUCTIONS[state]}")

    async def tap(self, uid: str, connector: int | None = None) -> None:
        where = "the reader" if connector is None else f"connector {connector}'s reader"
        hint = f" ({self.card_hint})" if self.card_hint else ""
        await self.ask(f"tap card {uid}{hint} on {where}, once")

    async def set_fault(self, fault: str, active: bool, connector: int) -> None:
        if fault not in FAULT_INSTRUCTIONS:
            raise PlantError(f"no instructions for fault {fault!r}")
        cause, clear = FAULT_INSTRUCTIONS[fault]
        where = "station" if connector == 0 else f"connector {connector}"
        await self.ask(f"{where}: {cause if active else clear}")

    async def wait_relay(self, connector: int, closed: bool, timeout: float) -> None:
        state = "closed (the EV simulator shows energy)" if closed else "opened"
        await self.ask(f"wait until connector {connector}'s contactor has {state}")
