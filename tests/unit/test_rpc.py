"""The Rpc engine, in process, over a small in-memory socket (``rpc.Socket``).

The test plays the CSMS: it feeds frames to the station and reads what the
station sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from firmware.ocpp.answers import AnswerCache
from firmware.ocpp.errors import (
    CallErrorReceived,
    CallTimeout,
    InvalidRequest,
    InvalidResponse,
    LinkBusy,
    NotConnected,
    ProtocolViolation,
)
from firmware.ocpp.rpc import Reply, Rpc
from tests.unit.memory_socket import MemorySocket

HEARTBEAT_RESULT = {"currentTime": "2026-01-01T00:00:00Z"}
METER_VALUES = {
    "connectorId": 1,
    "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}],
}
Outcome = dict[str, Any] | Exception


class Station:
    """An Rpc serving MemorySockets, with its background work in one task group."""

    def __init__(self, tg: asyncio.TaskGroup, **options: Any) -> None:
        self.tg = tg
        options.setdefault("response_timeout_s", 2.0)
        options.setdefault("max_frame_bytes", 4096)
        self.rpc = Rpc(spawn=self._spawn, **options)
        self.serving: list[asyncio.Task[None]] = []
        self.sockets: list[MemorySocket] = []
        self.calls: list[asyncio.Task[Outcome]] = []

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tg.create_task(coro)

    async def connect(self, version: str = "1.6") -> MemorySocket:
        sock = MemorySocket()
        self.sockets.append(sock)
        self.serving.append(self.tg.create_task(self.rpc.serve(sock, version)))
        await self.rpc.connected_event.wait()
        return sock

    def call(self, action: str, payload: dict[str, Any], **kw: Any) -> asyncio.Task[Outcome]:
        """A CALL in the background: the task gives its result or the exception it raised."""
        task = self.tg.create_task(_outcome(self.rpc.call(action, payload, **kw)))
        self.calls.append(task)
        return task

    async def shut(self) -> None:
        for task in self.calls:
            task.cancel()
        for sock in self.sockets:
            await sock.close()


@contextlib.asynccontextmanager
async def station(**options: Any) -> AsyncIterator[Station]:
    """A Station; at the end its sockets close and the task group waits for the rest."""
    async with asyncio.TaskGroup() as tg:
        st = Station(tg, **options)
        try:
            yield st
        finally:
            await st.shut()


async def _outcome(call: Coroutine[Any, Any, dict[str, Any]]) -> Outcome:
    try:
        return await call
    except Exception as err:
        return err


# ---------------------------------------------------------------- own calls


async def test_one_call_in_flight_and_results_in_order() -> None:
    async with station() as st:
        sock = await st.connect()
        first = st.call("Heartbeat", {})
        second = st.call("Authorize", {"idTag": "A1"})
        sent = await sock.wait_sent(1)
        assert sent[:3] == [2, sent[1], "Heartbeat"]
        # While the first is out, a bounded call gives up without sending anything.
        with pytest.raises(LinkBusy):
            await st.rpc.call("Heartbeat", {}, timeout=0.05)
        assert len(sock.sent) == 1
        sock.feed([3, sent[1], HEARTBEAT_RESULT])
        assert await first == HEARTBEAT_RESULT
        auth = await sock.wait_sent(2)
        assert auth[2:] == ["Authorize", {"idTag": "A1"}]
        sock.feed([3, auth[1], {"idTagInfo": {"status": "Accepted"}}])
        assert (await second)["idTagInfo"]["status"] == "Accepted"
        assert sent[1] != auth[1]
        await sock.close()


async def test_timeout_releases_the_link() -> None:
    async with station(response_timeout_s=0.1) as st:
        sock = await st.connect()
        with pytest.raises(CallTimeout, match=r"no answer within 0\.1 s") as caught:
            await st.rpc.call("Heartbeat", {})
        assert caught.value.link_alive is not None and not caught.value.link_alive.done()
        answered = st.call("Heartbeat", {})
        uid = (await sock.wait_sent(2))[1]
        sock.feed([3, uid, HEARTBEAT_RESULT])
        assert await answered == HEARTBEAT_RESULT
        # The later answer shows the CSMS was there: the timeout counts.
        assert caught.value.link_alive.result() is True
        await sock.close()


async def test_callerror_and_invalid_result() -> None:
    async with station() as st:
        sock = await st.connect()
        failing = st.call("Heartbeat", {})
        uid = (await sock.wait_sent(1))[1]
        sock.feed([4, uid, "InternalError", "database busy", {"retry": True}])
        err = await failing
        assert isinstance(err, CallErrorReceived)
        assert (err.code, err.description, err.details) == (
            "InternalError",
            "database busy",
            {"retry": True},
        )
        invalid = st.call("Heartbeat", {})
        uid = (await sock.wait_sent(2))[1]
        sock.feed([3, uid, {"currentTime": 5}])
        assert isinstance(await invalid, InvalidResponse)
        await sock.close()


async def test_answers_for_unknown_or_expired_ids_are_ignored() -> None:
    async with station(response_timeout_s=0.1) as st:
        sock = await st.connect()
        with pytest.raises(CallTimeout):
            await st.rpc.call("Heartbeat", {})
        expired = (await sock.wait_sent(1))[1]
        pending = st.call("Heartbeat", {})
        current = (await sock.wait_sent(2))[1]
        sock.feed([3, expired, {"currentTime": "2020-01-01T00:00:00Z"}])  # too late
        sock.feed([3, "nobody", {}])
        sock.feed([4, "nobody-either", "GenericError", "", {}])
        sock.feed([3, current, HEARTBEAT_RESULT])
        assert await pending == HEARTBEAT_RESULT  # the late answer was not taken for it
        assert st.rpc.connected
        await sock.close()


async def test_calls_fail_fast_without_a_connection_and_on_its_loss() -> None:
    async with station() as st:
        with pytest.raises(NotConnected):
            await st.rpc.call("Heartbeat", {})
        sock = await st.connect()
        lost = st.call("Heartbeat", {})
        await sock.wait_sent(1)
        sock.abort()
        assert isinstance(await lost, NotConnected)
        await st.serving[0]
        assert not st.rpc.connected and st.rpc.disconnected_event.is_set()


async def test_an_invalid_request_is_never_sent() -> None:
    async with station() as st:
        sock = await st.connect()
        with pytest.raises(InvalidRequest, match="Authorize"):
            await st.rpc.call("Authorize", {})
        assert sock.sent == []
        await sock.close()


# ---------------------------------------------------------------- CSMS frames


async def test_garbage_never_ends_the_connection() -> None:
    async with station(max_frame_bytes=2048) as st:
        st.rpc.on("GetConfiguration", _get_configuration)
        sock = await st.connect()
        for junk in ["not json", "{}", "[]", "[7]", "[2]", '[2,"g1"]', b"\xff\xfe", '[3,"x"]']:
            sock.feed(junk)
        sock.feed(json.dumps([2, "big1", "DataTransfer", {"vendorId": "x", "data": "é" * 1500}]))
        sock.feed([2, "ok1", "GetConfiguration", {}])
        replies = {frame[1]: frame for frame in [await sock.wait_sent(i) for i in (1, 2, 3)]}
        assert replies["g1"][:3] == [4, "g1", "FormationViolation"]
        # 1,500 characters, 3,000 bytes: over the limit in UTF-8.
        assert replies["big1"][:3] == [4, "big1", "FormationViolation"]
        assert replies["ok1"][:2] == [3, "ok1"]
        assert st.rpc.connected
        await sock.close()


async def _get_configuration(_payload: dict[str, Any]) -> Reply:
    return Reply({"configurationKey": [], "unknownKey": []})


async def test_handler_errors_become_callerrors() -> None:
    async def broken(_payload: dict[str, Any]) -> Reply:
        raise RuntimeError("boom")

    async def refusing(_payload: dict[str, Any]) -> Reply:
        raise ProtocolViolation("PropertyConstraintViolation", "no such connector")

    async with station() as st:
        st.rpc.on("ClearCache", broken)
        st.rpc.on("UnlockConnector", refusing)
        sock = await st.connect()
        sock.feed([2, "c1", "ClearCache", {}])
        sock.feed([2, "u1", "UnlockConnector", {"connectorId": 9}])
        sock.feed([2, "m1", "MakeCoffee", {}])
        sock.feed([2, "r1", "Reset", {"type": "Soft"}])  # known, no handler
        replies = {frame[1]: frame[2] for frame in [await sock.wait_sent(i) for i in (1, 2, 3, 4)]}
        assert replies == {
            "c1": "InternalError",
            "u1": "PropertyConstraintViolation",
            "m1": "NotImplemented",
            "r1": "NotSupported",
        }
        await sock.close()


# ---------------------------------------------------------------- dead link


async def test_timeouts_in_a_row_close_the_link() -> None:
    async with station(response_timeout_s=0.05, dead_link_timeouts=3) as st:
        sock = await st.connect()
        errors = []
        for _ in range(3):
            with pytest.raises(CallTimeout) as caught:
                await st.rpc.call("Heartbeat", {})
            errors.append(caught.value)
        # Given up at once: no more CALLs on it, and the socket is closed.
        assert not st.rpc.connected
        with pytest.raises(NotConnected):
            await st.rpc.call("Heartbeat", {})
        assert await sock.wait_closed() == (1000, "no answer from the CSMS")
        assert len(sock.sent) == 3
        await st.serving[0]
        # None of those timeouts counts against the messages that got them.
        verdicts = {err.link_alive.result() for err in errors if err.link_alive is not None}
        assert verdicts == {False}
        # The next connection starts counting from zero.
        sock2 = await st.connect()
        with pytest.raises(CallTimeout):
            await st.rpc.call("Heartbeat", {})
        assert st.rpc.timeouts_in_a_row == 1 and st.rpc.connected
        await sock2.close()


async def test_an_answer_starts_the_count_again() -> None:
    async with station(response_timeout_s=0.05, dead_link_timeouts=3) as st:
        sock = await st.connect()
        for _ in range(2):
            with pytest.raises(CallTimeout):
                await st.rpc.call("Heartbeat", {})
        assert st.rpc.timeouts_in_a_row == 2
        answered = st.call("Heartbeat", {})
        uid = (await sock.wait_sent(3))[1]
        sock.feed([4, uid, "GenericError", "busy", {}])  # a CALLERROR is an answer too
        assert isinstance(await answered, CallErrorReceived)
        assert st.rpc.timeouts_in_a_row == 0
        for _ in range(2):
            with pytest.raises(CallTimeout):
                await st.rpc.call("Heartbeat", {})
        assert st.rpc.connected and sock.closed is None
        await sock.close()


async def test_a_lost_link_settles_its_timeouts_as_not_counting() -> None:
    async with station(response_timeout_s=0.05) as st:
        sock = await st.connect()
        with pytest.raises(CallTimeout) as caught:
            await st.rpc.call("Heartbeat", {})
        sock.abort()
        await st.serving[0]
        assert caught.value.link_alive is not None and caught.value.link_alive.result() is False


# ---------------------------------------------------------------- bounded wait


async def test_a_bounded_call_never_waits_behind_a_hung_call_longer_than_its_timeout() -> None:
    async with station(response_timeout_s=30.0) as st:
        sock = await st.connect()
        hung = st.call("MeterValues", METER_VALUES)
        await sock.wait_sent(1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(LinkBusy):
            await st.rpc.call("Authorize", {"idTag": "A1"}, timeout=0.2)
        waited = loop.time() - started
        assert 0.2 <= waited < 5  # bounded by its own timeout, not the 30 s of the hung call
        assert len(sock.sent) == 1  # nothing was sent for it
        assert st.rpc.timeouts_in_a_row == 0  # not a timeout of the link
        # Once the link is free the same bound applies to the answer.
        sock.feed([3, json.loads(sock.sent[0])[1], {}])
        assert await hung == {}
        with pytest.raises(CallTimeout, match="Authorize"):
            await st.rpc.call("Authorize", {"idTag": "A1"}, timeout=0.2)
        assert len(sock.sent) == 2
        await sock.close()


# ---------------------------------------------------------------- repeated ids


class Counting:
    """A Reset handler that counts its runs and can be held until released."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()
        self.after_runs = 0

    async def __call__(self, payload: dict[str, Any]) -> Reply:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        return Reply({"status": "Accepted"}, after=self._after)

    async def _after(self) -> None:
        self.after_runs += 1


async def test_a_repeated_call_is_answered_again_not_run_again() -> None:
    handler = Counting()
    async with station() as st:
        st.rpc.on("Reset", handler)
        sock = await st.connect()
        sock.feed([2, "dup-1", "Reset", {"type": "Soft"}])
        first = await sock.wait_sent(1)
        sock.feed([2, "dup-1", "Reset", {"type": "Soft"}])
        second = await sock.wait_sent(2)
        assert first == second == [3, "dup-1", {"status": "Accepted"}]
        assert handler.runs == 1
        # Same id, another request (a CSMS whose counter started over): it runs.
        sock.feed([2, "dup-1", "Reset", {"type": "Hard"}])
        assert (await sock.wait_sent(3))[:2] == [3, "dup-1"]
        assert handler.runs == 2
        await sock.close()
    assert handler.after_runs == 2  # once per run, not per answer


async def test_a_repeat_during_handling_waits_for_the_first_answer() -> None:
    handler = Counting()
    handler.release.clear()
    async with station() as st:
        st.rpc.on("Reset", handler)
        st.rpc.on("GetConfiguration", _get_configuration)
        sock = await st.connect()
        sock.feed([2, "slow-1", "Reset", {"type": "Soft"}])
        await handler.started.wait()
        sock.feed([2, "slow-1", "Reset", {"type": "Soft"}])
        sock.feed([2, "other", "GetConfiguration", {}])  # frames behind it are still read
        assert (await sock.wait_sent(1))[:2] == [3, "other"]
        handler.release.set()
        answers = [await sock.wait_sent(2), await sock.wait_sent(3)]
        assert answers == [[3, "slow-1", {"status": "Accepted"}]] * 2
        assert handler.runs == 1
        await sock.close()


async def test_repeats_are_recognised_after_a_reconnect() -> None:
    handler = Counting()
    handler.release.clear()
    async with station() as st:
        st.rpc.on("Reset", handler)
        sock = await st.connect()
        sock.feed([2, "r-1", "Reset", {"type": "Soft"}])
        await handler.started.wait()
        sock.abort()  # lost before the answer went out; the handler goes on
        await st.serving[0]
        sock2 = await st.connect()
        sock2.feed([2, "r-1", "Reset", {"type": "Soft"}])
        handler.release.set()
        assert await sock2.wait_sent(1) == [3, "r-1", {"status": "Accepted"}]
        assert handler.runs == 1 and sock.sent == []
        await sock2.close()


async def test_callerrors_are_repeated_too() -> None:
    async with station() as st:
        sock = await st.connect()
        sock.feed([2, "e-1", "ChangeAvailability", {"connectorId": 1}])
        sock.feed([2, "e-1", "ChangeAvailability", {"connectorId": 1}])
        first, second = await sock.wait_sent(1), await sock.wait_sent(2)
        assert first == second and first[:3] == [4, "e-1", "NotSupported"]
        await sock.close()


async def test_the_answer_cache_is_bounded_in_count_and_age() -> None:
    now = [0.0]
    handler = Counting()
    cache = AnswerCache(max_entries=2, max_age_s=60.0, clock=lambda: now[0])
    async with station(answers=cache) as st:
        st.rpc.on("Reset", handler)
        sock = await st.connect()
        for n, uid in enumerate(["a", "b", "c"], start=1):
            sock.feed([2, uid, "Reset", {"type": "Soft"}])
            await sock.wait_sent(n)
        assert len(cache) == 2 and handler.runs == 3
        sock.feed([2, "a", "Reset", {"type": "Soft"}])  # forgotten: the oldest went first
        await sock.wait_sent(4)
        assert handler.runs == 4
        sock.feed([2, "c", "Reset", {"type": "Soft"}])  # still known
        await sock.wait_sent(5)
        assert handler.runs == 4
        now[0] = 61.0
        sock.feed([2, "c", "Reset", {"type": "Soft"}])  # too old now
        await sock.wait_sent(6)
        assert handler.runs == 5 and len(cache) == 1
        await sock.close()


async def test_call_stats_count_how_each_call_ended() -> None:
    async with station(response_timeout_s=0.1, dead_link_timeouts=5) as st:
        with pytest.raises(NotConnected):
            await st.rpc.call("Heartbeat", {})  # never sent: not counted
        sock = await st.connect()
        answered = st.call("Heartbeat", {})
        sock.feed([3, (await sock.wait_sent(1))[1], HEARTBEAT_RESULT])
        assert await answered == HEARTBEAT_RESULT
        with pytest.raises(CallTimeout):
            await st.rpc.call("MeterValues", METER_VALUES)
        refused = st.call("Heartbeat", {})
        sock.feed([4, (await sock.wait_sent(3))[1], "InternalError", "", {}])
        assert isinstance(await refused, CallErrorReceived)
        invalid = st.call("Heartbeat", {})
        sock.feed([3, (await sock.wait_sent(4))[1], {"currentTime": 5}])
        assert isinstance(await invalid, InvalidResponse)
        lost = st.call("MeterValues", METER_VALUES)
        await sock.wait_sent(5)
        sock.abort()
        assert isinstance(await lost, NotConnected)
    stats = st.rpc.stats
    assert dict(stats.sent) == {"Heartbeat": 3, "MeterValues": 2}
    assert dict(stats.timed_out) == {"MeterValues": 1}
    assert dict(stats.failed) == {
        ("Heartbeat", "callerror"): 1,
        ("Heartbeat", "invalid_result"): 1,
        ("MeterValues", "connection_lost"): 1,
    }


# ---------------------------------------------------------------- OCPP 2.0.1

BOOT_201 = {
    "reason": "PowerUp",
    "chargingStation": {"model": "SimCharger", "vendorName": "OpenChargeFW"},
}


async def _reset_201(payload: dict[str, Any]) -> Reply:
    return Reply({"status": "Accepted"})


async def test_a_201_connection_answers_bad_frames_with_201_codes() -> None:
    async def strict(_payload: dict[str, Any]) -> Reply:
        raise ProtocolViolation("OccurenceConstraintViolation", "spelled as in 1.6")

    async def formation(_payload: dict[str, Any]) -> Reply:
        raise ProtocolViolation("FormationViolation", "spelled as in 1.6")

    async with station(max_frame_bytes=2048) as st:
        st.rpc.on("Reset", _reset_201, version="2.0.1")
        st.rpc.on("ClearCache", strict, version="2.0.1")
        st.rpc.on("UnlockConnector", formation, version="2.0.1")
        st.rpc.on("GetLocalListVersion", _get_configuration)  # 1.6 only
        sock = await st.connect("2.0.1")
        assert st.rpc.version == "2.0.1"
        for junk in ["not json", "{}", "[]", b"\xff", '[3,"x"]', '[2,17,"Reset",{}]']:
            sock.feed(junk)  # no readable id: nothing to answer
        sock.feed('[5,"t5",{}]')
        sock.feed('[6,"t6","NotifyPeriodicEventStream",{}]')
        sock.feed('["2","ts","Reset",{"type":"Immediate"}]')
        sock.feed('[2,"short","Reset"]')
        sock.feed(json.dumps([2, "big", "DataTransfer", {"vendorId": "x", "data": "é" * 1500}]))
        sock.feed([2, "unknown", "MakeCoffee", {}])
        sock.feed([2, "v16", "GetLocalListVersion", {}])  # known in 2.0.1, no 2.0.1 handler
        sock.feed([2, "missing", "Reset", {}])
        sock.feed([2, "extra", "Reset", {"type": "Immediate", "x": 1}])
        sock.feed([2, "old", "Reset", {"type": "Soft"}])  # a 1.6 value
        sock.feed([2, "h-occ", "ClearCache", {}])
        sock.feed([2, "h-form", "UnlockConnector", {"evseId": 1, "connectorId": 1}])
        sock.feed([2, "ok", "Reset", {"type": "OnIdle"}])
        replies = {f[1]: f for f in [await sock.wait_sent(i) for i in range(1, 14)]}
        assert {uid: frame[2] for uid, frame in replies.items()} == {
            "t5": "MessageTypeNotSupported",
            "t6": "MessageTypeNotSupported",
            "ts": "RpcFrameworkError",
            "short": "RpcFrameworkError",
            "big": "FormatViolation",
            "unknown": "NotImplemented",
            "v16": "NotSupported",
            "missing": "OccurrenceConstraintViolation",
            "extra": "FormatViolation",
            "old": "PropertyConstraintViolation",
            "h-occ": "OccurrenceConstraintViolation",
            "h-form": "FormatViolation",
            "ok": {"status": "Accepted"},
        }
        assert all(len(frame) == 5 for frame in replies.values() if frame[0] == 4)
        assert st.rpc.connected and len(sock.sent) == 13
        await sock.close()


async def test_handlers_belong_to_their_version() -> None:
    async def reset_16(_payload: dict[str, Any]) -> Reply:
        return Reply({"status": "Rejected"})

    async with station() as st:
        st.rpc.on("Reset", reset_16)
        st.rpc.on("Reset", _reset_201, version="2.0.1")
        sock = await st.connect()
        sock.feed([2, "a", "Reset", {"type": "Soft"}])
        assert await sock.wait_sent(1) == [3, "a", {"status": "Rejected"}]
        sock.feed([2, "b", "Reset", {"type": "Immediate"}])  # a 2.0.1 value on 1.6
        assert (await sock.wait_sent(2))[2] == "PropertyConstraintViolation"
        sock.feed([2, "c", "MakeCoffee", {}, 5])  # 1.6: no message-type or framework codes
        assert (await sock.wait_sent(3))[2] == "FormationViolation"
        await sock.close()
        await st.serving[0]
        sock2 = await st.connect("2.0.1")
        sock2.feed([2, "a", "Reset", {"type": "Soft"}])  # same id and payload, other version
        assert (await sock2.wait_sent(1))[2] == "PropertyConstraintViolation"
        sock2.feed([2, "d", "Reset", {"type": "Immediate"}])
        assert await sock2.wait_sent(2) == [3, "d", {"status": "Accepted"}]
        await sock2.close()


async def test_own_calls_go_out_only_in_their_version() -> None:
    async with station() as st:
        sock = await st.connect("2.0.1")
        # A 1.6 caller (the default) finds no 1.6 link: offline, nothing sent, nothing lost.
        with pytest.raises(NotConnected, match=r"speaks OCPP 2\.0\.1"):
            await st.rpc.call("Heartbeat", {})
        with pytest.raises(InvalidRequest, match="BootNotification"):
            await st.rpc.call("BootNotification", {"chargePointVendor": "A"}, version="2.0.1")
        assert sock.sent == []
        boot = st.call("BootNotification", BOOT_201, version="2.0.1")
        uid = (await sock.wait_sent(1))[1]
        sock.feed([3, uid, {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z"}])
        assert isinstance(await boot, InvalidResponse)  # no interval: 2.0.1 requires one
        beat = st.call("Heartbeat", {}, version="2.0.1")
        uid = (await sock.wait_sent(2))[1]
        sock.feed([3, uid, HEARTBEAT_RESULT])
        assert await beat == HEARTBEAT_RESULT
        await sock.close()
        await st.serving[0]
        sock16 = await st.connect()
        with pytest.raises(NotConnected, match=r"speaks OCPP 1\.6"):
            await st.rpc.call("Heartbeat", {}, version="2.0.1")
        assert sock16.sent == [] and st.rpc.version == "1.6"
        await sock16.close()


async def test_repeated_201_calls_are_answered_again_not_run_again() -> None:
    handler = Counting()
    async with station() as st:
        st.rpc.on("Reset", handler, version="2.0.1")
        sock = await st.connect("2.0.1")
        for n in (1, 2):
            sock.feed([2, "dup", "Reset", {"type": "Immediate"}])
            assert await sock.wait_sent(n) == [3, "dup", {"status": "Accepted"}]
        sock.feed([2, "bad", "Reset", {}])
        sock.feed([2, "bad", "Reset", {}])
        first, second = await sock.wait_sent(3), await sock.wait_sent(4)
        assert first == second and first[2] == "OccurrenceConstraintViolation"
        assert handler.runs == 1
        await sock.close()


async def test_an_unknown_version_is_refused_before_anything_is_read() -> None:
    async with station() as st:
        with pytest.raises(ValueError, match="unknown OCPP version"):
            await st.rpc.serve(MemorySocket(), "2.1")
        assert not st.rpc.connected
