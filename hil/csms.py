"""Scriptable OCPP 1.6J and 2.0.1 central system for the end-to-end tests and ``make demo``.

Every frame in both directions is recorded per charge point (see :class:`StationLog`),
station CALLs and CALLRESULTs are checked against the OCA JSON schemas shipped with the
``ocpp`` package for the version the connection speaks, and tests can override any
answer through :attr:`BenchCsms.handlers`. :attr:`BenchCsms.versions` says which
versions it speaks (``ocpp1.6`` only by default), in its order of preference.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import enum
import hmac
import inspect
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import unquote, urlsplit

from ocpp.exceptions import FormationViolationError, OCPPError
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.messages import Call, CallError, CallResult, unpack, validate_payload
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHeader
from websockets.headers import build_www_authenticate_basic, parse_authorization_basic
from websockets.http11 import Request, Response
from websockets.typing import Data, Subprotocol

from hil import answers_v201
from hil.station_log import (
    CALL,
    CALLERROR,
    CALLRESULT,
    CallErrorReceived,
    Frame,
    Printer,
    StationLog,
    error_cause,
    format_frame,
)
from hil.tls_front import CERTIFICATE_HEADER, VERSION_HEADER, TlsFront
from hil.versions import KNOWN_ACTIONS, SUBPROTOCOLS, V16, V201, check_versions

__all__ = [
    "NO_REPLY",
    "BenchCsms",
    "CallErrorReceived",
    "CallErrorReply",
    "Frame",
    "Handler",
    "StationLog",
    "format_frame",
]

log = logging.getLogger(__name__)

PATH_PREFIX: Final = "/ocpp/"
MAX_FRAME: Final = 8 * 1024 * 1024
CLOSE_TIMEOUT: Final = 2.0
_EMPTY_ANSWERS: Final = frozenset(
    {
        "StatusNotification",
        "MeterValues",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "SecurityEventNotification",
        "LogStatusNotification",
        "SignedFirmwareStatusNotification",
    }
)


class _NoReply(enum.Enum):
    NO_REPLY = "NO_REPLY"


NO_REPLY: Final = _NoReply.NO_REPLY
"""Handler result meaning: leave that CALL unanswered."""


@dataclass
class CallErrorReply:
    """Handler result meaning: answer with this CALLERROR."""

    code: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)


Reply = dict[str, Any] | CallErrorReply | _NoReply | None
Handler = Callable[[str, dict[str, Any]], Reply | Awaitable[Reply]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    try:
        return parse_authorization_basic(header)
    except InvalidHeader:
        return None


def _cp_id_from_path(path: str) -> str | None:
    route = urlsplit(path).path
    if not route.startswith(PATH_PREFIX):
        return None
    cp_id = unquote(route[len(PATH_PREFIX) :])
    return cp_id if cp_id and "/" not in cp_id else None


def _error_reply(exc: Any) -> CallErrorReply:
    # ocpp puts the offending message object into details; keep only the JSON-safe cause.
    return CallErrorReply(exc.code, exc.description, {"cause": error_cause(exc)})


class BenchCsms:
    """A websocket OCPP CSMS listening on ``url``; stations connect to ``url/<cp_id>``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        heartbeat_interval: int = 60,
        boot_status: str = "Accepted",
        printer: Printer | None = None,
        tls: ssl.SSLContext | None = None,
        versions: Sequence[str] = (V16,),
    ) -> None:
        self.host = host
        # The OCPP versions it accepts, preferred first; changing it affects the next
        # handshakes. A station offering none of them is closed after the handshake.
        self.versions = check_versions(list(versions))
        # TLS (wss://) with this context; its verify_mode decides about client certificates
        # (hil.pki.server_context). Changing it (or ``tls_front.context``) affects the next
        # handshakes. The websocket server then listens on a loopback port of its own behind
        # ``tls_front``, which does TLS as a CSMS front end does (alerts included).
        self.tls = tls
        self.tls_front: TlsFront | None = None
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self.boot_status = boot_status
        self._printer = printer
        self.id_tags: dict[str, str] = {}
        self.default_id_tag_status = "Accepted"
        self.parent_id_tags: dict[str, str] = {}
        self.next_transaction_id = 1
        self.passwords: dict[str, str] = {}
        self.refuse = False
        # Seconds before each answer to a station CALL: a slow link or a busy CSMS.
        self.answer_delay_s = 0.0
        self.handlers: dict[str, Handler] = {}
        self._stations: dict[str, StationLog] = {}
        self._server: Server | None = None

    @property
    def printer(self) -> Printer | None:
        """Receives one readable line per frame and connection event (all stations)."""
        return self._printer

    @printer.setter
    def printer(self, printer: Printer | None) -> None:
        self._printer = printer
        for st in self._stations.values():
            st.printer = printer

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "ws" if self.tls is None else "wss"
        return f"{scheme}://{host}:{self.port}/ocpp"

    # --------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("bench CSMS already started")
        behind_tls = self.tls is not None
        self._server = await serve(
            self._connection,
            "127.0.0.1" if behind_tls else self.host,
            0 if behind_tls else self.port,
            subprotocols=[Subprotocol(name) for name in SUBPROTOCOLS.values()],
            select_subprotocol=self._select_subprotocol,
            process_request=self._process_request,
            max_size=MAX_FRAME,
            close_timeout=CLOSE_TIMEOUT,
        )
        port = self._server.sockets[0].getsockname()[1]
        if self.tls is not None:
            self.tls_front = TlsFront(self.tls, port, self.host, self.port)
            await self.tls_front.start()
            port = self.tls_front.port
        self.port = port

    async def stop(self) -> None:
        front, self.tls_front = self.tls_front, None
        if front is not None:
            await front.stop()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ----------------------------------------------------------------- stations

    def station(self, cp_id: str) -> StationLog:
        if cp_id not in self._stations:
            self._stations[cp_id] = StationLog(cp_id, self._printer)
        return self._stations[cp_id]

    async def wait_connected(self, cp_id: str, timeout: float = 10) -> StationLog:
        st = self.station(cp_id)
        await st._wait_until(
            lambda: True if st.connected else None,
            timeout,
            lambda: (
                f"{cp_id} did not connect within {timeout}s "
                f"(connections so far: {st.connections}, refused: {st.rejections})"
            ),
        )
        return st

    async def drop(self, cp_id: str, *, code: int = 1000, abort: bool = False) -> None:
        """Close the station's websocket from the CSMS side (``abort``: without a close frame)."""
        st = self.station(cp_id)
        ws = st._ws
        if ws is None:
            return
        if abort:
            ws.transport.abort()
        else:
            await ws.close(code, "closed by bench CSMS")
        await st._wait_until(
            lambda: True if st._ws is not ws else None,
            CLOSE_TIMEOUT + 5,
            lambda: f"{cp_id}: connection handler did not finish after drop",
        )

    # ---------------------------------------------------------------- handshake

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        for version in check_versions(self.versions):
            if SUBPROTOCOLS[version] in offered:
                return Subprotocol(SUBPROTOCOLS[version])
        return None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        cp_id = _cp_id_from_path(request.path)
        if cp_id is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Expected /ocpp/<chargePointId>\n")
        st = self.station(cp_id)
        st.basic_auth.append(_basic_auth(request))
        certificate, version = self._tls_session(request)
        st.client_certificates.append(certificate)
        st.tls_versions.append(version)
        response: Response | None = None
        if self.refuse:
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Refusing connections\n")
        elif cp_id in self.passwords and not self._authorized(cp_id, request):
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid credentials\n")
            response.headers["WWW-Authenticate"] = build_www_authenticate_basic("bench-csms")
        if response is not None:
            st.rejections.append(response.status_code)
            st._event(f"handshake refused: HTTP {response.status_code}")
        return response

    def _tls_session(self, request: Request) -> tuple[bytes | None, str | None]:
        """The client certificate and TLS version, as the TLS front passed them on."""
        if self.tls_front is None:
            return None, None
        version = request.headers.get(VERSION_HEADER.decode())
        value = request.headers.get(CERTIFICATE_HEADER.decode())
        certificate = base64.b64decode(value) if value and value != "-" else None
        return certificate, version

    def _authorized(self, cp_id: str, request: Request) -> bool:
        # Security profile 3: a client certificate the TLS layer verified, naming the station.
        if self.station(cp_id).client_certificate_names[-1:] == [cp_id]:
            return True
        credentials = _basic_auth(request)
        if credentials is None:
            return False
        user, password = credentials
        expected = self.passwords[cp_id].encode()
        return user == cp_id and hmac.compare_digest(password.encode(), expected)

    # --------------------------------------------------------------- connection

    async def _connection(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        cp_id = _cp_id_from_path(ws.request.path)
        assert cp_id is not None
        st = self.station(cp_id)
        offered = [
            name.strip()
            for header in ws.request.headers.get_all("Sec-WebSocket-Protocol")
            for name in header.split(",")
            if name.strip()
        ]
        if ws.subprotocol is None and offered:
            # OCPP-J: a CSMS that speaks none of the offered subprotocols completes the
            # handshake without one and closes at once. Not the station's fault.
            st._unsupported(offered)
            await ws.close(1002, "none of the offered subprotocols is supported")
            return
        previous = st._ws
        st._attach(ws)
        if previous is not None:
            await previous.close(1000, "superseded by a new connection")
        if ws.subprotocol is None:
            st._violation(f"handshake without an OCPP subprotocol (offered: {offered})")
        answering: set[asyncio.Task[None]] = set()
        try:
            async with asyncio.TaskGroup() as tg:
                try:
                    async for data in ws:
                        reaction = await self._on_frame(st, ws, data)
                        if reaction is not None:
                            task = tg.create_task(reaction)
                            answering.add(task)
                            task.add_done_callback(answering.discard)
                except ConnectionClosed:
                    pass
                finally:
                    for task in answering:
                        task.cancel()
        finally:
            st._detach(ws)

    async def _on_frame(
        self, st: StationLog, ws: ServerConnection, data: Data
    ) -> Coroutine[Any, Any, None] | None:
        """Record and check one station frame; return what must be sent back, if anything."""
        raw = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
        frame = st._record("in", raw)
        if not isinstance(data, str):
            st._violation("binary websocket frame (OCPP-J uses text frames)")
        msg = frame.message
        uid = msg[1] if msg and len(msg) > 1 else None
        try:
            unpacked = unpack(raw)
        except OCPPError as exc:
            why = f"{exc.code}: {error_cause(exc)}"
            st._violation(f"malformed frame ({why}): {raw[:200]}")
            if msg and msg[0] in (CALLRESULT, CALLERROR) and isinstance(uid, str):
                st._malformed_reply(uid, why)
            error = _error_reply(exc)
        else:
            uid = unpacked.unique_id
            if not isinstance(unpacked, Call):
                await st._on_reply(unpacked, frame)
                return None
            action, payload = unpacked.action, unpacked.payload
            if isinstance(uid, str) and isinstance(action, str) and isinstance(payload, dict):
                st._record_call(action, payload)
                return self._answer(st, ws, unpacked)
            st._violation(f"malformed CALL: {raw[:200]}")
            error = _error_reply(FormationViolationError("Malformed CALL"))
        if msg and msg[0] == CALL and isinstance(uid, str):
            return self._send_reply(st, ws, uid, error)
        return None

    # ------------------------------------------------------------------ answers

    async def _answer(self, st: StationLog, ws: ServerConnection, call: Any) -> None:
        try:
            reply = await self._reply_for(st, call)
        except Exception as exc:
            log.exception("bench CSMS handler for %s failed", call.action)
            reply = CallErrorReply("InternalError", f"bench handler failed: {exc!r}")
        if self.answer_delay_s > 0:
            await asyncio.sleep(self.answer_delay_s)
        await self._send_reply(st, ws, call.unique_id, reply)

    async def _send_reply(
        self, st: StationLog, ws: ServerConnection, unique_id: str, reply: Reply
    ) -> None:
        if reply is NO_REPLY or reply is None:
            return
        if isinstance(reply, CallErrorReply):
            text = CallError(unique_id, reply.code, reply.description, reply.details).to_json()
        else:
            text = CallResult(unique_id, reply).to_json()
        with contextlib.suppress(ConnectionError):
            await st._send_on(ws, text)

    async def _reply_for(self, st: StationLog, call: Any) -> Reply:
        known = True
        version = st.version
        try:
            await validate_payload(
                Call(call.unique_id, call.action, copy.deepcopy(call.payload)), version
            )
        except OcppNotImplementedError:
            known = False
            st._violation(f"CALL {call.action} ({call.unique_id}): unknown action")
        except OCPPError as exc:
            st._violation(f"CALL {call.action} ({call.unique_id}): {exc.code}: {error_cause(exc)}")
            reply = _error_reply(exc)
            if version == V201 and exc.code == "ProtocolError":
                # The package's word for a missing field; Part 4's is the occurrence code.
                reply.code = "OccurrenceConstraintViolation"
            return reply
        handler = self.handlers.get(call.action)
        if handler is not None:
            result = handler(st.cp_id, copy.deepcopy(call.payload))  # keep the log intact
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                return result
        if version == V201:
            answer = answers_v201.default_answer(self, call.action, call.payload, _now)
            if answer is not None:
                return answer
            if call.action in KNOWN_ACTIONS[V201]:
                return CallErrorReply("NotSupported", f"the bench does not support {call.action}")
            return CallErrorReply("NotImplemented", f"unknown action {call.action!r}")
        answer = self._default_answer(call.action, call.payload) if known else None
        if answer is None:
            return CallErrorReply("NotImplemented", f"{call.action} is not handled by the bench")
        return answer

    def _id_tag_info(self, id_tag: str) -> dict[str, Any]:
        info = {"status": self.id_tags.get(id_tag, self.default_id_tag_status)}
        if id_tag in self.parent_id_tags:
            info["parentIdTag"] = self.parent_id_tags[id_tag]
        return info

    def _default_answer(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if action == "BootNotification":
            return {
                "status": self.boot_status,
                "currentTime": _now(),
                "interval": self.heartbeat_interval,
            }
        if action == "Heartbeat":
            return {"currentTime": _now()}
        if action == "Authorize":
            return {"idTagInfo": self._id_tag_info(payload["idTag"])}
        if action == "StartTransaction":
            transaction_id, self.next_transaction_id = (
                self.next_transaction_id,
                self.next_transaction_id + 1,
            )
            return {
                "transactionId": transaction_id,
                "idTagInfo": self._id_tag_info(payload["idTag"]),
            }
        if action == "StopTransaction":
            return {"idTagInfo": self._id_tag_info(payload["idTag"])} if "idTag" in payload else {}
        if action == "DataTransfer":
            return {"status": "UnknownVendorId"}
        if action == "SignCertificate":
            return {"status": "Accepted"}
        return {} if action in _EMPTY_ANSWERS else None


if __name__ == "__main__":
    from hil.csms_cli import main

    raise SystemExit(main())
