"""The bench CSMS, driven by a plain websocket client acting as a charge point."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.messages import Call, CallError, CallResult, validate_payload
from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus, ResetType
from ocpp.v201 import call as call201
from ocpp.v201.enums import ResetEnumType
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.headers import build_authorization_basic
from websockets.typing import Subprotocol

from hil.csms import (
    NO_REPLY,
    BenchCsms,
    CallErrorReceived,
    CallErrorReply,
    Frame,
    format_frame,
)
from hil.pki import Authority, server_context, write_pem

ROOT = Path(__file__).resolve().parents[2]
BOOT = {"chargePointVendor": "Acme", "chargePointModel": "Wallbox"}
START = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z"}


class Station:
    """A minimal charge point: sends CALLs and answers with explicit frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def send_call(self, action: str, payload: dict[str, Any]) -> str:
        self.next_id += 1
        uid = f"cp-{self.next_id}"
        await self.ws.send(Call(uid, action, payload).to_json())
        return uid

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        uid = await self.send_call(action, payload)
        reply = await self.recv()
        assert reply[1] == uid
        return reply

    async def recv(self, within: float = 2) -> list[Any]:
        async with asyncio.timeout(within):
            message: list[Any] = json.loads(await self.ws.recv())
        return message


def station_url(csms: BenchCsms, cp_id: str = "CP-1") -> str:
    return f"{csms.url}/{cp_id}"


def open_station(
    csms: BenchCsms,
    cp_id: str = "CP-1",
    *,
    password: str | None = None,
    subprotocols: list[str] | None = None,
) -> connect:
    headers = {"Authorization": build_authorization_basic(cp_id, password)} if password else None
    offered = ["ocpp1.6"] if subprotocols is None else subprotocols
    return connect(
        station_url(csms, cp_id),
        subprotocols=[Subprotocol(p) for p in offered] or None,
        additional_headers=headers,
        open_timeout=2,
    )


@pytest.fixture
async def csms() -> AsyncIterator[BenchCsms]:
    async with BenchCsms() as server:
        yield server


async def test_boot_is_answered_and_every_frame_recorded(csms: BenchCsms) -> None:
    csms.heartbeat_interval = 42
    async with open_station(csms) as ws:
        assert ws.subprotocol == "ocpp1.6"
        st = Station(ws)
        reply = await st.call("BootNotification", BOOT)
        log = csms.station("CP-1")
        assert reply[0] == 3
        assert reply[2]["status"] == "Accepted" and reply[2]["interval"] == 42
        assert reply[2]["currentTime"].endswith("Z")
        csms.boot_status = "Pending"
        assert (await st.call("BootNotification", BOOT))[2]["status"] == "Pending"
        assert (await st.call("Heartbeat", {}))[2]["currentTime"].endswith("Z")
    assert csms.url == f"ws://127.0.0.1:{csms.port}/ocpp" and csms.port > 0
    assert log.calls("BootNotification") == [BOOT, BOOT]
    assert log.calls() == [BOOT, BOOT, {}]
    assert [f.direction for f in log.frames] == ["in", "out"] * 3
    assert log.frames[0].message == [2, "cp-1", "BootNotification", BOOT]
    assert json.loads(log.frames[1].raw) == log.frames[1].message
    assert log.frames[0].at <= log.frames[1].at <= time.monotonic()
    assert log.connections == 1 and log.subprotocol == "ocpp1.6"
    assert log.violations == []
    await eventually(lambda: not log.connected)


async def eventually(predicate: Callable[[], object], seconds: float = 2) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_default_answers(csms: BenchCsms) -> None:
    csms.id_tags["BAD"] = AuthorizationStatus.blocked
    csms.parent_id_tags["CHILD"] = "PARENT"
    csms.next_transaction_id = 100
    async with open_station(csms) as ws:
        st = Station(ws)
        assert (await st.call("Authorize", {"idTag": "BAD"}))[2] == {
            "idTagInfo": {"status": "Blocked"}
        }
        assert (await st.call("Authorize", {"idTag": "CHILD"}))[2] == {
            "idTagInfo": {"status": "Accepted", "parentIdTag": "PARENT"}
        }
        first = (await st.call("StartTransaction", START))[2]
        second = (await st.call("StartTransaction", START))[2]
        assert (first["transactionId"], second["transactionId"]) == (100, 101)
        stop = {"meterStop": 5, "timestamp": "2024-01-01T01:00:00Z", "transactionId": 100}
        assert (await st.call("StopTransaction", stop))[2] == {}
        with_tag = await st.call("StopTransaction", {**stop, "idTag": "BAD"})
        assert with_tag[2] == {"idTagInfo": {"status": "Blocked"}}
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        assert (await st.call("StatusNotification", status))[2] == {}
        data = await st.call("DataTransfer", {"vendorId": "x"})
        assert data[2] == {"status": "UnknownVendorId"}
        unknown = await st.call("MakeCoffee", {})
        assert unknown[0] == 4 and unknown[2] == "NotImplemented"
    assert csms.next_transaction_id == 102
    assert csms.station("CP-1").violations == ["CALL MakeCoffee (cp-9): unknown action"]


async def test_handlers_override_answers(csms: BenchCsms) -> None:
    async def slow_heartbeat(cp_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"currentTime": "2030-01-01T00:00:00Z"}

    seen: list[tuple[str, dict[str, Any]]] = []
    csms.handlers["Heartbeat"] = slow_heartbeat
    csms.handlers["Authorize"] = lambda cp, p: CallErrorReply("GenericError", "busy", {"a": 1})
    csms.handlers["StatusNotification"] = lambda cp, p: seen.append((cp, p))  # None: default
    async with open_station(csms) as ws:
        st = Station(ws)
        assert (await st.call("Heartbeat", {}))[2] == {"currentTime": "2030-01-01T00:00:00Z"}
        error = await st.call("Authorize", {"idTag": "T"})
        assert error[2:] == ["GenericError", "busy", {"a": 1}]
        status = {"connectorId": 0, "errorCode": "NoError", "status": "Available"}
        assert (await st.call("StatusNotification", status))[0] == 3
    assert seen == [("CP-1", status)]


async def test_no_reply_leaves_the_call_unanswered(csms: BenchCsms) -> None:
    csms.handlers["Heartbeat"] = lambda cp, p: NO_REPLY
    async with open_station(csms) as ws:
        st = Station(ws)
        await st.send_call("Heartbeat", {})
        with pytest.raises(TimeoutError):
            await st.recv(within=0.2)
        del csms.handlers["Heartbeat"]
        assert (await st.call("Heartbeat", {}))[1] == "cp-2"
    log = csms.station("CP-1")
    assert [f.direction for f in log.frames] == ["in", "in", "out"]


async def test_answer_delay_stands_for_a_slow_link(csms: BenchCsms) -> None:
    csms.answer_delay_s = 0.15
    async with open_station(csms) as ws:
        assert (await Station(ws).call("Heartbeat", {}))[0] == 3
    call_frame, answer = csms.station("CP-1").frames
    assert answer.at - call_frame.at >= 0.15


async def test_basic_auth(csms: BenchCsms) -> None:
    csms.passwords["CP-1"] = "s3cret-password-16"
    for password in (None, "wrong"):
        with pytest.raises(InvalidStatus) as refused:
            async with open_station(csms, password=password):
                pass
        assert refused.value.response.status_code == 401
        assert "WWW-Authenticate" in refused.value.response.headers
    async with open_station(csms, password="s3cret-password-16") as ws:
        assert (await Station(ws).call("Heartbeat", {}))[0] == 3
    async with open_station(csms, "CP-2") as ws:  # no password configured: no auth
        assert (await Station(ws).call("Heartbeat", {}))[0] == 3
    log = csms.station("CP-1")
    assert log.connections == 1 and log.rejections == [401, 401]


async def test_refuse_flag_answers_503(csms: BenchCsms) -> None:
    csms.refuse = True
    with pytest.raises(InvalidStatus) as refused:
        async with open_station(csms):
            pass
    assert refused.value.response.status_code == 503
    assert csms.station("CP-1").connections == 0
    csms.refuse = False
    async with open_station(csms):
        assert (await csms.wait_connected("CP-1", timeout=1)).connections == 1


@pytest.mark.parametrize("path", ["/", "/ocpp", "/ocpp/", "/other/CP-1", "/ocpp/CP-1/extra"])
async def test_unknown_path_is_404(csms: BenchCsms, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{csms.port}{path}", open_timeout=2):
            pass
    assert refused.value.response.status_code == 404


async def test_missing_subprotocol_is_accepted_but_recorded(csms: BenchCsms) -> None:
    async with open_station(csms, subprotocols=[]) as ws:
        assert ws.subprotocol is None
        await Station(ws).call("Heartbeat", {})
    log = csms.station("CP-1")
    assert log.subprotocol is None
    assert len(log.violations) == 1 and "subprotocol" in log.violations[0]


async def test_csms_call_with_result_and_with_callerror(csms: BenchCsms) -> None:
    lines: list[str] = []
    async with open_station(csms) as ws:
        log = await csms.wait_connected("CP-1")
        csms.printer = lines.append  # also applies to stations already known
        result = asyncio.create_task(log.call("Reset", call.Reset(type=ResetType.soft)))
        request = await Station(ws).recv()
        assert request[2:] == ["Reset", {"type": "Soft"}]
        await ws.send(CallResult(request[1], {"status": "Accepted"}).to_json())
        assert await result == {"status": "Accepted"}

        failing = asyncio.create_task(log.call("ClearCache", {}))
        request = await Station(ws).recv()
        await ws.send(CallError(request[1], "NotSupported", "no cache", {"x": 1}).to_json())
        with pytest.raises(CallErrorReceived) as error:
            await failing
        assert (error.value.code, error.value.description) == ("NotSupported", "no cache")
        assert error.value.details == {"x": 1}
    assert log.violations == []
    assert any('CP-1 → CSMS  RESULT Reset {"status": "Accepted"}' in line for line in lines)
    assert any("CSMS → CP-1  CALL ClearCache {}" in line for line in lines)
    assert any("ERROR ClearCache NotSupported" in line for line in lines)


async def test_csms_call_timeout_and_not_connected(csms: BenchCsms) -> None:
    with pytest.raises(ConnectionError):
        await csms.station("CP-1").call("ClearCache", {})
    async with open_station(csms) as ws:
        log = await csms.wait_connected("CP-1")
        with pytest.raises(TimeoutError, match="no reply to ClearCache"):
            await log.call("ClearCache", {}, timeout=0.1)
        late = await Station(ws).recv()
        await ws.send(CallResult(late[1], {"status": "Accepted"}).to_json())  # late, not wrong
        await ws.send(CallResult("nobody", {}).to_json())
        await Station(ws).call("Heartbeat", {})  # frames are handled in order
    assert len(log.violations) == 1 and "unknown unique id 'nobody'" in log.violations[0]


async def test_station_schema_violations_are_recorded(csms: BenchCsms) -> None:
    async with open_station(csms) as ws:
        st = Station(ws)
        reply = await st.call("BootNotification", {"chargePointVendor": "Acme"})
        assert reply[0] == 4 and reply[2] == "ProtocolError"
        bad_type = await st.call("Heartbeat", {"unexpected": 1})
        assert bad_type[0] == 4 and bad_type[2] == "FormatViolation"
        await ws.send("not json")
        await ws.send('[2,"m1","Heartbeat"]')
        assert (await st.recv())[:3] == [4, "m1", "ProtocolError"]
        log = await csms.wait_connected("CP-1")
        answer = asyncio.create_task(log.call("Reset", {"type": "Hard"}))
        request = await st.recv()
        await ws.send(CallResult(request[1], {"status": "Maybe"}).to_json())
        assert await answer == {"status": "Maybe"}
    assert log.calls("BootNotification") == [{"chargePointVendor": "Acme"}]
    assert len(log.violations) == 5, log.violations
    assert "chargePointModel" in log.violations[0]
    assert "not valid JSON" in log.violations[2]
    assert log.violations[4].startswith("Reset (")


async def test_wait_for_since_predicate_and_timeout(csms: BenchCsms) -> None:
    async with open_station(csms) as ws:
        st = Station(ws)
        for connector in (0, 1):
            status = {"connectorId": connector, "errorCode": "NoError", "status": "Available"}
            await st.call("StatusNotification", status)
        log = csms.station("CP-1")
        first = await log.wait_for("StatusNotification")
        assert first["connectorId"] == 0
        one = await log.wait_for("StatusNotification", lambda p: p["connectorId"] == 1)
        assert one["connectorId"] == 1
        mark = log.mark()
        assert mark == 2
        later = asyncio.create_task(log.wait_for("StatusNotification", since=mark, timeout=2))
        await asyncio.sleep(0.05)
        assert not later.done()
        charging = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
        await st.call("StatusNotification", charging)
        assert await later == charging
        await st.call("Heartbeat", {})
        with pytest.raises(TimeoutError) as missing:
            await log.wait_for("Authorize", timeout=0.05, since=mark)
    message = str(missing.value)
    assert "no Authorize" in message and "StatusNotification, Heartbeat" in message
    with pytest.raises(TimeoutError, match="matching the predicate"):
        await log.wait_for("StatusNotification", lambda p: False, timeout=0.05)


async def test_send_raw_and_wait_reply(csms: BenchCsms) -> None:
    async with open_station(csms) as ws:
        log = await csms.wait_connected("CP-1")
        await log.send_raw('[2,"raw-1","Reset"]')
        assert await ws.recv() == '[2,"raw-1","Reset"]'
        await ws.send('[4,"raw-1","FormationViolation","bad frame",{}]')
        assert await log.wait_reply("raw-1", timeout=1) == [
            4,
            "raw-1",
            "FormationViolation",
            "bad frame",
            {},
        ]
        with pytest.raises(TimeoutError, match="no reply to 'raw-2'"):
            await log.wait_reply("raw-2", timeout=0.05)
    assert log.violations == []


async def test_drop_and_reconnection_counting(csms: BenchCsms) -> None:
    async with open_station(csms) as ws:
        log = await csms.wait_connected("CP-1")
        await csms.drop("CP-1")
        assert not log.connected
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1000
    with pytest.raises(TimeoutError, match="did not connect"):
        await csms.wait_connected("CP-1", timeout=0.05)
    async with open_station(csms) as ws:
        assert (await csms.wait_connected("CP-1")) is log
        assert log.connected and log.connections == 2
        await Station(ws).call("Heartbeat", {})
    await csms.drop("CP-1")  # not connected any more: nothing to do
    assert len(log.calls("Heartbeat")) == 1


async def test_stop_closes_connections_quickly() -> None:
    csms = BenchCsms()
    await csms.start()
    async with open_station(csms) as ws:
        log = await csms.wait_connected("CP-1")
        pending = asyncio.create_task(log.call("ClearCache", {}))
        await Station(ws).recv()
        started = time.monotonic()
        await csms.stop()
        assert time.monotonic() - started < 1
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        with pytest.raises(ConnectionError):
            await pending
    assert not log.connected


def test_format_frame() -> None:
    now = time.monotonic()
    call_frame = Frame("in", "", now, [2, "1", "BootNotification", {"chargePointVendor": "A"}])
    line = format_frame("CP-1", call_frame, "BootNotification")
    stamp, rest = line.split("  ", 1)
    assert len(stamp) == len("12:00:01.123") and stamp[2] == ":" and stamp[8] == "."
    assert rest == 'CP-1 → CSMS  CALL BootNotification {"chargePointVendor": "A"}'
    result = Frame("out", "", now, [3, "1", {"status": "Accepted"}])
    assert format_frame("CP-1", result, "BootNotification").endswith(
        'CSMS → CP-1  RESULT BootNotification {"status": "Accepted"}'
    )
    error = Frame("in", "", now, [4, "9", "NotSupported", "nope", {}])
    assert format_frame("CP-1", error, None).endswith('CP-1 → CSMS  ERROR ? NotSupported "nope" {}')
    raw = Frame("in", "garbage", now, None)
    assert format_frame("CP-1", raw, None).endswith("CP-1 → CSMS  RAW garbage")


async def test_cli_prints_exchange_and_stops_on_sigint() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hil.csms",
        "--port",
        "0",
        "--heartbeat-interval",
        "7",
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    assert proc.stdout is not None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
        url = banner.split()[4].removesuffix("/<chargePointId>")
        async with connect(f"{url}/CP-9", subprotocols=[Subprotocol("ocpp1.6")]) as ws:
            await ws.send(Call("b1", "BootNotification", BOOT).to_json())
            assert json.loads(await ws.recv())[2]["interval"] == 7
        proc.send_signal(signal.SIGINT)
        output = (await asyncio.wait_for(proc.stdout.read(), 5)).decode()
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "CP-9 → CSMS  CALL BootNotification" in output
    assert "CSMS → CP-9  RESULT BootNotification" in output


async def test_failing_handler_binary_frames_and_a_second_connection(csms: BenchCsms) -> None:
    def broken(cp_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("oops")

    csms.handlers["Heartbeat"] = broken
    async with open_station(csms) as first:
        reply = await Station(first).call("Heartbeat", {})
        assert reply[2] == "InternalError" and "oops" in reply[3]
        await first.send(b'[2,"bin","Authorize",{"idTag":"T"}]')
        assert (await Station(first).recv())[:2] == [3, "bin"]
        log = csms.station("CP-1")
        assert log.violations == ["binary websocket frame (OCPP-J uses text frames)"]
        async with open_station(csms) as second:  # the same id again: the old one is closed
            with pytest.raises(ConnectionClosed):
                await first.recv()
            assert log.connections == 2 and log.connected
            del csms.handlers["Heartbeat"]
            assert (await Station(second).call("Heartbeat", {}))[0] == 3


async def test_wait_answer_finds_what_the_csms_answered(csms: BenchCsms) -> None:
    csms.handlers["Authorize"] = lambda cp, p: CallErrorReply("GenericError", "no", {})
    async with open_station(csms) as ws:
        st = Station(ws)
        log = await csms.wait_connected("CP-1")
        first = await st.call("StartTransaction", START)
        second_start = {**START, "idTag": "TAG2"}
        second = await st.call("StartTransaction", second_start)
        await st.call("Authorize", {"idTag": "T"})
        starts = log.calls("StartTransaction")
        assert await log.wait_answer("StartTransaction", starts[0]) == first
        assert (await log.wait_answer("StartTransaction", starts[1]))[2]["transactionId"] == (
            second[2]["transactionId"]
        )
        assert (await log.wait_answer("Authorize", {"idTag": "T"}))[2] == "GenericError"
        with pytest.raises(TimeoutError, match="did not answer Heartbeat"):
            await log.wait_answer("Heartbeat", {}, timeout=0.05)


# ---------------------------------------------------------------- OCPP 2.0.1

BOOT_201 = {
    "reason": "PowerUp",
    "chargingStation": {"model": "Wallbox", "vendorName": "Acme"},
}
TOKEN = {"idToken": "TAG1", "type": "ISO14443"}
BOTH = ["ocpp2.0.1", "ocpp1.6"]


@pytest.mark.parametrize(
    ("speaks", "offered", "selected"),
    [
        (["2.0.1", "1.6"], BOTH, "ocpp2.0.1"),
        (["2.0.1", "1.6"], ["ocpp1.6"], "ocpp1.6"),
        (["2.0.1", "1.6"], ["ocpp2.0.1"], "ocpp2.0.1"),
        (["1.6", "2.0.1"], BOTH, "ocpp1.6"),  # the CSMS's preference decides
        (["2.0.1"], BOTH, "ocpp2.0.1"),
        (["1.6"], BOTH, "ocpp1.6"),
    ],
)
async def test_the_bench_selects_the_version_it_prefers(
    speaks: list[str], offered: list[str], selected: str
) -> None:
    async with BenchCsms(versions=speaks) as csms, open_station(csms, subprotocols=offered) as ws:
        assert ws.subprotocol == selected
        log = await csms.wait_connected("CP-1")
        assert log.version == selected.removeprefix("ocpp") and log.versions == [log.version]
    assert log.violations == [] and log.unsupported_offers == []


@pytest.mark.parametrize(
    ("speaks", "offered"), [(["1.6"], ["ocpp2.0.1"]), (["2.0.1"], ["ocpp1.6"])]
)
async def test_a_station_offering_no_version_the_bench_speaks_is_closed(
    speaks: list[str], offered: list[str]
) -> None:
    async with BenchCsms(versions=speaks) as csms, open_station(csms, subprotocols=offered) as ws:
        assert ws.subprotocol is None  # the handshake completes without one, then closes
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1002
    log = csms.station("CP-1")
    assert log.unsupported_offers == [offered]
    assert log.connections == 0 and log.violations == []  # offering 2.0.1 is no fault


def test_the_versions_are_checked() -> None:
    for bad in (["1.5"], [], ["1.6", "1.6"], "1.6"):
        with pytest.raises(ValueError, match="versions must be"):
            BenchCsms(versions=bad)


@pytest.fixture
async def csms201() -> AsyncIterator[BenchCsms]:
    async with BenchCsms(versions=["2.0.1"]) as server:
        yield server


def open_201(csms: BenchCsms, cp_id: str = "CP-1") -> connect:
    return open_station(csms, cp_id, subprotocols=["ocpp2.0.1"])


async def _valid_201_result(action: str, payload: dict[str, Any]) -> None:
    await validate_payload(CallResult("x", payload, action), "2.0.1")


async def test_201_default_answers(csms201: BenchCsms) -> None:
    csms201.heartbeat_interval = 42
    csms201.id_tags["BAD"] = "Blocked"
    csms201.parent_id_tags["CHILD"] = "GROUP"
    event = {
        "eventType": "Started",
        "timestamp": "2026-01-01T00:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-1"},
    }
    samples = [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": 1.0}]}]
    calls: list[tuple[str, dict[str, Any], Any]] = [
        ("Heartbeat", {}, None),
        ("Authorize", {"idToken": {**TOKEN, "idToken": "BAD"}}, {"status": "Blocked"}),
        (
            "Authorize",
            {"idToken": {**TOKEN, "idToken": "CHILD"}},
            {"status": "Accepted", "groupIdToken": {"idToken": "GROUP", "type": "Central"}},
        ),
        ("TransactionEvent", {**event, "idToken": TOKEN}, {"status": "Accepted"}),
        ("TransactionEvent", {**event, "eventType": "Updated", "seqNo": 1}, None),
        (
            "StatusNotification",
            {
                "timestamp": "2026-01-01T00:00:00Z",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
            None,
        ),
        ("MeterValues", {"evseId": 1, "meterValue": samples}, None),
        ("NotifyReport", {"requestId": 1, "generatedAt": "2026-01-01T00:00:00Z", "seqNo": 0}, None),
        (
            "NotifyEvent",
            {
                "generatedAt": "2026-01-01T00:00:00Z",
                "seqNo": 0,
                "eventData": [
                    {
                        "eventId": 1,
                        "timestamp": "2026-01-01T00:00:00Z",
                        "trigger": "Delta",
                        "actualValue": "1",
                        "eventNotificationType": "HardWiredNotification",
                        "component": {"name": "ChargingStation"},
                        "variable": {"name": "Problem"},
                    }
                ],
            },
            None,
        ),
        (
            "SecurityEventNotification",
            {"type": "StartupOfTheDevice", "timestamp": "2026-01-01T00:00:00Z"},
            None,
        ),
        ("FirmwareStatusNotification", {"status": "Idle"}, None),
        ("LogStatusNotification", {"status": "Idle"}, None),
    ]
    async with open_201(csms201) as ws:
        st = Station(ws)
        boot = await st.call("BootNotification", BOOT_201)
        assert boot[2]["status"] == "Accepted" and boot[2]["interval"] == 42
        assert boot[2]["currentTime"].endswith("Z")
        for action, payload, token_info in calls:
            reply = await st.call(action, payload)
            assert reply[0] == 3, reply
            await _valid_201_result(action, reply[2])
            if action == "Heartbeat":
                assert reply[2]["currentTime"].endswith("Z")
            elif token_info is not None:
                assert reply[2] == {"idTokenInfo": token_info}
            else:
                assert reply[2] == {}, action
        data = await st.call("DataTransfer", {"vendorId": "x"})
        assert data[2] == {"status": "UnknownVendorId"}
        sign = await st.call("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"})
        assert sign[2] == {"status": "Accepted"}
        iso = {"iso15118SchemaVersion": "x", "action": "Install", "exiRequest": "AA=="}
        assert (await st.call("Get15118EVCertificate", iso))[2] == "NotSupported"
        assert (await st.call("MakeCoffee", {}))[2] == "NotImplemented"
        csms201.boot_status = "Pending"
        assert (await st.call("BootNotification", BOOT_201))[2]["status"] == "Pending"
    log = csms201.station("CP-1")
    assert log.version == "2.0.1" and log.subprotocol == "ocpp2.0.1"
    assert log.violations == [f"CALL MakeCoffee (cp-{len(calls) + 5}): unknown action"]


async def test_201_handlers_override_answers(csms201: BenchCsms) -> None:
    csms201.handlers["Authorize"] = lambda cp, p: {"idTokenInfo": {"status": "NoCredit"}}
    csms201.handlers["Heartbeat"] = lambda cp, p: CallErrorReply("SecurityError", "not yet")
    async with open_201(csms201) as ws:
        st = Station(ws)
        assert (await st.call("Authorize", {"idToken": TOKEN}))[2] == {
            "idTokenInfo": {"status": "NoCredit"}
        }
        assert (await st.call("Heartbeat", {}))[2:4] == ["SecurityError", "not yet"]


async def test_201_station_calls_are_checked_against_the_201_schemas(csms201: BenchCsms) -> None:
    async with open_201(csms201) as ws:
        st = Station(ws)
        missing = await st.call("BootNotification", {"reason": "PowerUp"})
        assert missing[:3] == [4, "cp-1", "OccurrenceConstraintViolation"]
        old = await st.call("BootNotification", BOOT)  # the 1.6 payload
        assert old[0] == 4
        start = await st.call("StartTransaction", START)  # no such action in 2.0.1
        assert start[2] == "NotImplemented"
    log = csms201.station("CP-1")
    assert len(log.violations) == 3, log.violations
    assert "chargingStation" in log.violations[0]
    assert log.violations[2] == "CALL StartTransaction (cp-3): unknown action"


async def test_201_csms_calls_and_the_station_answers(csms201: BenchCsms) -> None:
    variables = {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]
    }
    async with open_201(csms201) as ws:
        log = await csms201.wait_connected("CP-1")
        st = Station(ws)

        async def exchange(action: str, payload: Any, reply: Callable[[str], Any]) -> Any:
            """log.call as the CSMS; the station answers its request with ``reply(id)``."""
            pending = asyncio.create_task(log.call(action, payload))
            request = await st.recv()
            await ws.send(reply(request[1]).to_json())
            try:
                return await pending
            except CallErrorReceived as err:
                return err.code

        reset = call201.Reset(type=ResetEnumType.immediate)  # a dataclass payload
        accepted = await exchange(
            "Reset", reset, lambda uid: CallResult(uid, {"status": "Accepted"})
        )
        assert accepted == {"status": "Accepted"}
        assert log.frames[0].message is not None
        assert log.frames[0].message[2:] == ["Reset", {"type": "Immediate"}]
        for code in ("OccurrenceConstraintViolation", "RpcFrameworkError", "FormatViolation"):
            refused = await exchange(
                "ClearCache", {}, lambda uid, c=code: CallError(uid, c, "", {})
            )
            assert refused == code
        assert log.violations == []
        # Not 2.0.1: the 1.6 spellings, a made-up code, a 1.6 answer to a 2.0.1 request.
        for code in ("OccurenceConstraintViolation", "FormationViolation", "Oops"):
            await exchange("ClearCache", {}, lambda uid, c=code: CallError(uid, c, "", {}))
        wrong = await exchange(
            "GetVariables", variables, lambda uid: CallResult(uid, {"configurationKey": []})
        )
        assert wrong == {"configurationKey": []}
    assert len(log.violations) == 4, log.violations
    assert all("does not have" in v for v in log.violations[:3])
    assert log.violations[3].startswith("GetVariables (")


async def test_201_over_tls(tmp_path: Path) -> None:
    root = Authority.root("Bench Root")
    context = server_context(root.server("127.0.0.1"), tmp_path)
    client = ssl.create_default_context(cafile=write_pem(tmp_path / "root.pem", root.cert))
    async with BenchCsms(tls=context, versions=["2.0.1", "1.6"]) as csms:
        for offered, version in ((BOTH, "2.0.1"), (["ocpp1.6"], "1.6")):
            async with connect(
                station_url(csms), ssl=client, subprotocols=[Subprotocol(p) for p in offered]
            ) as ws:
                boot = BOOT_201 if version == "2.0.1" else BOOT
                assert (await Station(ws).call("BootNotification", boot))[2]["status"] == "Accepted"
        log = csms.station("CP-1")
        assert log.versions == ["2.0.1", "1.6"] and log.violations == []
        assert log.tls_versions == ["TLSv1.3", "TLSv1.3"]


async def test_cli_speaks_the_versions_asked_for() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hil.csms",
        "--port",
        "0",
        "--ocpp-version",
        "2.0.1",
        "--ocpp-version",
        "1.6",
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    assert proc.stdout is not None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
        assert banner.rstrip().endswith("ocpp2.0.1, ocpp1.6)")
        url = banner.split()[4].removesuffix("/<chargePointId>")
        async with connect(f"{url}/CP-9", subprotocols=[Subprotocol(p) for p in BOTH]) as ws:
            assert ws.subprotocol == "ocpp2.0.1"
            await ws.send(Call("b1", "BootNotification", BOOT_201).to_json())
            assert json.loads(await ws.recv())[2]["status"] == "Accepted"
        proc.send_signal(signal.SIGINT)
        output = (await asyncio.wait_for(proc.stdout.read(), 5)).decode()
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "subprotocol ocpp2.0.1" in output and "VIOLATION" not in output
