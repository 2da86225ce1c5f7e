"""OCPP-J request/response over one websocket at a time.

- At most one CALL of our own is outstanding (``call`` holds a FIFO lock until
  its answer, timeout or the loss of the connection). A caller that cannot
  wait long (Authorize, at the reader) bounds the wait for the lock too.
- ``dead_link_timeouts`` CALL timeouts in a row, with no answer between them,
  mean the CSMS is not there although the socket is: the connection is closed
  so that the station reconnects. An answered CALL (result or error) starts
  the count again.
- Every CALL from the CSMS gets exactly one answer: the handler's
  CALLRESULT, or a CALLERROR with the code the connection's OCPP-J version
  has for it. A CALL that repeats the message id of a recent one (a CSMS
  retry) is not run again: the earlier answer is sent again (see ``answers``).
- Each connection speaks one OCPP version (``serve(ws, version)``): frames are
  parsed, validated and answered as that version says, by the handlers
  registered for it. A CALL of the station names the version it is written in;
  on a connection speaking another one it fails as NotConnected (the caller's
  version is offline), so no message is ever sent in the wrong version.
- Nothing a CSMS sends (garbage, frames over ``max_frame_bytes``, unknown ids)
  ends the connection or the daemon. Every frame that is not a valid OCPP
  message (malformed, oversized, a CALL or CALLRESULT that breaks its schema)
  is told to ``invalid_message`` (the InvalidMessages security event). A frame
  over the websocket limit (``config.MAX_WEBSOCKET_FRAME``, 8 MiB) is refused
  by the websocket layer, which closes the connection with 1009; the station
  then reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from firmware.ocpp import frames
from firmware.ocpp.answers import Answer, AnswerCache
from firmware.ocpp.call_stats import CallStats
from firmware.ocpp.errors import (
    CallErrorReceived,
    CallTimeout,
    InvalidRequest,
    InvalidResponse,
    LinkBusy,
    NotConnected,
    ProtocolViolation,
    callerror_code,
)
from firmware.ocpp.versions import SUBPROTOCOLS, V16

log = logging.getLogger("firmware.ocpp.rpc")

_CALL_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')
# CALLERROR codes that say the CSMS's message was not valid OCPP (not: an action
# we do not support, or our own failure).
INVALID_MESSAGE_CODES = frozenset(
    {
        "FormationViolation",
        "FormatViolation",
        "RpcFrameworkError",
        "ProtocolError",
        "TypeConstraintViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
    }
)


class Socket(Protocol):
    """The part of a websocket connection the RPC layer uses."""

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    def __aiter__(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer; ``after`` runs once the CALLRESULT is on the wire."""

    payload: dict[str, Any]
    after: Callable[[], Coroutine[Any, Any, None]] | None = None


Handler = Callable[[dict[str, Any]], Awaitable[Reply]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]
FrameLog = Callable[[str, str], None]


class _Streak:
    """CALL timeouts in a row on one connection, and how the run ended."""

    def __init__(self, ws: Socket) -> None:
        self.ws = ws
        self.timeouts = 0
        # True: a later CALL was answered; False: the connection died first.
        self.link_alive: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def end(self, alive: bool) -> None:
        if not self.link_alive.done():
            self.link_alive.set_result(alive)


class Rpc:
    """Request/response engine shared by every connection of the station."""

    def __init__(
        self,
        *,
        response_timeout_s: float,
        max_frame_bytes: int,
        spawn: Spawn,
        frame_log: FrameLog | None = None,
        id_factory: Callable[[], str] | None = None,
        dead_link_timeouts: int = 3,
        answers: AnswerCache | None = None,
    ) -> None:
        self.response_timeout_s = response_timeout_s
        self.max_frame_bytes = max_frame_bytes
        self.dead_link_timeouts = dead_link_timeouts
        # Per OCPP version: the same action names mean other payloads in 1.6 and 2.0.1.
        self.handlers: dict[str, dict[str, Handler]] = {v: {} for v in SUBPROTOCOLS}
        # Whether CSMS calls are answered at all (False while Rejected: the
        # station then sends nothing, answers included).
        self.answering: Callable[[], bool] = lambda: True
        # Told (with a short description) of every message from the CSMS that is not valid OCPP.
        self.invalid_message: Callable[[str], None] = lambda _detail: None
        self._spawn = spawn
        self._frame_log = frame_log
        counter = itertools.count(1)
        prefix = uuid.uuid4().hex[:8]
        self._new_id = id_factory or (lambda: f"{prefix}-{next(counter)}")
        self._lock = asyncio.Lock()
        self._ws: Socket | None = None
        self._version = V16  # of the current connection, or of the last one
        self._pending: tuple[str, str, asyncio.Future[frames.Incoming]] | None = None
        self._streak: _Streak | None = None
        self.link = 0  # connections served so far: tells one connection from the next
        # Kept across connections: a CSMS often retries right after a reconnect.
        self.answers = answers if answers is not None else AnswerCache()
        self.last_sent_at = time.monotonic()
        self.last_call_at = time.monotonic()
        self.connected_event = asyncio.Event()
        self.disconnected_event = asyncio.Event()
        self.disconnected_event.set()
        self.stats = CallStats()  # how our CALLs ended, for /metrics

    # ------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def version(self) -> str:
        """The OCPP version of the current connection (of the last one while offline)."""
        return self._version

    @property
    def timeouts_in_a_row(self) -> int:
        """CALL timeouts since the last answer on the current connection."""
        streak = self._streak
        return streak.timeouts if streak is not None and streak.ws is self._ws else 0

    def on(self, action: str, handler: Handler, *, version: str = V16) -> None:
        """Answer the CSMS's ``action`` with ``handler`` on connections speaking ``version``."""
        frames.rules(version)  # a version nothing can speak is a mistake here, not later
        self.handlers[version][action] = handler

    async def _send(self, ws: Socket, text: str) -> None:
        if self._frame_log:
            self._frame_log("out", text)
        await ws.send(text)
        self.last_sent_at = time.monotonic()

    # ------------------------------------------------------------ own calls

    async def call(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        timeout: float | None = None,
        version: str = V16,
    ) -> dict[str, Any]:
        """Send one CALL and return the CALLRESULT payload.

        ``timeout`` bounds the whole call, the wait for an earlier CALL to
        finish included, so a caller that must decide quickly (Authorize at
        the reader) never waits behind a hung call; the answer then gets what
        is left of it (at most ``response_timeout_s``). Without it the wait for
        the link is unbounded and the answer gets ``response_timeout_s``.
        ``version``: the OCPP version ``payload`` is written in.

        Raises NotConnected (also: the connection speaks another version),
        LinkBusy (nothing sent), CallTimeout, CallErrorReceived or
        InvalidResponse.
        """
        try:
            frames.validate_call(action, payload, version)
        except ProtocolViolation as err:
            log.error("refusing to send an invalid %s: %s", action, err.description)
            raise InvalidRequest(f"{action}: {err.description}") from err
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._lock.acquire()
        except TimeoutError:
            raise LinkBusy(f"{action}: another call held the link for {timeout:g} s") from None
        try:
            answer = await self._exchange(action, payload, deadline, version)
        finally:
            self._lock.release()
        if isinstance(answer, frames.IncomingError):
            self.stats.on_failure(action, "callerror")
            raise CallErrorReceived(answer.code, answer.description, answer.details)
        try:
            frames.validate_result(action, answer.payload, version)
        except ProtocolViolation as err:
            self.stats.on_failure(action, "invalid_result")
            self.invalid_message(f"CALLRESULT to {action}: {err.code}")
            raise InvalidResponse(f"{action}: invalid CALLRESULT: {err.description}") from err
        result: dict[str, Any] = answer.payload
        return result

    async def _exchange(
        self, action: str, payload: dict[str, Any], deadline: float | None, version: str
    ) -> frames.IncomingResult | frames.IncomingError:
        """Send the CALL and wait for its answer (the caller holds the lock)."""
        loop = asyncio.get_running_loop()
        ws = self._ws
        if ws is None:
            raise NotConnected(f"{action}: not connected")
        if version != self._version:
            raise NotConnected(f"{action}: the connection speaks OCPP {self._version}")
        wait = self.response_timeout_s
        if deadline is not None:
            wait = min(wait, deadline - loop.time())
            if wait <= 0:
                raise LinkBusy(f"{action}: no time left after waiting for the link")
        uid = self._new_id()
        future: asyncio.Future[frames.Incoming] = loop.create_future()
        self._pending = (uid, action, future)
        try:
            try:
                await self._send(ws, frames.call_frame(uid, action, payload))
                self.last_call_at = time.monotonic()
            except Exception as err:  # connection closed under us
                raise NotConnected(f"{action}: send failed: {err}") from err
            self.stats.on_sent(action)
            try:
                async with asyncio.timeout(wait):
                    answer = await future
            except TimeoutError:
                self.stats.on_timeout(action)
                raise self._timed_out(ws, action, wait) from None
            except NotConnected:
                self.stats.on_failure(action, "connection_lost")
                raise
        finally:
            self._pending = None
        assert not isinstance(answer, frames.IncomingCall)
        streak = self._streak
        if streak is not None and streak.ws is ws:
            streak.end(alive=True)  # the CSMS is there: the earlier timeouts were its doing
            self._streak = None
        return answer

    def _timed_out(self, ws: Socket, action: str, waited: float) -> CallTimeout:
        streak = self._streak
        if streak is None or streak.ws is not ws:
            streak = self._streak = _Streak(ws)
        streak.timeouts += 1
        err = CallTimeout(f"{action}: no answer within {waited:.3g} s", streak.link_alive)
        if streak.timeouts >= self.dead_link_timeouts:
            log.warning(
                "no answer to %d CALLs in a row: the link is dead; closing it to reconnect",
                streak.timeouts,
            )
            self._drop(ws)
        return err

    def _drop(self, ws: Socket) -> None:
        """Give up a connection: calls fail at once from now on, the socket closes."""
        if self._streak is not None and self._streak.ws is ws:
            self._streak.end(alive=False)
            self._streak = None
        if self._ws is ws:
            self._ws = None
            self.connected_event.clear()
        self._spawn(self._close(ws))

    @staticmethod
    async def _close(ws: Socket) -> None:
        try:
            await ws.close(1000, "no answer from the CSMS")
        except Exception as err:
            log.info("closing the dead connection failed: %s", err)

    # ------------------------------------------------------------ serving

    async def serve(self, ws: Socket, version: str = V16) -> None:
        """Read frames from ``ws``, a connection speaking ``version``, until it closes;
        answer the CSMS's calls."""
        frames.rules(version)  # an unknown version fails here, before anything is read
        self._version = version
        self._ws = ws
        self.link += 1
        self.disconnected_event.clear()
        self.connected_event.set()
        try:
            async with asyncio.TaskGroup() as answering:
                async for message in ws:
                    self._on_frame(ws, version, message, answering)
        except Exception as err:  # connection closed abnormally
            log.warning("connection closed: %s", err)
        finally:
            if self._ws is ws:
                self._ws = None
            if self._streak is not None and self._streak.ws is ws:
                self._streak.end(alive=False)
                self._streak = None
            self.connected_event.clear()
            self.disconnected_event.set()
            if self._pending and not self._pending[2].done():
                self._pending[2].set_exception(NotConnected("connection lost"))

    def _on_frame(
        self, ws: Socket, version: str, message: str | bytes, tasks: asyncio.TaskGroup
    ) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        if self._frame_log:
            self._frame_log("in", text if len(text) <= 2000 else text[:2000] + "…")
        if _too_big(message, self.max_frame_bytes):
            match = _CALL_ID.match(text[:200])
            log.warning("dropping oversized frame of %d characters", len(message))
            self.invalid_message(f"frame over {self.max_frame_bytes} bytes")
            if match and self.answering():
                reply = frames.error_frame(
                    match.group(1),
                    frames.rules(version).format,
                    f"frame exceeds {self.max_frame_bytes} bytes",
                )
                tasks.create_task(self._send_quietly(ws, reply))
            return
        try:
            incoming = frames.parse(message, version)
        except frames.FrameError as err:
            log.warning("malformed frame from CSMS: %s", err.description)
            self.invalid_message(f"malformed frame: {err.code}")
            if err.unique_id is not None and self.answering():
                reply = frames.error_frame(err.unique_id, err.code, err.description)
                tasks.create_task(self._send_quietly(ws, reply))
            return
        if isinstance(incoming, frames.IncomingCall):
            if not self.answering():
                log.info("not answering %s while registration is Rejected", incoming.action)
                return
            entry, repeat = self.answers.claim(
                incoming.unique_id, incoming.action, incoming.payload, version
            )
            if repeat:
                log.info(
                    "CSMS sent %s %r again: answering as before, not running it twice",
                    incoming.action,
                    incoming.unique_id,
                )
            else:
                # Outside this connection's task group: a handler runs to its end
                # even if the connection drops, so a retry gets its answer.
                self._spawn(self._execute(incoming, version, entry))
            tasks.create_task(self._deliver(ws, entry))
            return
        pending = self._pending
        if pending is None or pending[0] != incoming.unique_id or pending[2].done():
            log.warning("answer for unknown or expired call id %r ignored", incoming.unique_id)
            return
        pending[2].set_result(incoming)

    async def _send_quietly(self, ws: Socket, text: str) -> None:
        try:
            await self._send(ws, text)
        except Exception as err:
            log.info("could not send answer: %s", err)

    async def _execute(self, call: frames.IncomingCall, version: str, entry: Answer) -> None:
        try:
            try:
                reply = await self._handle(call, version)
                text = frames.result_frame(call.unique_id, reply.payload)
                entry.after = reply.after
            except ProtocolViolation as err:
                code = callerror_code(err.code, version)
                if err.code in INVALID_MESSAGE_CODES or code in INVALID_MESSAGE_CODES:
                    self.invalid_message(f"{call.action}: {code}")
                text = frames.error_frame(call.unique_id, code, err.description, err.details)
            except Exception:
                log.exception("could not build the answer to %s", call.action)
                text = frames.error_frame(call.unique_id, "InternalError", "could not build answer")
            entry.frame.set_result(text)
        finally:
            if not entry.frame.done():  # cancelled (shutdown): nobody gets an answer
                entry.frame.cancel()

    async def _deliver(self, ws: Socket, entry: Answer) -> None:
        text = await asyncio.shield(entry.frame)
        await self._send_quietly(ws, text)
        after = entry.take_after()
        if after is not None:
            self._spawn(after())

    async def _handle(self, call: frames.IncomingCall, version: str) -> Reply:
        handler = self.handlers[version].get(call.action)
        if handler is None:
            if call.action in frames.KNOWN_ACTIONS[version]:
                raise ProtocolViolation("NotSupported", f"{call.action} is not supported")
            raise ProtocolViolation("NotImplemented", f"unknown action {call.action!r}")
        frames.validate_call(call.action, call.payload, version)
        try:
            reply = await handler(call.payload)
        except ProtocolViolation:
            raise
        except Exception as err:
            log.exception("handler for %s failed", call.action)
            raise ProtocolViolation("InternalError", f"{type(err).__name__}: {err}") from err
        try:
            frames.validate_result(call.action, reply.payload, version)
        except ProtocolViolation as err:
            log.error("handler for %s produced an invalid answer: %s", call.action, err)
            raise ProtocolViolation("InternalError", "could not build a valid answer") from err
        return reply


def _too_big(message: str | bytes, limit: int) -> bool:
    """Whether ``message`` is over ``limit`` bytes in UTF-8 (without encoding it if it can tell)."""
    if isinstance(message, bytes) or len(message) > limit:
        return len(message) > limit
    if len(message) * 4 <= limit:
        return False
    return len(message.encode("utf-8", "replace")) > limit
