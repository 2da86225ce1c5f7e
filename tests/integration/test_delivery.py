"""Transaction messages: persisted before sending, retried, delivered in order with the CSMS id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from hil.csms import NO_REPLY, CallErrorReply, Frame
from tests.integration.harness import Daemon, call_frames, charge_session_start, wait_until

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]
TX_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")


def _ts(payload: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))


async def test_callerror_is_retried_after_the_retry_interval(daemon: Daemon) -> None:
    failures = iter([CallErrorReply("InternalError", "database busy")])
    daemon.csms.handlers["StartTransaction"] = lambda _cp, _p: next(failures, None)
    await daemon.sim(cp_state="C")
    await daemon.tap("DE01")
    await wait_until(lambda: len(daemon.log.calls("StartTransaction")) == 2, 8, "a retry")
    first, second = daemon.log.calls("StartTransaction")
    assert first == second  # the same message, with the time the session began
    starts = call_frames(daemon.log, "StartTransaction")
    assert starts[1].at - starts[0].at >= 0.9  # TransactionMessageRetryInterval (1 s) x 1
    await daemon.wait_connector(lambda c: c["relay_closed"] and c["transaction_id"] is not None)


async def test_message_dropped_after_attempts(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={"config": {"TransactionMessageAttempts": 1, "MeterValueSampleInterval": 1}}
    )
    # The first sample and its one retry get a CALLERROR; later ones are answered.
    # (Counted in the handler: a CALL is logged before its answer is chosen.)
    refusals = iter([CallErrorReply("GenericError", "no")] * 2)
    d.csms.handlers["MeterValues"] = lambda _cp, _p: next(refusals, None)
    await charge_session_start(d)
    first = await d.log.wait_for("MeterValues")
    await wait_until(lambda: len(d.log.calls("MeterValues")) >= 3, 8, "the retry, then more")
    assert d.log.calls("MeterValues")[1] == first  # one retry of the same sample...
    assert d.log.calls("MeterValues")[2] != first  # ...then it was given up
    await d.tap("AABBCCDD")
    await d.log.wait_for("StopTransaction", timeout=10)
    assert (await d.get("/status"))["ocpp"]["dropped"] == 1


@pytest.mark.emulated
async def test_offline_session_is_delivered_in_order_with_the_csms_id(
    make_daemon: MakeDaemon,
) -> None:
    d = await make_daemon(
        ocpp={"config": {"AllowOfflineTxForUnknownId": True, "MeterValueSampleInterval": 1}}
    )
    d.csms.next_transaction_id = 70001
    d.csms.refuse = True
    await d.csms.drop(d.cp_id)
    await d.sim(cp_state="C")
    await d.tap("0FF10AD1")
    await d.wait_connector(lambda c: c["relay_closed"])
    for _ in range(60):  # StartTransaction and MeterValues wait in the queue
        if (await d.get("/status"))["ocpp"]["queued"] >= 3:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("messages were not queued while offline")
    await d.tap("0FF10AD1")
    await d.wait_connector(lambda c: c["local_transaction_id"] is None)
    stopped_at = datetime.now().astimezone()
    d.csms.refuse = False
    await d.log.wait_for("StopTransaction", timeout=15)
    tx_messages = call_frames(d.log, "StartTransaction", "MeterValues", "StopTransaction")
    actions = [f.message[2] for f in tx_messages if f.message]
    assert actions[0] == "StartTransaction" and actions[-1] == "StopTransaction"
    assert set(actions[1:-1]) == {"MeterValues"}
    for mv in d.log.calls("MeterValues"):
        if "transactionId" in mv:
            assert mv["transactionId"] == 70001
    stop = d.log.calls("StopTransaction")[0]
    assert stop["transactionId"] == 70001 and stop["reason"] == "Local"
    assert _ts(stop) <= stopped_at  # when it happened, not when it was sent
    await d.wait_queue_empty()


async def test_max_energy_on_invalid_id(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={"config": {"AllowOfflineTxForUnknownId": True, "MaxEnergyOnInvalidId": 20}}
    )
    d.csms.refuse = True
    await d.csms.drop(d.cp_id)
    await d.sim(cp_state="C")
    await d.tap("0BAD")
    await d.wait_connector(lambda c: c["relay_closed"])
    d.csms.handlers["StartTransaction"] = lambda _cp, _p: {
        "transactionId": 31,
        "idTagInfo": {"status": "Invalid"},
    }
    d.csms.refuse = False
    stop = await d.log.wait_for("StopTransaction", timeout=20)
    start = d.log.calls("StartTransaction")[0]
    assert stop["reason"] == "DeAuthorized" and stop["transactionId"] == 31
    assert stop["meterStop"] - start["meterStart"] >= 20


async def test_bounded_queue_thins_meter_values_while_offline(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={
            "config": {
                "LocalAuthorizeOffline": True,
                "AllowOfflineTxForUnknownId": True,
                "MeterValueSampleInterval": 1,
            }
        },
        queue={"max_messages": 10},
    )
    d.csms.next_transaction_id = 900
    d.csms.refuse = True
    await d.csms.drop(d.cp_id)
    await d.sim(cp_state="C")
    await d.tap("B0DE")
    await d.wait_connector(lambda c: c["relay_closed"])
    for _ in range(150):
        ocpp = (await d.get("/status"))["ocpp"]
        if ocpp["thinned"] >= 4:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"never thinned: {ocpp}")
    assert ocpp["queued"] <= 10
    await d.tap("B0DE")
    await d.wait_connector(lambda c: not c["relay_closed"])
    d.csms.refuse = False
    stop = await d.log.wait_for("StopTransaction", timeout=15)
    assert len(d.log.calls("StartTransaction")) == 1
    assert stop["transactionId"] == 900 and stop["reason"] == "Local"
    await d.wait_queue_empty()
    assert (await d.get("/status"))["ocpp"]["thinned"] >= 4


SILENT_ACTIONS = (
    "Authorize",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
)


async def test_a_silent_csms_is_a_dead_link_and_costs_no_attempts(
    make_daemon: MakeDaemon,
) -> None:
    d = await make_daemon(
        ocpp={
            "response_timeout_s": 1,
            "authorize_timeout_s": 1,
            "dead_link_timeouts": 3,
            "config": {
                "TransactionMessageAttempts": 1,
                "TransactionMessageRetryInterval": 1,
                "AllowOfflineTxForUnknownId": True,
            },
        }
    )
    d.csms.next_transaction_id = 4100
    await d.sim(cp_state="B")
    await d.wait_status("Preparing")
    # The CSMS keeps the socket open but answers nothing.
    for action in SILENT_ACTIONS:
        d.csms.handlers[action] = lambda _cp, _p: NO_REPLY
    await d.tap("D1ED")
    await d.wait_connector(lambda c: c["local_transaction_id"] is not None)
    # Two links given up in a row, each after exactly three unanswered CALLs.
    # (Before this rule, the second unanswered StartTransaction used up its last attempt.)
    await wait_until(
        lambda: d.log.connections >= 3 and len(d.log.calls("StartTransaction")) >= 2,
        20,
        "two reconnects and a retried StartTransaction",
    )
    for link in (1, 2):
        sent = [f for f in call_frames(d.log) if f.connection == link]
        silent = [f for f in sent if not _answered(d, f)]
        assert len(silent) == 3, [f.message[2] for f in silent if f.message]
        assert silent == sent[-3:]  # nothing after the third
    assert d.log.closes[:2] == [(1000, "no answer from the CSMS")] * 2
    assert len(d.log.calls("BootNotification")) == 1  # a reconnect, not a reboot
    await d.tap("D1ED")
    await d.wait_connector(lambda c: c["local_transaction_id"] is None)
    assert (await d.get("/status"))["ocpp"]["dropped"] == 0
    d.csms.handlers.clear()
    stop = await d.log.wait_for("StopTransaction", timeout=20)
    assert stop["transactionId"] == 4100 and stop["idTag"] == "D1ED"
    await d.wait_queue_empty()
    status = (await d.get("/status"))["ocpp"]
    assert status["dropped"] == 0
    answered_starts = [f for f in call_frames(d.log, "StartTransaction") if _answered(d, f)]
    assert len(answered_starts) == 1


def _answered(d: Daemon, call: Frame) -> bool:
    """Whether the bench CSMS sent an answer to this CALL of the station."""
    uid = call.message[1] if call.message else None
    return any(
        f.direction == "out" and f.message and f.message[0] in (3, 4) and f.message[1] == uid
        for f in d.log.frames
    )


async def test_offline_backlog_is_replayed_in_packs(make_daemon: MakeDaemon) -> None:
    d = await make_daemon(
        ocpp={
            "config": {
                "AllowOfflineTxForUnknownId": True,
                "MeterValueSampleInterval": 1,
                "ClockAlignedDataInterval": 1,
            }
        },
        queue={"replay_batch_max": 3},
    )
    d.csms.next_transaction_id = 80001
    await d.wait_queue_empty()  # the StartupOfTheDevice security event is not a sample
    d.csms.refuse = True
    await d.csms.drop(d.cp_id)
    await d.sim(cp_state="C")
    await d.tap("0FF10AD2")
    await d.wait_connector(lambda c: c["relay_closed"])
    for _ in range(100):  # StartTransaction and at least 8 samples wait in the queue
        if (await d.get("/status"))["ocpp"]["queued"] >= 9:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("samples were not queued while offline")
    await d.tap("0FF10AD2")
    await d.wait_connector(lambda c: c["local_transaction_id"] is None)
    # The session has ended; its last sample and StopTransaction may still be on their
    # way into the queue: count once two reads agree.
    queued, previous = (await d.get("/status"))["ocpp"]["queued"], -1
    while queued != previous:
        await asyncio.sleep(0.5)
        queued, previous = (await d.get("/status"))["ocpp"]["queued"], queued
    d.csms.refuse = False
    await d.log.wait_for("StopTransaction", timeout=15)
    await d.wait_queue_empty()

    # Once online again, the plugged connector's clock-aligned samples outside the
    # transaction go out directly (no transactionId) while the backlog replays.
    actions = [
        f.message[2]
        for f in call_frames(d.log, *TX_ACTIONS)
        if f.message and (f.message[2] != "MeterValues" or "transactionId" in f.message[3])
    ]
    assert actions[0] == "StartTransaction" and actions[-1] == "StopTransaction"
    requests = [mv for mv in d.log.calls("MeterValues") if "transactionId" in mv]
    entries = [e for mv in requests for e in mv["meterValue"]]
    assert len(entries) == queued - 2  # every sample, none twice
    assert len(requests) < len(entries) and max(len(mv["meterValue"]) for mv in requests) == 3
    assert all(mv["transactionId"] == 80001 for mv in requests)
    # Each series in time order. Across the two, a clock-aligned sample carries its
    # boundary (a whole second) while its reading may come a moment after a periodic
    # one of that second; the register values below show the queue order is the
    # order of the readings.
    for context in ("Sample.Periodic", "Sample.Clock"):
        series = [_ts(e) for e in entries if e["sampledValue"][0]["context"] == context]
        assert series == sorted(series) and len(series) >= 2
    energy = [
        float(sv["value"])
        for e in entries
        for sv in e["sampledValue"]
        if sv.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"
    ]
    assert energy == sorted(energy)
    assert {sv.get("context") for e in entries for sv in e["sampledValue"]} == {
        "Sample.Periodic",
        "Sample.Clock",
    }
    assert d.log.violations == []
