"""BootNotification and Heartbeat: the station's registration with its CSMS.

The protocol flow is the same in OCPP 1.6 and 2.0.1 (B01-B04 of 2.0.1 Part 2):
the payload and where the heartbeat interval is kept come from a
``BootProfile`` of the connection's version (``ocpp/v16/boot.py``,
``ocpp/v201/boot.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from firmware.clock import Clock, parse_iso
from firmware.ocpp.errors import CallFailed, NotConnected
from firmware.ocpp.rpc import Rpc

log = logging.getLogger("firmware.ocpp.registration")


class BootProfile(Protocol):
    """What the registration says and keeps, in one OCPP version."""

    @property
    def version(self) -> str: ...

    def boot_payload(self, *, triggered: bool = False) -> dict[str, Any]:
        """The BootNotification request (``triggered``: the CSMS asked for it)."""

    def heartbeat_interval(self) -> int: ...

    def adopt_heartbeat_interval(self, seconds: int) -> None:
        """Keep the interval an Accepted BootNotification gave."""

    def on_heartbeat_interval_change(self, changed: Callable[[], None]) -> None: ...


class Registration:
    """Registers after every (re)boot, then keeps the heartbeat.

    Between boot and the first answer nothing but BootNotification is sent.
    Pending: CSMS calls are answered, BootNotification is retried after the
    interval. Rejected: nothing at all is sent (answers included) until the
    interval has passed.
    """

    def __init__(
        self,
        rpc: Rpc,
        boot: BootProfile,
        clock: Clock,
        *,
        boot_retry_s: float,
        on_online: Callable[[], Awaitable[None]],
        alternatives: Sequence[BootProfile] = (),
    ) -> None:
        self.rpc = rpc
        # ``alternatives``: the profiles of other versions (``ocpp.version: auto``); each
        # connection registers in its own version.
        self._profiles = {p.version: p for p in (boot, *alternatives)}
        self.boot = boot
        self.version = boot.version
        self._registered_in: str | None = None
        self.clock = clock
        self.boot_retry_s = boot_retry_s
        self.status: str | None = None
        self._on_online = on_online
        self.ready = asyncio.Event()  # connected and Accepted
        self._heartbeat_changed = asyncio.Event()
        self._boot_requested = asyncio.Event()
        self._proven_link = -1  # the Rpc link a BootNotification/Heartbeat was answered on
        for profile in self._profiles.values():
            profile.on_heartbeat_interval_change(self._heartbeat_changed.set)
        rpc.answering = lambda: self.status != "Rejected"

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"

    def register_again(self) -> None:
        """Register with a BootNotification on the next connection, as after a restart
        (the station moved to another CSMS: 2.0.1's B10.FR.10)."""
        self.status = None

    def request_boot(self) -> None:
        """Send a BootNotification now (TriggerMessage)."""
        self._boot_requested.set()

    async def trigger_boot(self) -> None:
        """A BootNotification the CSMS asked for with TriggerMessage.

        Before Accepted it makes the registration loop send one now; once
        Accepted it is sent here and its interval and time are adopted.
        """
        if not self.accepted:
            self.request_boot()
            return
        answer = await self.rpc.call(
            "BootNotification", self.boot.boot_payload(triggered=True), version=self.version
        )
        self._adopt_time(answer.get("currentTime"))
        interval = int(answer["interval"])
        if answer["status"] == "Accepted":
            self._proven_link = self.rpc.link
            if interval > 0:
                self.boot.adopt_heartbeat_interval(interval)
        else:
            log.warning(
                "triggered BootNotification answered %s; staying registered", answer["status"]
            )

    async def run(self) -> None:
        """Until cancelled: on every connection register (once per boot) and heartbeat."""
        while True:
            await self.rpc.connected_event.wait()
            async with asyncio.TaskGroup() as tg:
                session = tg.create_task(self._session())
                await self.rpc.disconnected_event.wait()
                session.cancel()
            self.ready.clear()

    def _select(self) -> None:
        """The profile of the connection's version; a connection in another version than
        the one the station registered in registers again."""
        profile = self._profiles.get(self.rpc.version)
        if profile is not None and profile is not self.boot:
            log.info("registering in OCPP %s", profile.version)
            self.boot, self.version = profile, profile.version
        if self._registered_in is not None and self._registered_in != self.version:
            self.status = None

    async def _session(self) -> None:
        self._select()
        try:
            if not self.accepted:
                await self._register()
            self.ready.set()
            await self._on_online()
            await self._heartbeat()
        except NotConnected:
            pass
        finally:
            self.ready.clear()

    async def _register(self) -> None:
        while True:
            # A trigger from now on (even while this call is out) asks for another.
            triggered = self._boot_requested.is_set()
            self._boot_requested.clear()
            try:
                answer = await self.rpc.call(
                    "BootNotification",
                    self.boot.boot_payload(triggered=triggered),
                    version=self.version,
                )
            except NotConnected:
                raise
            except CallFailed as err:
                log.warning(
                    "BootNotification failed: %s; retrying in %.0f s", err, self.boot_retry_s
                )
                await self._wait_retry(self.boot_retry_s)
                continue
            self.status = str(answer["status"])
            interval = int(answer["interval"])
            self._adopt_time(answer.get("currentTime"))
            log.info("registration %s (interval %d s)", self.status, interval)
            if self.status == "Accepted":
                self._proven_link = self.rpc.link
                self._registered_in = self.version
                if interval > 0:
                    self.boot.adopt_heartbeat_interval(interval)
                return
            await self._wait_retry(interval if interval > 0 else self.boot_retry_s)
            if self.status == "Rejected":
                self.status = None  # the interval has passed: we may speak again

    async def _wait_retry(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._boot_requested.wait()
        except TimeoutError:
            pass

    async def _heartbeat(self) -> None:
        while True:
            interval = self.boot.heartbeat_interval()
            self._heartbeat_changed.clear()
            due = self.rpc.last_call_at + interval
            wait = due - self.clock.monotonic() if interval > 0 else None
            if wait is None or wait > 0:
                try:
                    async with asyncio.timeout(wait):
                        await self._heartbeat_changed.wait()
                    continue
                except TimeoutError:
                    pass
            if self.rpc.last_call_at + interval > self.clock.monotonic():
                continue  # another message went out meanwhile: it served as heartbeat
            await self.send_heartbeat()

    async def send_heartbeat(self) -> bool:
        """Send a Heartbeat; True when the CSMS answered it."""
        try:
            answer = await self.rpc.call("Heartbeat", {}, version=self.version)
        except NotConnected:
            raise
        except CallFailed as err:
            log.warning("Heartbeat failed: %s", err)
            return False
        self._proven_link = self.rpc.link
        self._adopt_time(answer.get("currentTime"))
        return True

    async def prove_link(self) -> bool:
        """Whether the CSMS serves the current connection.

        True once a BootNotification was Accepted or a Heartbeat answered on
        it; when neither happened yet (a reconnect needs no BootNotification,
        and other messages may stand in for Heartbeats) a Heartbeat is sent to
        find out. Waits until the station is registered.
        """
        await self.ready.wait()
        if self._proven_link == self.rpc.link:
            return True
        try:
            return await self.send_heartbeat()
        except NotConnected:
            return False

    def _adopt_time(self, value: object) -> None:
        if isinstance(value, str):
            try:
                self.clock.adopt(parse_iso(value))
            except ValueError:
                log.warning("CSMS sent an unparseable currentTime %r", value)
