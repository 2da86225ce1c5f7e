"""The security event sink (log, durable delivery, techInfo rules) and the detectors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware import logs
from firmware.clock import Clock
from firmware.ocpp.errors import InvalidResponse
from firmware.ocpp.rpc import Reply, Rpc
from firmware.queue import Outbox
from firmware.security.detectors import (
    ClockWatch,
    MemoryWatch,
    RepeatLimit,
    TamperWatch,
    report_start,
)
from firmware.security.events import (
    CRITICAL,
    TECH_INFO_MAX,
    LoggingSink,
    SecurityEvent,
)
from firmware.security.recorder import SecurityEvents, clean_tech_info
from firmware.security.runs import PreviousRun
from firmware.security.security_log import SecurityLog
from firmware.storage.db import Database
from hal.interfaces import Fault, FaultChanged
from hil.csms import BenchCsms, CallErrorReply
from tests.unit.aio import until
from tests.unit.memory_socket import MemorySocket

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Steps:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = NOW
        self.mono = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


def make_outbox(db: Database, ready: asyncio.Event | None = None) -> Outbox:
    rpc = Rpc(response_timeout_s=2, max_frame_bytes=65536, spawn=lambda coro: coro.close())
    return Outbox(
        db,
        rpc,
        Clock(),
        ready=ready or asyncio.Event(),
        attempts=lambda: 3,
        retry_interval_s=lambda: 60,
    )


def queued(db: Database) -> list[tuple[str, dict[str, Any]]]:
    rows = db.query("SELECT action, payload FROM outbox ORDER BY seq")
    return [(row["action"], json.loads(row["payload"])) for row in rows]


def stored(log: SecurityLog) -> list[tuple[str, str | None, bool, str | None]]:
    return [(e.type, e.tech_info, e.critical, e.delivery) for chunk in log.entries() for e in chunk]


# ---------------------------------------------------------------- techInfo


def test_tech_info_is_cut_to_255_characters() -> None:
    assert clean_tech_info("x" * TECH_INFO_MAX) == "x" * TECH_INFO_MAX
    cut = clean_tech_info("é" * 300)
    assert cut is not None and len(cut) == TECH_INFO_MAX and cut.endswith("...")
    assert cut[:-3] == "é" * (TECH_INFO_MAX - 3)


def test_tech_info_without_control_characters_secrets_or_id_tags() -> None:
    assert clean_tech_info("line one\nline two\x1b[31m") == "line one line two [31m"
    logs.add_secret("s3cret-pass")
    try:
        assert clean_tech_info("password was s3cret-pass") == "password was ***"
    finally:
        logs.forget_secrets()
    assert clean_tech_info('{"idTag": "04A1B2C3"}') == '{"idTag": "****B2C3"}'
    assert clean_tech_info(None) is None
    assert clean_tech_info("  \n ") is None


def test_every_type_fits_its_field() -> None:
    assert all(len(event.value) <= 50 for event in SecurityEvent)


# ---------------------------------------------------------------- the sink


def test_critical_events_are_queued_with_their_entry_others_only_stored(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=100, max_bytes=1 << 20)
    clock = Steps()
    sink = SecurityEvents(db, log, clock.wall)
    sink.deliver_through(make_outbox(db))
    sink.raise_event(SecurityEvent.INVALID_MESSAGES, "GetLog: TypeConstraintViolation")
    clock.advance(1)
    sink.raise_event(SecurityEvent.TAMPER_DETECTION_ACTIVATED, "x" * 400)
    assert stored(log) == [
        ("InvalidMessages", "GetLog: TypeConstraintViolation", False, None),
        ("TamperDetectionActivated", "x" * 252 + "...", True, "queued"),
    ]
    assert queued(db) == [
        (
            "SecurityEventNotification",
            {
                "type": "TamperDetectionActivated",
                "timestamp": "2026-03-01T12:00:01.000Z",
                "techInfo": "x" * 252 + "...",
            },
        )
    ]
    db.close()


def test_events_raised_before_the_queue_exists_are_queued_in_order(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=100, max_bytes=1 << 20)
    sink = SecurityEvents(db, log, Steps().wall)
    sink.raise_event(SecurityEvent.STARTUP_OF_THE_DEVICE)
    sink.raise_event(SecurityEvent.INVALID_TLS_VERSION, "TLSv1.1")
    sink.raise_event(SecurityEvent.RESET_OR_REBOOT, "restart")
    assert queued(db) == []
    sink.deliver_through(make_outbox(db))
    assert [p["type"] for _, p in queued(db)] == ["StartupOfTheDevice", "ResetOrReboot"]
    assert "techInfo" not in queued(db)[0][1]
    db.close()


def test_a_full_disk_keeps_events_in_memory_in_order(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=1000, max_bytes=16 << 20)
    sink = SecurityEvents(db, log, Steps().wall, retry_s=0.01)
    memory = MemoryWatch(RepeatLimit(sink, SecurityEvent.MEMORY_EXHAUSTION, 60))
    db.on_full = memory.storage_full
    sink.deliver_through(make_outbox(db))
    pages = int(db.query_one("PRAGMA page_count")[0])
    db.execute(f"PRAGMA max_page_count={pages + 4}")

    async def scenario() -> list[str]:
        raised = []
        while not sink.pending:  # until the disk is full
            assert len(raised) < 100
            raised.append(f"open {len(raised)}")
            sink.raise_event(SecurityEvent.TAMPER_DETECTION_ACTIVATED, raised[-1] * 20)
        assert sink.pending == 2  # the one that did not fit, and MemoryExhaustion
        sink.raise_event(SecurityEvent.TAMPER_DETECTION_ACTIVATED, "after" * 20)
        assert sink.pending == 3
        db.execute("PRAGMA max_page_count=1000000")  # room again
        runner = asyncio.create_task(sink.run())
        await until(lambda: sink.pending == 0)
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        return raised

    raised = asyncio.run(scenario())
    entries = stored(log)
    kinds = [entry[0] for entry in entries]
    tamper = "TamperDetectionActivated"
    assert kinds == [*[tamper] * len(raised), "MemoryExhaustion", tamper]
    assert [p["type"] for _, p in queued(db)] == kinds  # every one queued, in the same order
    assert entries[-2][1] == "state database full: database or disk is full"
    assert entries[-1][1] == "after" * 20
    db.close()


def test_a_refused_type_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=100, max_bytes=1 << 20)
    sink = SecurityEvents(db, log, Steps().wall)
    sink.raise_event("NoSuchEvent")  # type: ignore[arg-type]
    assert log.count == 0
    assert "security event 'NoSuchEvent' refused" in caplog.text
    db.close()


@contextlib.asynccontextmanager
async def delivering(outbox: Outbox, csms: BenchCsms) -> AsyncIterator[None]:
    async with (
        connect(f"{csms.url}/CP-U", subprotocols=[Subprotocol("ocpp1.6")]) as ws,
        asyncio.TaskGroup() as tg,
    ):
        serving = tg.create_task(outbox.rpc.serve(ws))
        running = tg.create_task(outbox.run())
        try:
            yield
        finally:
            running.cancel()
            await ws.close()
            await serving


async def test_delivery_is_written_back_and_an_unsupported_csms_holds_nothing_up(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=100, max_bytes=1 << 20)
    ready = asyncio.Event()
    ready.set()
    outbox = make_outbox(db, ready)
    sink = SecurityEvents(db, log, Steps().wall)
    sink.deliver_through(outbox)
    sink.raise_event(SecurityEvent.STARTUP_OF_THE_DEVICE, "first start")
    async with BenchCsms() as csms:
        async with delivering(outbox, csms):
            await until(lambda: outbox.is_empty(), 5)
        assert stored(log)[0][3] == "sent"
        # A CSMS without the security extension: given up at once (retry interval 60 s).
        csms.handlers["SecurityEventNotification"] = lambda _cp, _p: CallErrorReply(
            "NotImplemented", "unknown action"
        )
        sink.raise_event(SecurityEvent.RESET_OR_REBOOT, "Reset Soft")
        outbox.enqueue(
            "StopTransaction",
            {"transactionId": 1, "meterStop": 5, "timestamp": "2026-03-01T12:00:00Z"},
        )
        async with delivering(outbox, csms):
            await csms.station("CP-U").wait_for("StopTransaction", timeout=5)
            await until(lambda: outbox.is_empty(), 5)
    assert [e[3] for e in stored(log)] == ["sent", "dropped"]
    assert outbox.dropped == 1
    entries = [e for chunk in log.entries() for e in chunk]
    assert entries[0].sent_at == "2026-03-01T12:00:00.000Z" and entries[1].sent_at is None
    db.close()


# ---------------------------------------------------------------- detectors


async def test_repeats_are_counted_into_one_more_entry() -> None:
    sink = LoggingSink()
    clock = Steps()
    limit = RepeatLimit(sink, SecurityEvent.INVALID_MESSAGES, 1.0, monotonic=clock.monotonic)
    limit.note("first")
    limit.note("second")
    limit.note("third")
    assert sink.raised == [(SecurityEvent.INVALID_MESSAGES, "first")]
    assert limit.repeats == 2
    clock.advance(1.0)  # the interval is over when run() looks
    runner = asyncio.create_task(limit.run())
    await until(lambda: len(sink.raised) == 2)
    assert sink.raised[1] == (SecurityEvent.INVALID_MESSAGES, "2 more in 1 s; the last: third")
    clock.advance(0.5)
    limit.note("within the new interval")
    assert len(sink.raised) == 2 and limit.repeats == 1
    runner.cancel()
    clock.advance(1.0)
    limit.note("after it")
    assert sink.raised[-1] == (SecurityEvent.INVALID_MESSAGES, "after it")


def test_every_repeat_with_no_interval() -> None:
    sink = LoggingSink()
    limit = RepeatLimit(sink, SecurityEvent.TAMPER_DETECTION_ACTIVATED, 0)
    for _ in range(3):
        limit.note("open")
    assert len(sink.raised) == 3


def test_setting_system_time_above_the_threshold_either_way() -> None:
    sink = LoggingSink()
    clock = Clock()
    clock.subscribe(ClockWatch(sink, 60).adjusted)
    clock.adopt(datetime.now(UTC) + timedelta(seconds=5))  # a small correction
    assert sink.raised == []
    clock.adopt(datetime.now(UTC) - timedelta(minutes=10))
    assert len(sink.raised) == 1
    event, info = sink.raised[0]
    assert event is SecurityEvent.SETTING_SYSTEM_TIME
    assert info is not None and info.startswith("clock set from the CSMS's time: moved -60")


def test_tamper_on_activation_only() -> None:
    sink = LoggingSink()
    watch = TamperWatch(RepeatLimit(sink, SecurityEvent.TAMPER_DETECTION_ACTIVATED, 0))
    watch.fault_changed(FaultChanged(0, Fault.TAMPER, True))
    watch.fault_changed(FaultChanged(0, Fault.TAMPER, False))
    watch.fault_changed(FaultChanged(0, Fault.EMERGENCY_STOP, True))
    assert sink.raised == [(SecurityEvent.TAMPER_DETECTION_ACTIVATED, "tamper input active")]


async def test_memory_errors_anywhere_and_resident_memory() -> None:
    sink = LoggingSink()
    used = [10 * 2**20]
    watch = MemoryWatch(
        RepeatLimit(sink, SecurityEvent.MEMORY_EXHAUSTION, 0),
        rss_limit_bytes=50 * 2**20,
        check_s=0.01,
        rss=lambda: used[0],
    )
    watch.install(asyncio.get_running_loop())
    try:
        try:
            raise MemoryError()
        except MemoryError:
            logging.getLogger("firmware.app").exception("background task failed")
        logging.getLogger("firmware.app").error("an ordinary error")
        assert sink.raised == [
            (SecurityEvent.MEMORY_EXHAUSTION, "MemoryError (firmware.app: background task failed)")
        ]
        runner = asyncio.create_task(watch.run())
        used[0] = 60 * 2**20
        await until(lambda: len(sink.raised) == 2)
        assert sink.raised[1][1] == ("resident memory 60.0 MiB is above the limit of 50.0 MiB")
        used[0] = 40 * 2**20  # below 90 %: armed again
        await asyncio.sleep(0.05)
        used[0] = 70 * 2**20
        await until(lambda: len(sink.raised) == 3)
        runner.cancel()
    finally:
        watch.uninstall()
    group = ExceptionGroup("tasks", [ValueError("x"), MemoryError()])
    assert watch.crashed(group) and not watch.crashed(ValueError("y"))
    assert sink.raised[-1] == (SecurityEvent.MEMORY_EXHAUSTION, "MemoryError ended the daemon")


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        (
            PreviousRun(True, False, None, None, None),
            [("StartupOfTheDevice", "firmware 1.2.3, first start")],
        ),
        (
            PreviousRun(False, True, "HardReset", "t0", None),
            [("StartupOfTheDevice", "firmware 1.2.3, after a clean stop (HardReset)")],
        ),
        (
            PreviousRun(False, False, None, "t0", None),
            [
                (
                    "ResetOrReboot",
                    "unexpected restart: the previous run started t0 ended without a clean "
                    "shutdown (power loss, crash, kill or watchdog)",
                ),
                (
                    "StartupOfTheDevice",
                    "firmware 1.2.3, after an unclean stop (power loss, crash, kill or watchdog)",
                ),
            ],
        ),
        (
            PreviousRun(False, False, None, None, "t0"),
            [
                ("ResetOrReboot", None),
                ("StartupOfTheDevice", None),
                (
                    "SecurityLogWasCleared",
                    "the security log kept since t0 is gone: the state database was deleted "
                    "or replaced",
                ),
            ],
        ),
    ],
)
def test_the_events_of_a_start(
    previous: PreviousRun, expected: list[tuple[str, str | None]]
) -> None:
    sink = LoggingSink()
    report_start(sink, previous, "1.2.3")
    assert [e.value for e, _ in sink.raised] == [kind for kind, _ in expected]
    for (_, info), (_, wanted) in zip(sink.raised, expected, strict=True):
        assert wanted is None or info == wanted
    assert all(event in CRITICAL for event, _ in sink.raised)


# ---------------------------------------------------------------- invalid messages


async def test_the_rpc_tells_every_invalid_message() -> None:
    seen: list[str] = []
    async with asyncio.TaskGroup() as tg:
        rpc = Rpc(response_timeout_s=2, max_frame_bytes=256, spawn=tg.create_task)
        rpc.invalid_message = seen.append

        async def reset(_req: dict[str, Any]) -> Reply:
            return Reply({"status": "Accepted"})

        rpc.on("Reset", reset)
        sock = MemorySocket()
        serving = tg.create_task(rpc.serve(sock))
        await rpc.connected_event.wait()
        sock.feed("not json")
        sock.feed('[2,"a1","Reset",{"type":"Sideways"}]')
        sock.feed('[2,"a2","Reset",{"type":"' + "x" * 300 + '"}]')
        sock.feed('[2,"a3","MakeCoffee",{}]')  # valid OCPP, an action we do not know

        async def heartbeat() -> None:
            with contextlib.suppress(InvalidResponse):
                await rpc.call("Heartbeat", {})

        call = tg.create_task(heartbeat())
        await sock.wait_sent(4)  # three answers and the Heartbeat, in any order
        request = next(json.loads(f) for f in sock.sent if '"Heartbeat"' in f)
        sock.feed([3, request[1], {"currentTime": 5}])
        await call
        await sock.close()
        await serving
    assert sorted(seen) == [
        "CALLRESULT to Heartbeat: TypeConstraintViolation",
        "Reset: PropertyConstraintViolation",
        "frame over 256 bytes",
        "malformed frame: FormationViolation",
    ]
