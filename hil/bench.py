"""What a bench scenario works with: the station over OCPP, the plant, and small checks.

Everything a scenario learns about the station comes from the OCPP frames the bench CSMS
recorded (StatusNotification, StartTransaction, ...), so the same scenario runs against a
simulated plant, emulated devices and a real board.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hil.csms import BenchCsms, CallErrorReceived, StationLog
from hil.plant import PlantDriver
from hil.process import StationProcess
from hil.results import NotApplicable, ScenarioFailed

__all__ = ["Bench", "Session", "ocpp_time"]


def ocpp_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Session:
    start: dict[str, Any]  # the StartTransaction payload
    transaction_id: int  # what the bench CSMS answered


@dataclass
class Bench:
    """One station under test, connected to ``csms`` as ``cp_id``, with its plant."""

    csms: BenchCsms
    cp_id: str
    plant: PlantDriver
    owner: StationProcess | None = None  # set when the runner started the process itself
    connector: int = 1
    tag: str = "04A1B2C3"
    timeout: float = 20.0  # for every wait on the station
    load: bool = True  # the vehicle draws current: sessions deliver energy
    pilot: dict[int, str] = field(default_factory=dict)  # last state set per connector
    faults: set[tuple[str, int]] = field(default_factory=set)  # faults caused and not cleared
    original_config: dict[str, str | None] = field(default_factory=dict)
    _since: int = 0

    @property
    def log(self) -> StationLog:
        return self.csms.station(self.cp_id)

    # ------------------------------------------------------------------ checks

    @staticmethod
    def check(condition: bool, message: str) -> None:
        if not condition:
            raise ScenarioFailed(message)

    def require_owner(self) -> StationProcess:
        if self.owner is None:
            raise NotApplicable("the runner does not own the station's process")
        return self.owner

    # ----------------------------------------------------------- OCPP, station side

    def mark(self) -> int:
        """Later waits only consider CALLs the station sends from now on."""
        self._since = self.log.mark()
        return self._since

    def last_status(self, connector: int | None = None) -> dict[str, Any] | None:
        """The latest StatusNotification of ``connector``: its current status."""
        wanted = self.connector if connector is None else connector
        found = [p for p in self.log.calls("StatusNotification") if p["connectorId"] == wanted]
        return found[-1] if found else None

    async def wait_for(
        self,
        action: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float | None = None,
        since: int | None = None,
    ) -> dict[str, Any]:
        """The first CALL ``action`` (matching ``predicate``) after the last status waited for
        (or after ``since``, a :meth:`mark`).

        Only status waits move on: a station may send a StatusNotification and the
        transaction message of the same change in either order, so a wait for
        StopTransaction must not skip the Finishing that came just before it.
        """
        payload = await self.log.wait_for(
            action,
            predicate,
            timeout=timeout or self.timeout,
            since=self._since if since is None else since,
        )
        if action == "StatusNotification":
            calls = self.log.calls()
            self._since = next(i for i in range(len(calls) - 1, -1, -1) if calls[i] is payload) + 1
        return payload

    async def wait_status(
        self,
        status: str | Callable[[str], bool],
        error_code: str | None = None,
        *,
        connector: int | None = None,
        timeout: float | None = None,
        since: int | None = None,
    ) -> dict[str, Any]:
        """The next StatusNotification of ``connector`` with ``status`` (and ``error_code``)."""
        wanted = self.connector if connector is None else connector
        matches = status if callable(status) else status.__eq__

        def ok(p: dict[str, Any]) -> bool:
            code_ok = error_code is None or p["errorCode"] == error_code
            return p["connectorId"] == wanted and matches(p["status"]) and code_ok

        try:
            return await self.wait_for("StatusNotification", ok, timeout=timeout, since=since)
        except TimeoutError as err:
            what = status if isinstance(status, str) else "the expected status"
            code = f" with {error_code}" if error_code else ""
            last = self.last_status(wanted)
            seen = f"{last['status']}/{last['errorCode']}" if last else "none"
            raise ScenarioFailed(
                f"connector {wanted} never reported {what}{code} (last: {seen})"
            ) from err

    async def wait_current(self, status: str, connector: int | None = None) -> None:
        """Until the latest StatusNotification of ``connector`` says ``status`` (it may be one
        the CSMS already had)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while (last := self.last_status(connector)) is None or last["status"] != status:
            if loop.time() > deadline:
                seen = f"{last['status']}/{last['errorCode']}" if last else "no status"
                raise ScenarioFailed(f"connector status is {seen}, not {status}")
            await asyncio.sleep(0.05)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a CSMS CALL; a CALLERROR fails the scenario."""
        try:
            return await self.log.call(action, payload, timeout=self.timeout)
        except CallErrorReceived as err:
            raise ScenarioFailed(f"{action} {payload} answered with {err}") from err

    async def transaction_id(self, start: dict[str, Any]) -> int:
        answer = await self.log.wait_answer("StartTransaction", start, timeout=self.timeout)
        self.check(answer[0] == 3, f"StartTransaction was answered with {answer}")
        return int(answer[2]["transactionId"])

    def open_transactions(self) -> list[int]:
        """Transactions the CSMS gave an id that have no StopTransaction yet."""
        stopped = {p["transactionId"] for p in self.log.calls("StopTransaction")}
        starts: list[Any] = []
        answers: dict[Any, Any] = {}
        for frame in self.log.frames:
            msg = frame.message
            if not msg or len(msg) < 3 or not isinstance(msg[1], str):
                continue
            if frame.direction == "in" and msg[0] == 2 and msg[2] == "StartTransaction":
                starts.append(msg[1])
            elif frame.direction == "out" and msg[0] == 3:
                answers[msg[1]] = msg[2]
        started = [answers[uid]["transactionId"] for uid in starts if uid in answers]
        return [int(t) for t in started if t not in stopped]

    async def reset(self, kind: str = "Hard") -> int:
        """Reset the station over OCPP and wait for its BootNotification; returns the mark
        taken before the reset (to wait for what it reports after booting)."""
        mark = self.mark()
        answer = await self.call("Reset", {"type": kind})
        self.check(answer["status"] == "Accepted", f"Reset {kind}: {answer}")
        await self.wait_for("BootNotification", timeout=max(self.timeout, 60))
        return mark

    async def configure(self, key: str, value: str) -> None:
        """ChangeConfiguration, which must be Accepted; restore_config puts the old value back."""
        if key not in self.original_config:
            got = await self.call("GetConfiguration", {"key": [key]})
            known = {k["key"]: k.get("value") for k in got.get("configurationKey", [])}
            self.original_config[key] = known.get(key)
        answer = await self.call("ChangeConfiguration", {"key": key, "value": value})
        self.check(answer["status"] == "Accepted", f"ChangeConfiguration {key}={value}: {answer}")

    async def restore_config(self) -> None:
        """Best effort: a station that is gone keeps the bench's values."""
        for key, value in self.original_config.items():
            if value is not None:
                with contextlib.suppress(CallErrorReceived, TimeoutError, ConnectionError):
                    await self.log.call("ChangeConfiguration", {"key": key, "value": value})
        self.original_config.clear()

    # ------------------------------------------------------------------ plant

    async def set_pilot(self, state: str, connector: int | None = None) -> None:
        where = self.connector if connector is None else connector
        await self.plant.set_pilot(where, state)
        self.pilot[where] = state

    async def tap(self, uid: str | None = None, connector: int | None = None) -> None:
        await self.plant.tap(uid or self.tag, connector)

    @contextlib.asynccontextmanager
    async def fault(self, name: str, connector: int | None = None) -> AsyncIterator[None]:
        """Cause a fault for the block; cleared on the way out if the block did not clear it."""
        where = self.connector if connector is None else connector
        await self.plant.set_fault(name, True, where)
        self.faults.add((name, where))
        try:
            yield
        finally:
            if (name, where) in self.faults:
                await self.clear_fault(name, where)

    async def clear_fault(self, name: str, connector: int | None = None) -> None:
        where = self.connector if connector is None else connector
        await self.plant.set_fault(name, False, where)
        self.faults.discard((name, where))

    async def wait_relay(self, closed: bool) -> None:
        await self.plant.wait_relay(self.connector, closed, self.timeout)

    # --------------------------------------------------------------- sessions

    async def session_of(self, start: dict[str, Any]) -> Session:
        return Session(start, await self.transaction_id(start))

    async def start_session(self) -> Session:
        """From idle to charging with the bench's card: plug in (B), tap, vehicle asks (C)."""
        await self.set_pilot("B")
        await self.wait_status("Preparing")
        await self.tap()
        start = await self.wait_for("StartTransaction", lambda p: p["idTag"] == self.tag)
        self.check(start["connectorId"] == self.connector, f"StartTransaction {start}")
        await self.set_pilot("C")
        await self.wait_status("Charging" if self.load else "SuspendedEV")
        return await self.session_of(start)

    async def wait_energy(self, session: Session) -> float:
        """Wait for a MeterValues of the session above meterStart; returns the Wh delivered."""
        if not self.load:
            return 0.0

        def energy(p: dict[str, Any]) -> float | None:
            for mv in p["meterValue"]:
                for sv in mv["sampledValue"]:
                    if sv.get("measurand", "Energy.Active.Import.Register") == (
                        "Energy.Active.Import.Register"
                    ):
                        scale = 1000.0 if sv.get("unit") == "kWh" else 1.0
                        return float(sv["value"]) * scale
            return None

        def delivered(p: dict[str, Any]) -> bool:
            wh = energy(p)
            return p.get("transactionId") == session.transaction_id and (
                wh is not None and wh > session.start["meterStart"]
            )

        sample = await self.log.wait_for(
            "MeterValues", delivered, since=self._since, timeout=self.timeout
        )
        return (energy(sample) or 0.0) - float(session.start["meterStart"])

    async def stop_by_tap(self, session: Session, reason: str = "Local") -> dict[str, Any]:
        await self.tap()
        return await self.expect_stop(session, reason)

    async def expect_stop(self, session: Session, reason: str) -> dict[str, Any]:
        stop = await self.wait_for(
            "StopTransaction", lambda p: p["transactionId"] == session.transaction_id
        )
        self.check(stop["reason"] == reason, f"StopTransaction reason {stop['reason']} ≠ {reason}")
        self.check(
            stop["meterStop"] >= session.start["meterStart"],
            f"meterStop {stop['meterStop']} < meterStart {session.start['meterStart']}",
        )
        return stop

    async def unplug(self) -> None:
        """The vehicle leaves (A) and the connector becomes Available."""
        await self.set_pilot("A")
        await self.wait_status("Available")

    # ------------------------------------------------------------ between runs

    async def restore(self) -> None:
        """Put the plant back: faults cleared, vehicle unplugged (best effort, in order)."""
        for name, where in sorted(self.faults):
            await self.clear_fault(name, where)
        for where, state in sorted(self.pilot.items()):
            if state != "A":
                await self.set_pilot("A", where)

    async def recover(self) -> str:
        """Bring a station that is not idle back: restart the process the runner owns if it
        died, otherwise an OCPP Hard Reset; then wait until it is idle."""
        if self.owner is not None and not self.owner.running:
            await self.owner.start(boot_timeout=self.timeout)
            how = "restarted its process"
        else:
            await self.reset("Hard")
            how = "Hard Reset"
        await self.wait_idle()
        return how

    async def wait_idle(self) -> None:
        """Connected, connector Available, no open transaction; RemoteStop leftovers first."""
        await self.csms.wait_connected(self.cp_id, timeout=self.timeout)
        for transaction_id in self.open_transactions():
            with contextlib.suppress(CallErrorReceived, TimeoutError, ConnectionError):
                await self.log.call(
                    "RemoteStopTransaction", {"transactionId": transaction_id}, timeout=5
                )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            last = self.last_status()
            if last is not None and last["status"] == "Available" and not self.open_transactions():
                return
            if loop.time() > deadline:
                seen = f"{last['status']}/{last['errorCode']}" if last else "no status"
                raise ScenarioFailed(
                    f"station not idle: connector {self.connector} is {seen}, "
                    f"open transactions {self.open_transactions()}"
                )
            await asyncio.sleep(0.05)
