"""OCPP-J request/response over one websocket at a time.

- At most one CALL of our own is outstanding (``call`` holds a FIFO lock until
  its answer, timeout or the loss of the connection).
- Every CALL from the CSMS gets exactly one answer: the handler's
  CALLRESULT, or a CALLERROR with the OCPP-J 1.6 code that fits.
- Nothing a CSMS sends (garbage, oversized frames, unknown ids) ends the
  connection or the daemon.
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
from firmware.ocpp.errors import (
    CallErrorReceived,
    CallTimeout,
    InvalidRequest,
    InvalidResponse,
    NotConnected,
    ProtocolViolation,
)

log = logging.getLogger("firmware.ocpp.rpc")

_CALL_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')


class Socket(Protocol):
    """The part of a websocket connection the RPC layer uses."""

    async def send(self, message: str) -> None: ...

    def __aiter__(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer; ``after`` runs once the CALLRESULT is on the wire."""

    payload: dict[str, Any]
    after: Callable[[], Coroutine[Any, Any, None]] | None = None


Handler = Callable[[dict[str, Any]], Awaitable[Reply]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]
FrameLog = Callable[[str, str], None]


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
    ) -> None:
        self.response_timeout_s = response_timeout_s
        self.max_frame_bytes = max_frame_bytes
        self.handlers: dict[str, Handler] = {}
        # Whether CSMS calls are answered at all (False while Rejected: the
        # station then sends nothing, answers included).
        self.answering: Callable[[], bool] = lambda: True
        self._spawn = spawn
        self._frame_log = frame_log
        counter = itertools.count(1)
        prefix = uuid.uuid4().hex[:8]
        self._new_id = id_factory or (lambda: f"{prefix}-{next(counter)}")
        self._lock = asyncio.Lock()
        self._ws: Socket | None = None
        self._pending: tuple[str, str, asyncio.Future[frames.Incoming]] | None = None
        self.last_sent_at = time.monotonic()
        self.last_call_at = time.monotonic()
        self.connected_event = asyncio.Event()
        self.disconnected_event = asyncio.Event()
        self.disconnected_event.set()

    # ------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def on(self, action: str, handler: Handler) -> None:
        self.handlers[action] = handler

    async def _send(self, ws: Socket, text: str) -> None:
        if self._frame_log:
            self._frame_log("out", text)
        await ws.send(text)
        self.last_sent_at = time.monotonic()

    # ------------------------------------------------------------ own calls

    async def call(
        self, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one CALL and return the CALLRESULT payload.

        Raises NotConnected, CallTimeout, CallErrorReceived or InvalidResponse.
        """
        try:
            frames.validate_call(action, payload)
        except ProtocolViolation as err:
            log.error("refusing to send an invalid %s: %s", action, err.description)
            raise InvalidRequest(f"{action}: {err.description}") from err
        async with self._lock:
            ws = self._ws
            if ws is None:
                raise NotConnected(f"{action}: not connected")
            uid = self._new_id()
            future: asyncio.Future[frames.Incoming] = asyncio.get_running_loop().create_future()
            self._pending = (uid, action, future)
            try:
                try:
                    await self._send(ws, frames.call_frame(uid, action, payload))
                    self.last_call_at = time.monotonic()
                except Exception as err:  # connection closed under us
                    raise NotConnected(f"{action}: send failed: {err}") from err
                try:
                    async with asyncio.timeout(timeout or self.response_timeout_s):
                        answer = await future
                except TimeoutError:
                    raise CallTimeout(f"{action}: no answer within timeout") from None
            finally:
                self._pending = None
        if isinstance(answer, frames.IncomingError):
            raise CallErrorReceived(answer.code, answer.description, answer.details)
        try:
            frames.validate_result(action, answer.payload)
        except ProtocolViolation as err:
            raise InvalidResponse(f"{action}: invalid CALLRESULT: {err.description}") from err
        result: dict[str, Any] = answer.payload
        return result

    # ------------------------------------------------------------ serving

    async def serve(self, ws: Socket) -> None:
        """Read frames from ``ws`` until it closes; answer the CSMS's calls."""
        self._ws = ws
        self.disconnected_event.clear()
        self.connected_event.set()
        try:
            async with asyncio.TaskGroup() as handlers:
                async for message in ws:
                    self._on_frame(ws, message, handlers)
        except Exception as err:  # connection closed abnormally
            log.info("connection closed: %s", err)
        finally:
            self._ws = None
            self.connected_event.clear()
            self.disconnected_event.set()
            if self._pending and not self._pending[2].done():
                self._pending[2].set_exception(NotConnected("connection lost"))

    def _on_frame(self, ws: Socket, message: str | bytes, tasks: asyncio.TaskGroup) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        if self._frame_log:
            self._frame_log("in", text if len(text) <= 2000 else text[:2000] + "…")
        if len(message) > self.max_frame_bytes:
            match = _CALL_ID.match(text[:200])
            log.warning("dropping oversized frame of %d bytes", len(message))
            if match and self.answering():
                reply = frames.error_frame(
                    match.group(1),
                    "FormationViolation",
                    f"frame exceeds {self.max_frame_bytes} bytes",
                )
                tasks.create_task(self._send_quietly(ws, reply))
            return
        try:
            incoming = frames.parse(message)
        except frames.FrameError as err:
            log.warning("malformed frame from CSMS: %s", err.description)
            if err.unique_id is not None and self.answering():
                reply = frames.error_frame(err.unique_id, err.code, err.description)
                tasks.create_task(self._send_quietly(ws, reply))
            return
        if isinstance(incoming, frames.IncomingCall):
            if not self.answering():
                log.info("not answering %s while registration is Rejected", incoming.action)
                return
            tasks.create_task(self._answer(ws, incoming))
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

    async def _answer(self, ws: Socket, call: frames.IncomingCall) -> None:
        reply: Reply | None = None
        try:
            reply = await self._handle(call)
            text = frames.result_frame(call.unique_id, reply.payload)
        except ProtocolViolation as err:
            text = frames.error_frame(call.unique_id, err.code, err.description, err.details)
            reply = None
        await self._send_quietly(ws, text)
        if reply is not None and reply.after is not None:
            self._spawn(reply.after())

    async def _handle(self, call: frames.IncomingCall) -> Reply:
        handler = self.handlers.get(call.action)
        if handler is None:
            if call.action in frames.KNOWN_ACTIONS:
                raise ProtocolViolation("NotSupported", f"{call.action} is not supported")
            raise ProtocolViolation("NotImplemented", f"unknown action {call.action!r}")
        frames.validate_call(call.action, call.payload)
        try:
            reply = await handler(call.payload)
        except ProtocolViolation:
            raise
        except Exception as err:
            log.exception("handler for %s failed", call.action)
            raise ProtocolViolation("InternalError", f"{type(err).__name__}: {err}") from err
        try:
            frames.validate_result(call.action, reply.payload)
        except ProtocolViolation as err:
            log.error("handler for %s produced an invalid answer: %s", call.action, err)
            raise ProtocolViolation("InternalError", "could not build a valid answer") from err
        return reply
