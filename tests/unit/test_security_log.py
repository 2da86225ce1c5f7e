"""The security log (bounds, persistence, the upload format) and the run record."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from firmware.config import parse_config
from firmware.errors import ConfigError, StorageError
from firmware.security.runs import MARKER_NAME, RunRecord
from firmware.security.security_log import ENTRY_OVERHEAD, SecurityLog, csv_text, entry_size
from firmware.storage.db import Database

T = "2026-03-01T10:00:{:02d}.000Z"


def stamp(second: int) -> str:
    return T.format(second)


def types(log: SecurityLog, oldest: str | None = None, latest: str | None = None) -> list[str]:
    return [entry.type for chunk in log.entries(oldest, latest, chunk=3) for entry in chunk]


def test_rolling_by_count_drops_the_oldest_first(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=10, max_bytes=1 << 20)
    for number in range(25):
        log.append(stamp(number), f"Event{number}", None, critical=False)
    assert log.count == 10
    assert types(log) == [f"Event{n}" for n in range(15, 25)]
    assert log.rolled == 15
    db.close()


def test_rolling_by_bytes(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    size = entry_size(stamp(0), "Event", "x" * 100)
    log = SecurityLog(db, max_entries=1000, max_bytes=size * 4)
    for number in range(10):
        log.append(stamp(number), "Event", "x" * 100, critical=False)
    assert log.count == 4 and log.bytes == size * 4
    assert [e.occurred_at for chunk in log.entries() for e in chunk] == [
        stamp(n) for n in range(6, 10)
    ]
    # One entry bigger than the whole budget still goes in, alone.
    log.append(stamp(20), "Big", "y" * (size * 5), critical=True)
    assert types(log) == ["Big"] and log.rolled == 10
    db.close()


def test_the_log_and_its_bounds_survive_a_restart(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=5, max_bytes=1 << 20)
    for number in range(4):
        log.append(stamp(number), "Event", f"info {number}", critical=number % 2 == 0)
    db.close()
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=5, max_bytes=1 << 20)
    assert log.count == 4
    assert log.bytes == sum(entry_size(stamp(n), "Event", f"info {n}") for n in range(4))
    log.append(stamp(10), "Event", None, critical=False)
    log.append(stamp(11), "Event", None, critical=False)
    entries = [e for chunk in log.entries() for e in chunk]
    assert [e.tech_info for e in entries] == ["info 1", "info 2", "info 3", None, None]
    assert [e.critical for e in entries] == [False, True, False, False, False]
    db.close()


def test_the_time_window(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=100, max_bytes=1 << 20)
    for number in range(10):
        log.append(stamp(number), f"E{number}", None, critical=False)
    assert types(log, stamp(3), stamp(5)) == ["E3", "E4", "E5"]
    assert types(log, oldest=stamp(8)) == ["E8", "E9"]
    assert types(log, latest=stamp(1)) == ["E0", "E1"]
    assert types(log, stamp(5), stamp(4)) == []
    db.close()


def test_delivery_is_recorded(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=100, max_bytes=1 << 20)
    first = log.append(stamp(0), "StartupOfTheDevice", None, critical=True)
    second = log.append(stamp(1), "ResetOrReboot", None, critical=True)
    assert [e.id for e in log.unqueued_critical()] == [first, second]
    log.queued(first, 41)
    log.queued(second, 42)
    log.settled(41, True, stamp(5))
    log.settled(42, False, stamp(6))
    log.settled(43, True, stamp(7))  # a message of no entry (rolled out): nothing happens
    entries = [e for chunk in log.entries() for e in chunk]
    assert [(e.delivery, e.sent_at) for e in entries] == [("sent", stamp(5)), ("dropped", None)]
    assert log.unqueued_critical() == []
    db.close()


def test_csv_header() -> None:
    assert csv_text([], header=True) == "id,timestamp,type,critical,techInfo,delivery,sentAt\r\n"


def test_csv_round_trip(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    log = SecurityLog(db, max_entries=100, max_bytes=1 << 20)
    tricky = 'a, "quoted" value'
    log.append(stamp(0), "InvalidMessages", tricky, critical=False)
    text = csv_text([e for chunk in log.entries() for e in chunk], header=True)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1] == ["1", stamp(0), "InvalidMessages", "false", tricky, "", ""]
    db.close()


def test_entry_size_counts_utf8_bytes() -> None:
    assert entry_size("t", "T", "é") == 2 + 2 + ENTRY_OVERHEAD


# ---------------------------------------------------------------- the run record


def test_first_start_clean_and_unclean_stops(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    runs = RunRecord(db, tmp_path / MARKER_NAME)
    first = runs.begin(stamp(0))
    assert first.first_start and first.log_lost_since is None
    assert (tmp_path / MARKER_NAME).exists()
    runs.end("SoftReset")
    clean = runs.begin(stamp(1))
    assert not clean.first_start and clean.clean and clean.stop_reason == "SoftReset"
    assert clean.started_at == stamp(0)
    # No end(): a power cut, a crash, the watchdog.
    unclean = runs.begin(stamp(2))
    assert not unclean.clean and unclean.stop_reason is None and unclean.started_at == stamp(1)
    db.close()


def test_a_database_lost_with_its_log_is_told_from_a_first_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = Database(state / "state.db")
    RunRecord(db, state / MARKER_NAME).begin(stamp(0))
    db.close()
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (state / name).unlink(missing_ok=True)  # wiped, or replaced by an older copy
    db = Database(state / "state.db")
    runs = RunRecord(db, state / MARKER_NAME)
    after = runs.begin(stamp(5))
    assert after.log_lost_since == stamp(0) and not after.first_start
    # The new log has a new identity: the next start is an ordinary one.
    marker = json.loads((state / MARKER_NAME).read_text())
    assert marker["created_at"] == stamp(5)
    assert runs.begin(stamp(6)).log_lost_since is None
    db.close()


def test_an_unreadable_marker_counts_as_a_log_that_existed(tmp_path: Path) -> None:
    (tmp_path / MARKER_NAME).write_text("{not json")
    db = Database(tmp_path / "state.db")
    previous = RunRecord(db, tmp_path / MARKER_NAME).begin(stamp(0))
    assert previous.log_lost_since == "an unknown time"
    assert json.loads((tmp_path / MARKER_NAME).read_text())["created_at"] == stamp(0)
    db.close()


# ---------------------------------------------------------------- configuration


def config(**security_log: object) -> dict[str, object]:
    return {
        "ocpp": {"csms_url": "ws://127.0.0.1:9000/ocpp", "charge_point_id": "CP-1"},
        "security_log": security_log,
    }


def test_security_log_settings() -> None:
    defaults = parse_config(config()).security_log
    assert (defaults.max_entries, defaults.max_bytes, defaults.rss_limit_mb) == (
        10000,
        1024 * 1024,
        None,
    )
    chosen = parse_config(
        config(max_entries=50, event_repeat_s=0, rss_limit_mb=128, time_change_s=5)
    ).security_log
    assert (chosen.max_entries, chosen.event_repeat_s, chosen.rss_limit_mb) == (50, 0.0, 128)
    assert chosen.time_change_s == 5.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_entries": 5}, "security_log.max_entries: must be an integer between 10 and"),
        ({"max_bytes": "1M"}, "security_log.max_bytes: must be an integer between 16384 and"),
        ({"time_change_s": 0}, "security_log.time_change_s: must be a number greater than 0"),
        ({"event_repeat_s": -1}, "security_log.event_repeat_s: must be a number between 0"),
        ({"rss_limit_mb": 8}, "security_log.rss_limit_mb: must be an integer between 16 and"),
        ({"memory_check_s": 7200}, "security_log.memory_check_s: must be a number greater"),
        ({"max_entrys": 10}, "security_log.max_entrys: unknown key, did you mean 'max_entries'?"),
    ],
)
def test_bad_security_log_settings(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(**settings), "cp.yaml")
    assert str(caught.value).startswith(f"cp.yaml: {message}")


def test_a_database_that_takes_no_write_costs_the_record_not_the_start(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    runs = RunRecord(db, tmp_path / MARKER_NAME)
    db.execute("PRAGMA query_only=1")  # every write fails, as on a full disk
    with pytest.raises(StorageError):
        db.execute("INSERT INTO counters (name, value) VALUES ('x', 0)")
    previous = runs.begin(stamp(0))
    assert previous.clean and (previous.stop_reason or "").startswith("unknown: ")
    runs.end("Reboot")  # logged, not raised
    db.close()
