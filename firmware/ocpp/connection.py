"""The websocket link to the CSMS: connect, keep alive, reconnect forever.

The handshake offers the subprotocols of the configured OCPP versions (``ocpp1.6``,
``ocpp2.0.1``, or both with ``auto``, newest first) and the connection speaks
the one the CSMS selects. A CSMS that selects none gets the connection closed
(1002) and the station retries with its backoff, as after any failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from firmware.config import MAX_WEBSOCKET_FRAME
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.versions import SUBPROTOCOLS, V16, version_of
from firmware.security.link import Attempt, basic_auth

__all__ = [
    "MAX_WEBSOCKET_FRAME",
    "Backoff",
    "Connection",
    "LinkState",
    "VersionCheck",
    "basic_auth",
]

log = logging.getLogger("firmware.ocpp.connection")

# Why a connection on which the CSMS selected ``version`` must not be served
# (None: serve it). Called before anything is read or sent on it.
VersionCheck = Callable[[str], str | None]


def station_url(csms_url: str, charge_point_id: str) -> str:
    return f"{csms_url.rstrip('/')}/{quote(charge_point_id, safe='')}"


class LinkAuth(Protocol):
    """What each connection attempt presents and trusts (``firmware.security.link``)."""

    def attempt(self) -> Attempt: ...

    def failed(self, attempt: Attempt, err: BaseException) -> bool:
        """True: try again at once (a fallback is ready)."""
        ...

    def connected(self, attempt: Attempt, transport: Any = None) -> None: ...


class Route(Protocol):
    """Which CSMS each connection attempt dials (OCPP 2.0.1's network profiles), told how
    each attempt went."""

    def csms_url(self) -> str: ...

    def failed(self) -> None: ...

    def connected(self) -> None: ...


class FixedRoute:
    """Always the one configured CSMS URL."""

    def __init__(self, csms_url: str) -> None:
        self._url = csms_url

    def csms_url(self) -> str:
        return self._url

    def failed(self) -> None:
        pass

    def connected(self) -> None:
        pass


class BasicAuthOnly:
    """Basic auth with ``password`` when there is one; TLS as the URL says, system trust."""

    def __init__(self, charge_point_id: str, password: Callable[[], str | None]) -> None:
        self._cp_id = charge_point_id
        self._password = password

    def attempt(self) -> Attempt:
        password = self._password()
        headers = {"Authorization": basic_auth(self._cp_id, password)} if password else {}
        return Attempt(1 if password else 0, None, headers)

    def failed(self, attempt: Attempt, err: BaseException) -> bool:
        return False

    def connected(self, attempt: Attempt, transport: Any = None) -> None:
        pass


class Backoff:
    """Reconnect delays: capped exponential backoff with jitter, spread after a stable link.

    Delays grow from ``min_s`` to ``max_s``, each drawn from [base/2, base] so
    stations that lost the CSMS together do not come back together. ``reset``
    is called only once a connection has proved stable; the first delay after
    that is drawn from [0, ``spread_s``]: the loss of a link that worked is
    most likely the CSMS restarting, and every station it served lost its
    link in the same second. A connection that drops before it proved stable
    does not reset anything, so a CSMS that accepts and drops keeps seeing
    longer and longer delays.
    """

    def __init__(
        self,
        min_s: float,
        max_s: float,
        rng: Callable[[float, float], float] = random.uniform,
        *,
        spread_s: float = 0.0,
    ):
        self.min_s = min_s
        self.max_s = max_s
        self.spread_s = spread_s
        self.attempt = 0
        self._spread_next = False
        self._rng = rng

    def next_delay(self) -> float:
        if self._spread_next:
            self._spread_next = False
            return self._rng(0.0, self.spread_s)
        base = min(self.max_s, self.min_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return self._rng(base / 2, base)

    def reset(self) -> None:
        """The connection proved stable: start over, and spread the next reconnect."""
        self.attempt = 0
        self._spread_next = self.spread_s > 0


@dataclass(frozen=True, slots=True)
class LinkState:
    """What the link to the CSMS is doing, for status displays (systemd's STATUS=)."""

    phase: Literal["connecting", "connected", "offline"]
    url: str
    detail: str = ""
    retry_s: float | None = None
    version: str | None = None  # the OCPP version the connection speaks (when connected)


class Connection:
    """Keeps one websocket to ``<csms_url>/<charge_point_id>`` open; with a ``route``,
    the CSMS URL of each attempt is the route's."""

    def __init__(
        self,
        rpc: Rpc,
        *,
        csms_url: str,
        charge_point_id: str,
        password: Callable[[], str | None] = lambda: None,
        ping_interval_s: Callable[[], int],
        backoff: Backoff,
        open_timeout_s: float,
        on_state: Callable[[LinkState], None] | None = None,
        stable_after_s: float = 60.0,
        proof: Callable[[], Awaitable[bool]] | None = None,
        auth: LinkAuth | None = None,
        versions: Sequence[str] = (V16,),
        check_version: VersionCheck | None = None,
        route: Route | None = None,
    ) -> None:
        if not versions or any(v not in SUBPROTOCOLS for v in versions):
            raise ValueError(f"unknown OCPP versions {list(versions)!r}")
        self.rpc = rpc
        # Offered in this order: the station's preference, the CSMS's choice.
        self.versions = tuple(versions)
        self._check_version = check_version
        # The version of the connection served now, or of the last one.
        self.version: str | None = None
        self._route = route if route is not None else FixedRoute(csms_url)
        self.charge_point_id = charge_point_id
        self.url = station_url(self._route.csms_url(), charge_point_id)
        self._auth = auth if auth is not None else BasicAuthOnly(charge_point_id, password)
        self._ping_interval_s = ping_interval_s
        self._backoff = backoff
        self._open_timeout_s = open_timeout_s
        self.ping_changed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self.connections = 0
        self.state = LinkState("connecting", self.url)
        self._on_state = on_state
        # A connection is stable once it has been up this long and ``proof``
        # (a BootNotification or Heartbeat answered on it) holds.
        self._stable_after_s = stable_after_s
        self._proof = proof

    def _set_state(self, state: LinkState) -> None:
        self.state = state
        if self._on_state is not None:
            self._on_state(state)

    async def run(self) -> None:
        """Connect, serve, and reconnect until cancelled."""
        while True:
            self.url = station_url(self._route.csms_url(), self.charge_point_id)
            self._set_state(LinkState("connecting", self.url))
            attempt: Attempt | None = None
            try:
                attempt = self._auth.attempt()  # a TLS context from unusable files: ValueError
                ws = await self._connect(attempt)
            except (OSError, TimeoutError, WebSocketException, ValueError) as err:
                self._route.failed()
                if attempt is not None and self._auth.failed(attempt, err):
                    log.warning(
                        "cannot connect to %s: %s; trying again at once", self.url, _why(err)
                    )
                    continue
                delay = self._backoff.next_delay()
                log.warning(
                    "cannot connect to %s: %s; retrying in %.1f s", self.url, _why(err), delay
                )
                why = f"cannot connect to {self.url}: {_why(err)}"
                self._set_state(LinkState("offline", self.url, why, delay))
                await asyncio.sleep(delay)
                continue
            self.connections += 1
            self._auth.connected(attempt, ws.transport)
            version = version_of(ws.subprotocol)
            assert version is not None  # _connect accepts only the subprotocols offered
            refusal = self._check_version(version) if self._check_version else None
            if refusal is not None:
                self._route.failed()
                await self._refuse(ws, version, refusal)
                continue
            self._route.connected()
            self.version = version
            log.info("connected to %s (OCPP %s)", self.url, version)
            self._set_state(LinkState("connected", self.url, version=version))
            try:
                async with asyncio.TaskGroup() as tg:
                    pinger = tg.create_task(self._keepalive(ws))
                    settling = tg.create_task(self._settle())
                    await self.rpc.serve(ws, version)
                    pinger.cancel()
                    settling.cancel()
            finally:
                self._ws = None
                await ws.close()
            delay = self._backoff.next_delay()
            log.warning("disconnected from CSMS; reconnecting in %.1f s", delay)
            self._set_state(LinkState("offline", self.url, f"disconnected from {self.url}", delay))
            await asyncio.sleep(delay)

    async def _refuse(self, ws: ClientConnection, version: str, why: str) -> None:
        """Close a connection in a version nothing here speaks, then wait as after a failure."""
        self._ws = None
        try:
            await ws.close(1000, f"OCPP {version} is not available")
        except Exception as err:
            log.info("closing the refused connection failed: %s", err)
        delay = self._backoff.next_delay()
        log.error("%s: closing the connection; retrying in %.1f s", why, delay)
        self._set_state(LinkState("offline", self.url, why, delay))
        await asyncio.sleep(delay)

    async def _settle(self) -> None:
        """Reset the backoff once this connection has proved stable."""
        await asyncio.sleep(self._stable_after_s)
        if self._proof is not None and not await self._proof():
            log.info("the link did not prove itself: reconnect backoff kept")
            return
        self._backoff.reset()
        log.debug("link stable for %.0f s: reconnect backoff reset", self._stable_after_s)

    async def _connect(self, attempt: Attempt) -> ClientConnection:
        tls: dict[str, Any] = {} if attempt.ssl is None else {"ssl": attempt.ssl}
        lost: list[BaseException] = []
        try:
            ws = await connect(
                self.url,
                **tls,
                subprotocols=[Subprotocol(SUBPROTOCOLS[v]) for v in self.versions],
                additional_headers=dict(attempt.headers),
                ping_interval=None,
                max_size=MAX_WEBSOCKET_FRAME,
                open_timeout=self._open_timeout_s,
                close_timeout=2,
                create_connection=_recording(lost),
            )
        except (OSError, WebSocketException) as err:
            # A TLS alert after the handshake (TLS 1.3: the CSMS refusing the station's
            # certificate) reaches the websocket layer only as a lost connection.
            alert = next((e for e in lost if isinstance(e, ssl.SSLError)), None)
            if alert is not None and not isinstance(err, ssl.SSLError):
                raise alert from err
            raise
        if version_of(ws.subprotocol) not in self.versions:
            offered = ", ".join(SUBPROTOCOLS[v] for v in self.versions)
            await ws.close(code=1002, reason=f"subprotocol required: {offered}")
            if ws.subprotocol is None:
                raise WebSocketException(
                    f"the CSMS selected none of the subprotocols offered ({offered})"
                )
            raise WebSocketException(
                f"the CSMS selected subprotocol {ws.subprotocol}, not one offered ({offered})"
            )
        self._ws = ws
        return ws

    async def close(self) -> None:
        """Close the current connection (the run loop then reconnects)."""
        if self._ws is not None:
            await self._ws.close()

    async def _keepalive(self, ws: ClientConnection) -> None:
        """Ping per WebSocketPingInterval; a change takes effect at once."""
        while True:
            interval = self._ping_interval_s()
            self.ping_changed.clear()
            log.debug("WebSocket pings %s", f"every {interval} s" if interval > 0 else "off")
            try:
                async with asyncio.timeout(interval if interval > 0 else None):
                    await self.ping_changed.wait()
                continue  # interval changed: start over with the new value
            except TimeoutError:
                pass
            try:
                pong = await ws.ping()
                async with asyncio.timeout(self._open_timeout_s):
                    await pong
            except TimeoutError:
                log.warning("no pong within %.0f s; closing the connection", self._open_timeout_s)
                await ws.close()
                return
            except WebSocketException:
                return


def _recording(lost: list[BaseException]) -> type[ClientConnection]:
    """A connection class that keeps why its transport was lost."""

    class Recording(ClientConnection):
        def connection_lost(self, exc: Exception | None) -> None:
            if exc is not None:
                lost.append(exc)
            super().connection_lost(exc)

    return Recording


def _why(err: BaseException) -> str:
    if isinstance(err, InvalidStatus):
        return f"HTTP {err.response.status_code}"
    return str(err) or type(err).__name__
