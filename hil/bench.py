"""What a bench scenario works with: the station over OCPP, the plant, and small checks.

Everything a scenario learns about the station comes from the OCPP frames the bench CSMS
recorded (StatusNotification, StartTransaction or TransactionEvent, ...), read through the
:class:`hil.wire.Wire` of the OCPP version the run speaks, so the same scenario runs in 1.6
and 2.0.1, against a simulated plant, emulated devices and a real board.
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
from hil.versions import V16
from hil.wire import Session, Status, Stop, Wire, wire_for

__all__ = ["Bench", "Session", "Status", "Stop", "ocpp_time"]


def ocpp_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Bench:
    """One station under test, connected to ``csms`` as ``cp_id`` in OCPP ``version``, with
    its plant."""

    csms: BenchCsms
    cp_id: str
    plant: PlantDriver
    owner: StationProcess | None = None  # set when the runner started the process itself
    connector: int = 1
    tag: str = "04A1B2C3"
    timeout: float = 20.0  # for every wait on the station
    load: bool = True  # the vehicle draws current: sessions deliver energy
    version: str = V16  # the OCPP version the station speaks with the bench
    pilot: dict[int, str] = field(default_factory=dict)  # last state set per connector
    faults: set[tuple[str, int]] = field(default_factory=set)  # faults caused and not cleared
    original_config: dict[str, str | None] = field(default_factory=dict)
    _since: int = 0
    _remote_starts: int = 0

    @property
    def wire(self) -> Wire:
        """What the bench expects and sends in its OCPP version."""
        return wire_for(self.version)

    @property
    def log(self) -> StationLog:
        return self.csms.station(self.cp_id)

    @property
    def charging(self) -> str:
        """The status of a session with the vehicle asking for energy."""
        return "Charging" if self.load else "SuspendedEV"

    # ------------------------------------------------------------------ checks

    @staticmethod
    def check(condition: bool, message: str) -> None:
        if not condition:
            raise ScenarioFailed(message)

    def check_all(self, problems: list[str]) -> None:
        if problems:
            raise ScenarioFailed("; ".join(problems))

    def require_owner(self) -> StationProcess:
        if self.owner is None:
            raise NotApplicable("the runner does not own the station's process")
        return self.owner

    def require_station_status(self, what: str) -> None:
        """NotApplicable when the version has no status of the station as a whole."""
        if not self.wire.station_status:
            raise NotApplicable(
                f"OCPP {self.version} has no status of the station as a whole (1.6's "
                f"connector 0), where {what} is reported"
            )

    # ----------------------------------------------------------- OCPP, station side

    def mark(self) -> int:
        """Later waits only consider CALLs the station sends from now on."""
        self._since = self.log.mark()
        return self._since

    def last_status(self, connector: int | None = None) -> Status | None:
        """The latest StatusNotification of ``connector``: its current status."""
        wanted = self.connector if connector is None else connector
        found = [
            s
            for s in map(self.wire.status, self.log.calls("StatusNotification"))
            if s.connector == wanted
        ]
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
    ) -> Status:
        """The next StatusNotification of ``connector`` with ``status`` (and ``error_code``).

        ``status`` is a 1.6 status (or a test of the version's status word); the wire says
        how the version reports it. In 2.0.1 a status that reads Occupied, as the connector
        already is, sends nothing: the current one meets the wait.
        """
        wanted = self.connector if connector is None else connector
        wire = self.wire
        if wanted == 0:
            self.require_station_status("this status")
        if isinstance(status, str):
            word = wire.status_word(status)
            matches: Callable[[str], bool] = word.__eq__
        else:
            matches = status
        code = error_code if wire.error_codes else None
        started_at = self._since if since is None else since
        last = self.last_status(wanted)
        if isinstance(status, str) and wire.silent(status) and last and last.status == word:
            found = last  # later status waits look past it, as past one waited for
            calls = self.log.calls()
            self._since = max(
                self._since,
                next(i for i in range(len(calls) - 1, -1, -1) if calls[i] is last.payload) + 1,
            )
        else:

            def ok(p: dict[str, Any]) -> bool:
                s = wire.status(p)
                code_ok = code is None or s.error_code == code
                return s.connector == wanted and matches(s.status) and code_ok

            try:
                payload = await self.wait_for(
                    "StatusNotification", ok, timeout=timeout, since=since
                )
            except TimeoutError as err:
                what = status if isinstance(status, str) else "the expected status"
                if isinstance(status, str) and word != status:
                    what = f"{word} ({status})"
                with_code = f" with {code}" if code else ""
                last = self.last_status(wanted)
                raise ScenarioFailed(
                    f"connector {wanted} never reported {what}{with_code} (last: {last or 'none'})"
                ) from err
            found = wire.status(payload)
        if error_code is not None and not wire.error_codes:
            await self._fault_reported(error_code, wanted, started_at)
        if isinstance(status, str) and (closed := wire.contactor_in(status)) is not None:
            await self.wait_relay(closed)
        return found

    async def _fault_reported(self, error_code: str, connector: int, since: int) -> None:
        report = self.wire.fault_report(error_code, connector)
        if report is None:
            return
        action, predicate = report
        try:
            await self.log.wait_for(action, predicate, timeout=self.timeout, since=since)
        except TimeoutError as err:
            raise ScenarioFailed(f"{error_code} on connector {connector}: no {action}") from err

    async def wait_current(self, status: str, connector: int | None = None) -> None:
        """Until the latest StatusNotification of ``connector`` says ``status`` (it may be one
        the CSMS already had)."""
        word = self.wire.status_word(status)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while (last := self.last_status(connector)) is None or last.status != word:
            if loop.time() > deadline:
                raise ScenarioFailed(f"connector status is {last or 'none'}, not {word}")
            await asyncio.sleep(0.05)
        if (closed := self.wire.contactor_in(status)) is not None:
            await self.wait_relay(closed)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a CSMS CALL; a CALLERROR fails the scenario."""
        try:
            return await self.log.call(action, payload, timeout=self.timeout)
        except CallErrorReceived as err:
            raise ScenarioFailed(f"{action} {payload} answered with {err}") from err

    def open_transactions(self) -> list[int | str]:
        """Transactions the CSMS knows of that have not ended."""
        return self.wire.open_transactions(self.log)

    async def reset(self, kind: str = "Hard") -> int:
        """Reset the station over OCPP (``kind`` in 1.6 words; 2.0.1: Immediate) and wait
        for its BootNotification; returns the mark taken before the reset (to wait for
        what it reports after booting)."""
        mark = self.mark()
        request = self.wire.reset(kind)
        answer = await self.call("Reset", request)
        self.check(answer["status"] == "Accepted", f"Reset {request['type']}: {answer}")
        await self.wait_for("BootNotification", timeout=max(self.timeout, 60))
        return mark

    async def configure(self, key: str, value: str) -> None:
        """Set ``key`` (a 1.6 key name; 2.0.1: its device model variable), which must be
        Accepted; restore_config puts the old value back."""
        if key not in self.original_config:
            self.original_config[key] = await self.wire.read_setting(self.call, key)
        status = await self.wire.write_setting(self.call, key, value)
        self.check(status == "Accepted", f"setting {key}={value}: {status}")

    async def restore_config(self) -> None:
        """Best effort: a station that is gone keeps the bench's values."""

        async def call(action: str, payload: dict[str, Any]) -> dict[str, Any]:
            return await self.log.call(action, payload, timeout=self.timeout)

        for key, value in self.original_config.items():
            if value is not None:
                with contextlib.suppress(CallErrorReceived, TimeoutError, ConnectionError):
                    await self.wire.write_setting(call, key, value)
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

    async def expect_authorize(self) -> dict[str, Any]:
        """The station's Authorize of the bench card."""
        auth = await self.wait_for("Authorize")
        self.check(self.wire.authorizes(auth, self.tag), f"Authorize {auth} for card {self.tag}")
        return auth

    def starts(self) -> int:
        """How many transactions the station has started so far."""
        return self.wire.starts(self.log)

    async def wait_start(
        self, *, tag: str | None = None, remote_start_id: int | None = None
    ) -> Session:
        """The next transaction start (of ``tag``, if given) on the bench's connector, with
        the id the CSMS knows it by; a remote start must carry ``remote_start_id`` (2.0.1)."""
        wire = self.wire

        def wanted(p: dict[str, Any]) -> bool:
            return wire.is_start(p) and (tag is None or wire.start_tag(p) == tag)

        start = await self.wait_for(wire.start_action, wanted)
        session = wire.session(start, await wire.transaction_id(self.log, start, self.timeout))
        self.check(
            session.id_tag == (tag or self.tag) and session.connector == self.connector,
            f"{wire.start_action} {start}: not card {tag or self.tag} on connector "
            f"{self.connector}",
        )
        self.check_all(wire.start_problems(session, remote_start_id))
        return session

    async def start_session(self) -> Session:
        """From idle to charging with the bench's card: plug in (B), tap, vehicle asks (C)."""
        await self.set_pilot("B")
        await self.wait_status("Preparing")
        await self.tap()
        session = await self.wait_start(tag=self.tag)
        await self.set_pilot("C")
        await self.wait_status(self.charging)
        return session

    async def remote_start(self) -> tuple[str, int]:
        """Ask the station to start a session with the bench's card on the bench's
        connector; returns the answer's status and the remoteStartId sent (2.0.1)."""
        self._remote_starts += 1
        action, payload = self.wire.remote_start(self.connector, self.tag, self._remote_starts)
        answer = await self.call(action, payload)
        return str(answer["status"]), self._remote_starts

    async def remote_stop(self, transaction_id: int | str) -> str:
        action, payload = self.wire.remote_stop(transaction_id)
        return str((await self.call(action, payload))["status"])

    async def wait_energy(self, session: Session) -> float:
        """Wait for a sample of the session above its meter start; returns the Wh delivered."""
        if not self.load:
            return 0.0

        def delivered(p: dict[str, Any]) -> bool:
            wh = self.wire.sample_energy(p, session)
            return wh is not None and wh > session.meter_start

        sample = await self.log.wait_for(
            self.wire.sample_action, delivered, since=self._since, timeout=self.timeout
        )
        return (self.wire.sample_energy(sample, session) or 0.0) - session.meter_start

    async def stop_by_tap(self, session: Session, reason: str = "Local") -> Stop:
        await self.tap()
        return await self.expect_stop(session, reason)

    async def expect_stop(self, session: Session, reason: str) -> Stop:
        wire = self.wire
        payload = await self.wait_for(wire.stop_action, lambda p: wire.is_stop(p, session))
        stop = wire.stop(payload)
        self.check(stop.reason == reason, f"{wire.stop_action} reason {stop.reason} ≠ {reason}")
        self.check(
            stop.meter_stop >= session.meter_start,
            f"meter stop {stop.meter_stop} < meter start {session.meter_start}",
        )
        self.check_all(wire.stop_problems(self.log.calls(wire.stop_action), session, stop))
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
        died, otherwise an OCPP reset (1.6 Hard, 2.0.1 Immediate); then wait until it is
        idle."""
        if self.owner is not None and not self.owner.running:
            await self.owner.start(boot_timeout=self.timeout)
            how = "restarted its process"
        else:
            await self.reset("Hard")
            how = f"Reset {self.wire.reset('Hard')['type']}"
        await self.wait_idle()
        return how

    async def wait_idle(self) -> None:
        """Connected in the bench's version, connector Available, no open transaction;
        remote stops for leftovers first."""
        await self.csms.wait_connected(self.cp_id, timeout=self.timeout)
        if self.log.version != self.version:
            raise ScenarioFailed(
                f"{self.cp_id} speaks OCPP {self.log.version}; the bench runs {self.version}"
            )
        for transaction_id in self.open_transactions():
            action, payload = self.wire.remote_stop(transaction_id)
            with contextlib.suppress(CallErrorReceived, TimeoutError, ConnectionError):
                await self.log.call(action, payload, timeout=5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            last = self.last_status()
            if last is not None and last.status == "Available" and not self.open_transactions():
                return
            if loop.time() > deadline:
                raise ScenarioFailed(
                    f"station not idle: connector {self.connector} is {last or 'no status'}, "
                    f"open transactions {self.open_transactions()}"
                )
            await asyncio.sleep(0.05)
