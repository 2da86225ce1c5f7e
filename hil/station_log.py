"""What the bench CSMS saw and sent for one charge point, plus the CSMS-side API to talk to it."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, is_dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from cryptography import x509
from cryptography.x509.oid import NameOID
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError
from ocpp.messages import Call, CallError, CallResult, validate_payload
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from hil.versions import CALLERROR_CODES, V16, V201, version_of

__all__ = [
    "CALL",
    "CALLERROR",
    "CALLRESULT",
    "CallErrorReceived",
    "Frame",
    "Printer",
    "StationLog",
    "error_cause",
    "format_frame",
    "payload_dict",
]

Printer = Callable[[str], None]

CALL = 2
CALLRESULT = 3
CALLERROR = 4

_T = TypeVar("_T")


class CallErrorReceived(Exception):
    """The station answered a CSMS call with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any]) -> None:
        super().__init__(f"CALLERROR {code}: {description!r} {details}")
        self.code = code
        self.description = description
        self.details = details


@dataclass
class Frame:
    """One websocket text frame; ``direction`` "in" means sent by the station."""

    direction: Literal["in", "out"]
    raw: str
    at: float
    message: list[Any] | None
    connection: int = 0  # which of the station's connections it went over (1 = the first)


def _parse(raw: str) -> list[Any] | None:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def format_frame(
    cp_id: str, frame: Frame, action: str | None, *, max_length: int | None = None
) -> str:
    """One readable line for a frame; ``action`` names the call a RESULT/ERROR answers."""
    wall = time.time() - (time.monotonic() - frame.at)
    stamp = datetime.fromtimestamp(wall).strftime("%H:%M:%S.%f")[:-3]
    arrow = f"{cp_id} → CSMS" if frame.direction == "in" else f"CSMS → {cp_id}"
    msg = frame.message
    name = action or "?"
    if msg and msg[0] == CALL and len(msg) == 4:
        body = f"CALL {msg[2]} {_json(msg[3])}"
    elif msg and msg[0] == CALLRESULT and len(msg) == 3:
        body = f"RESULT {name} {_json(msg[2])}"
    elif msg and msg[0] == CALLERROR and len(msg) == 5:
        body = f"ERROR {name} {msg[2]} {_json(msg[3])} {_json(msg[4])}"
    else:
        body = f"RAW {frame.raw}"
    if max_length is not None and len(body) > max_length:
        body = body[:max_length] + " …"
    return f"{stamp}  {arrow}  {body}"


def payload_dict(action: str, payload: Any) -> dict[str, Any]:
    """A camelCase payload from a dict or an ``ocpp.v16.call`` / ``ocpp.v201.call`` dataclass."""
    if is_dataclass(payload) and not isinstance(payload, type):
        if type(payload).__name__ != action:
            raise ValueError(f"payload {type(payload).__name__} does not match action {action}")
        converted: dict[str, Any] = snake_to_camel_case(remove_nones(serialize_as_dict(payload)))
        return converted
    if not isinstance(payload, dict):
        raise TypeError(f"payload must be a dict or an ocpp call dataclass, not {payload!r}")
    return dict(payload)


def _common_name(der: bytes | None) -> str | None:
    if der is None:
        return None
    names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _summary(actions: list[str]) -> str:
    runs: list[list[Any]] = []
    for action in actions:
        if runs and runs[-1][0] == action:
            runs[-1][1] += 1
        else:
            runs.append([action, 1])
    return ", ".join(a if n == 1 else f"{a} x{n}" for a, n in runs) or "nothing"


class StationLog:
    """Everything exchanged with one charge point id; survives reconnections."""

    @property
    def client_certificate_names(self) -> list[str | None]:
        """The common name of every handshake's client certificate (None: none)."""
        return [_common_name(der) for der in self.client_certificates]

    def __init__(self, cp_id: str, printer: Printer | None = None) -> None:
        self.cp_id = cp_id
        self.frames: list[Frame] = []
        self.connected = False
        self.connections = 0
        self.subprotocol: str | None = None
        # The OCPP version of the current (or last) connection, and of each one.
        self.version = V16
        self.versions: list[str] = []
        # The subprotocols of every handshake that offered none the bench speaks.
        self.unsupported_offers: list[list[str]] = []
        self.violations: list[str] = []
        self.rejections: list[int] = []  # HTTP status of every refused handshake
        # (close code, reason) of every connection that ended, as the CSMS saw it.
        self.closes: list[tuple[int | None, str | None]] = []
        # Every handshake's Basic auth (user, password); None: no Authorization header.
        self.basic_auth: list[tuple[str, str] | None] = []
        # Every handshake's TLS client certificate (DER; None: none, or no TLS) and version.
        self.client_certificates: list[bytes | None] = []
        self.tls_versions: list[str | None] = []
        self.printer = printer  # called with one readable line per frame/event
        self._actions: list[str] = []
        self._payloads: list[dict[str, Any]] = []
        self._station_call_actions: dict[str, str] = {}  # station CALL id -> action
        self._csms_call_actions: dict[str, str] = {}  # CSMS CALL id -> action
        self._awaiting: dict[str, str] = {}  # CSMS CALL ids not answered yet -> action
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._replies: dict[str, list[Any]] = {}
        self._call_lock = asyncio.Lock()
        self._ws: ServerConnection | None = None
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ queries

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """Payloads of the CALLs received from the station, in arrival order."""
        pairs = zip(self._actions, self._payloads, strict=True)
        return [p for a, p in pairs if action is None or a == action]

    def mark(self) -> int:
        """Index to pass as ``since`` to wait only for calls received from now on."""
        return len(self._actions)

    async def wait_for(
        self,
        action: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float = 10,
        since: int = 0,
    ) -> dict[str, Any]:
        """First CALL ``action`` received at index >= ``since`` that satisfies ``predicate``."""
        scanned = since

        def find() -> dict[str, Any] | None:
            nonlocal scanned
            while scanned < len(self._actions):
                index, scanned = scanned, scanned + 1
                payload = self._payloads[index]
                if self._actions[index] == action and (predicate is None or predicate(payload)):
                    return payload
            return None

        def failure() -> str:
            which = " matching the predicate" if predicate else ""
            state = "connected" if self.connected else "not connected"
            return (
                f"{self.cp_id}: no {action} CALL{which} within {timeout}s (since #{since}, "
                f"{state}); received since then: {_summary(self._actions[since:])}"
            )

        return await self._wait_until(find, timeout, failure)

    async def wait_reply(self, unique_id: str, *, timeout: float = 10) -> list[Any]:
        """The CALLRESULT/CALLERROR frame the station sent for ``unique_id``."""
        return await self._wait_until(
            lambda: self._replies.get(unique_id),
            timeout,
            lambda: f"{self.cp_id}: no reply to {unique_id!r} within {timeout}s",
        )

    async def wait_answer(
        self, action: str, payload: dict[str, Any], *, timeout: float = 10
    ) -> list[Any]:
        """The CALLRESULT/CALLERROR frame the CSMS sent for the station's CALL ``action`` whose
        payload equals ``payload`` (e.g. the transactionId given to a StartTransaction)."""

        def find() -> list[Any] | None:
            uids = {
                f.message[1]
                for f in self.frames
                if f.direction == "in"
                and f.message
                and len(f.message) == 4
                and f.message[0] == CALL
                and f.message[2] == action
                and f.message[3] == payload
            }
            for f in self.frames:
                msg = f.message
                if f.direction != "out" or not msg or len(msg) < 2:
                    continue
                if msg[0] in (CALLRESULT, CALLERROR) and msg[1] in uids:
                    return msg
            return None

        return await self._wait_until(
            find, timeout, lambda: f"{self.cp_id}: the CSMS did not answer {action} {payload}"
        )

    # ---------------------------------------------------------------- sending

    async def call(
        self,
        action: str,
        payload: Any,
        *,
        timeout: float = 10,
    ) -> dict[str, Any]:
        """Send a CALL to the station and return the CALLRESULT payload."""
        body = payload_dict(action, payload)
        try:
            async with asyncio.timeout(timeout):
                async with self._call_lock:
                    ws = self._current()
                    unique_id = str(uuid.uuid4())
                    future = asyncio.get_running_loop().create_future()
                    self._pending[unique_id] = future
                    try:
                        await self._send_on(ws, Call(unique_id, action, body).to_json())
                        reply = await future
                    finally:
                        self._pending.pop(unique_id, None)
        except TimeoutError:
            raise TimeoutError(
                f"{self.cp_id}: no reply to {action} within {timeout}s "
                f"({'connected' if self.connected else 'not connected'})"
            ) from None
        if reply[0] == CALLERROR:
            raise CallErrorReceived(reply[2], reply[3], reply[4])
        result: dict[str, Any] = reply[2]
        return result

    async def send_raw(self, text: str) -> None:
        """Send any text frame as-is (malformed frames included)."""
        await self._send_on(self._current(), text)

    # ------------------------------------------------------ used by BenchCsms

    def _current(self) -> ServerConnection:
        if self._ws is None:
            raise ConnectionError(f"{self.cp_id} is not connected")
        return self._ws

    async def _send_on(self, ws: ServerConnection, text: str) -> None:
        self._record("out", text)
        try:
            await ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionError(f"{self.cp_id}: connection closed while sending") from exc

    def _record(self, direction: Literal["in", "out"], raw: str) -> Frame:
        frame = Frame(direction, raw, time.monotonic(), _parse(raw), self.connections)
        msg = frame.message
        action: str | None = None
        own, other = (
            (self._station_call_actions, self._csms_call_actions)
            if direction == "in"
            else (self._csms_call_actions, self._station_call_actions)
        )
        if msg and len(msg) > 1 and isinstance(msg[1], str):
            uid = msg[1]
            if msg[0] == CALL:  # even a malformed CALL may be answered by its id
                action = own[uid] = msg[2] if len(msg) > 2 and isinstance(msg[2], str) else ""
                if direction == "out":
                    self._awaiting[uid] = action
            elif msg[0] in (CALLRESULT, CALLERROR):
                action = other.get(uid)
                if direction == "in":
                    self._replies[uid] = msg
        self.frames.append(frame)
        if self.printer is not None:
            self.printer(format_frame(self.cp_id, frame, action))
        self._notify()
        return frame

    def _record_call(self, action: str, payload: dict[str, Any]) -> None:
        self._actions.append(action)
        self._payloads.append(payload)
        self._notify()

    def _violation(self, text: str) -> None:
        self.violations.append(text)
        self._event(f"VIOLATION {text}")

    def _event(self, text: str) -> None:
        if self.printer is not None:
            stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
            self.printer(f"{stamp}  {self.cp_id}  {text}")

    async def _on_reply(self, msg: Any, frame: Frame) -> None:
        """Check a CALLRESULT/CALLERROR from the station and hand it to the waiting call()."""
        uid = msg.unique_id
        action = self._awaiting.pop(uid, None) if isinstance(uid, str) else None
        if action is None:  # "" is a known id whose CALL had no usable action
            self._violation(f"reply to unknown unique id {uid!r}: {frame.raw[:200]}")
            return
        problem = await _check_reply(msg, action, self.version)
        if problem is not None:
            self._violation(f"{action} ({uid}): {problem}")
        future = self._pending.get(uid)
        if future is not None and not future.done():
            if _usable(msg):
                future.set_result(frame.message or [])
            else:
                future.set_exception(ValueError(f"{self.cp_id}: malformed reply: {problem}"))

    def _malformed_reply(self, unique_id: str, why: str) -> None:
        """A reply frame for ``unique_id`` that cannot even be unpacked."""
        self._awaiting.pop(unique_id, None)
        future = self._pending.get(unique_id)
        if future is not None and not future.done():
            future.set_exception(ValueError(f"{self.cp_id}: malformed reply: {why}"))

    def _attach(self, ws: ServerConnection) -> None:
        if self._ws is not None:
            self._forget_connection("superseded by a new connection")
            self._event("previous connection superseded")
        self._ws = ws
        self.connected = True
        self.connections += 1
        self.subprotocol = ws.subprotocol
        # Without a subprotocol (a violation of its own) the station is taken as 1.6.
        self.version = version_of(ws.subprotocol) or V16
        self.versions.append(self.version)
        self._event(f"connected (#{self.connections}, subprotocol {self.subprotocol})")
        self._notify()

    def _unsupported(self, offered: list[str]) -> None:
        self.unsupported_offers.append(offered)
        self._event(f"handshake closed: no supported subprotocol among {offered}")
        self._notify()

    def _detach(self, ws: ServerConnection) -> None:
        if self._ws is not ws:
            return
        self._ws = None
        self.connected = False
        self.closes.append((ws.close_code, ws.close_reason))
        self._forget_connection("disconnected")
        self._event(f"disconnected (code {ws.close_code}, reason {ws.close_reason!r})")
        self._notify()

    def _forget_connection(self, why: str) -> None:
        """CSMS calls sent on the current connection will never be answered now."""
        self._awaiting.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"{self.cp_id} {why}"))

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_until(
        self, find: Callable[[], _T | None], limit: float, failure: Callable[[], str]
    ) -> _T:
        try:
            async with asyncio.timeout(limit):
                while (found := find()) is None:
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(failure()) from None
        return found


def error_cause(exc: Any) -> str:
    """The human-readable cause of an ``ocpp.exceptions.OCPPError``."""
    details = exc.details if isinstance(exc.details, dict) else {}
    return str(details.get("cause", exc.description))


def _usable(msg: Any) -> bool:
    """Whether a reply has the element types a caller can rely on."""
    if isinstance(msg, CallError):
        return (
            isinstance(msg.error_code, str)
            and isinstance(msg.error_description, str)
            and isinstance(msg.error_details, dict)
        )
    return isinstance(msg.payload, dict)


async def _check_reply(msg: Any, action: str, version: str) -> str | None:
    if isinstance(msg, CallError):
        if not _usable(msg):
            return f"malformed CALLERROR {msg.to_json()}"
        if version == V201:
            # Part 4's table, not the package's (it lacks two codes and spells one otherwise).
            if msg.error_code not in CALLERROR_CODES[V201]:
                return f"CALLERROR with an error code OCPP 2.0.1 does not have: {msg.error_code!r}"
            return None
        try:
            msg.to_exception()
        except UnknownCallErrorCodeError:
            return f"CALLERROR with unknown error code {msg.error_code!r}"
        return None
    if not _usable(msg):
        return f"CALLRESULT payload is not an object: {msg.payload!r}"
    if not action:
        return None
    try:
        await validate_payload(
            CallResult(msg.unique_id, copy.deepcopy(msg.payload), action), version
        )
    except OcppNotImplementedError:
        return None  # no schema for that action: nothing to check against
    except OCPPError as exc:
        return f"CALLRESULT {exc.code}: {error_cause(exc)}"
    return None
