"""The GetDiagnostics archive: time window, continuation lines, redaction, naming."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from firmware.logs import redact
from firmware.transfer import build_archive, build_archive_async, rotated_logs
from firmware.transfer.logwindow import Window, line_time

NOW = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
FRAME = '{"key": "AuthorizationKey", "value": "0011223344556677"}'


def _archive(path: Path) -> dict[str, str]:
    with tarfile.open(path) as tar:
        return {
            member.name: tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "log"
    directory.mkdir()
    older = [
        "2026-03-01T09:59:59.900Z INFO app: before the window",
        "2026-03-01T10:00:00.000Z INFO app: first in the window",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
    ]
    with gzip.open(directory / "chargepoint.log.2.gz", "wt") as out:
        out.write("\n".join(older) + "\n")
    (directory / "chargepoint.log.1").write_text(
        "  continued from the previous file\n"
        f'2026-03-01 11:00:00,123 DEBUG ocpp: → [2,"1","ChangeConfiguration",{FRAME}]\n'
        "2026-03-01T12:00:00+01:00 INFO app: 11:00 UTC, in the window\n"
    )
    (directory / "chargepoint.log").write_text(
        "2026-03-01T12:00:00.001Z INFO transfer: downloading ftp://fw:hunter2@host/fw.bin\n"
        "2026-03-01T12:00:01Z INFO app: after the window\n"
        "   continuation after the window\n"
    )
    (directory / "other.log").write_text("2026-03-01T11:00:00Z not ours\n")
    stamps = {"chargepoint.log.2.gz": 100, "chargepoint.log.1": 200, "chargepoint.log": 300}
    for name, mtime in stamps.items():
        os.utime(directory / name, (mtime, mtime))
    return directory


def test_rotated_logs_are_found_oldest_first(log_dir: Path) -> None:
    names = [p.name for p in rotated_logs(log_dir, "chargepoint.log")]
    assert names == ["chargepoint.log.2.gz", "chargepoint.log.1", "chargepoint.log"]


def test_only_lines_in_the_window_are_kept_and_secrets_are_hidden(
    log_dir: Path, tmp_path: Path
) -> None:
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    stop = datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
    path = build_archive(
        "CP 1/a",
        rotated_logs(log_dir, "chargepoint.log"),
        {"firmware": "0.1.0", "ftp": {"password": "hunter2"}, "AuthorizationKey": "abc"},
        start=start,
        stop=stop,
        out_dir=tmp_path / "out",
        now=NOW,
    )
    assert path.name == "diagnostics-CP_1_a-20260301T123005Z.tar.gz"
    files = _archive(path)
    folder = "diagnostics-CP_1_a-20260301T123005Z"
    assert sorted(files) == [
        f"{folder}/logs/chargepoint.log",
        f"{folder}/logs/chargepoint.log.1",
        f"{folder}/logs/chargepoint.log.2",
        f"{folder}/manifest.json",
        f"{folder}/state.json",
    ]
    assert files[f"{folder}/logs/chargepoint.log.2"].splitlines() == [
        "2026-03-01T10:00:00.000Z INFO app: first in the window",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
    ]
    middle = files[f"{folder}/logs/chargepoint.log.1"].splitlines()
    assert middle[0] == "  continued from the previous file"
    assert '"value": "***"' in middle[1] and "0011223344556677" not in middle[1]
    assert middle[2].endswith("11:00 UTC, in the window")
    assert files[f"{folder}/logs/chargepoint.log"].splitlines() == [
        "2026-03-01T12:00:00.001Z INFO transfer: downloading ftp://fw:***@host/fw.bin"
    ]
    everything = "".join(files.values())
    state = json.loads(files[f"{folder}/state.json"])
    assert "hunter2" not in everything and state["AuthorizationKey"] == "***"
    assert state["firmware"] == "0.1.0"
    manifest = json.loads(files[f"{folder}/manifest.json"])
    assert manifest["startTime"] == "2026-03-01T10:00:00.000Z"
    assert [entry["linesKept"] for entry in manifest["logs"]] == [3, 3, 1]


async def test_no_window_keeps_everything_and_runs_off_the_event_loop(
    log_dir: Path, tmp_path: Path
) -> None:
    logs = rotated_logs(log_dir, "chargepoint.log")
    path = await build_archive_async("CP1", logs, {}, now=NOW)
    try:
        files = _archive(path)
        kept = sum(len(text.splitlines()) for name, text in files.items() if "/logs/" in name)
        assert kept == 4 + 3 + 3
    finally:
        path.unlink()
        path.parent.rmdir()


def test_an_empty_window_leaves_only_state_and_manifest(log_dir: Path, tmp_path: Path) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    path = build_archive(
        "CP1",
        [*rotated_logs(log_dir, "chargepoint.log"), log_dir / "gone.log"],
        {},
        start=start,
        out_dir=tmp_path,
        now=NOW,
    )
    names = sorted(Path(name).name for name in _archive(path))
    assert names == ["manifest.json", "state.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging")]


def test_naive_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aware"):
        build_archive("CP1", [], {}, start=datetime(2026, 1, 1), out_dir=tmp_path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2026-03-01T10:00:00.123Z INFO x", datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2026-03-01 10:00:00,5 INFO x", datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        (
            "<14>1 2026-03-01T12:00:00+02:00 host app - - msg",
            datetime(2026, 3, 1, 10, tzinfo=UTC),
        ),
        ("[2026-03-01T10:00:00 -0130] x", datetime(2026, 3, 1, 11, 30, tzinfo=UTC)),
        ("no time here", None),
        ("2026-13-01T10:00:00Z month 13", None),
        ("x" * 60 + " 2026-03-01T10:00:00Z too far right", None),
    ],
)
def test_line_time(line: str, expected: datetime | None) -> None:
    assert line_time(line) == expected


def test_leading_lines_without_time_follow_the_first_timed_line() -> None:
    window = Window(datetime(2026, 1, 1, tzinfo=UTC), None)
    kept = [out for line in ["head", "2026-01-02T00:00:00Z a", "tail"] for out in window.feed(line)]
    assert kept == ["head", "2026-01-02T00:00:00Z a", "tail"]
    window = Window(None, datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    assert [out for line in ["head", "2026-01-02T00:00:00Z a"] for out in window.feed(line)] == []


def test_the_firmwares_redaction_is_the_default() -> None:
    line = f"→ {FRAME} ftp://u:pw@h/x"
    assert redact(line) == '→ {"key": "AuthorizationKey", "value": "***"} ftp://u:***@h/x'


# ---------------------------------------------------------------- idTags

TAG_LINES = [
    '2026-03-01T12:00:00.000Z DEBUG ocpp.frames → [2,"5","StartTransaction",'
    '{"connectorId":1,"idTag":"RFID_valid1","meterStart":0}]',
    '2026-03-01T12:00:00.100Z DEBUG ocpp.frames ← [3,"5",{"idTagInfo":'
    '{"status":"Accepted","parentIdTag":"FLEET-0042"},"transactionId":3}]',
    "2026-03-01T12:00:00.200Z INFO station token *******lid1 presented (connector 1)",
]
TAG_STATE = {
    "connectors": [{"id": 1, "id_tag": "RFID_valid1", "status": "Charging"}, {"id_tag": None}],
    "reservation": {"idTag": "user-42", "parentIdTag": "FLEET-0042", "reservationId": 4},
}


def _tag_archive(tmp_path: Path, **options: bool) -> dict[str, str]:
    log = tmp_path / "chargepoint.log"
    log.write_text("\n".join(TAG_LINES) + "\n")
    path = build_archive("CP1", [log], TAG_STATE, out_dir=tmp_path / "out", now=NOW, **options)
    return {name.split("/", 1)[1]: text for name, text in _archive(path).items()}


def test_id_tags_are_masked_in_logs_and_state_by_default(tmp_path: Path) -> None:
    files = _tag_archive(tmp_path)
    everything = "".join(files.values())
    for tag in ("RFID_valid1", "FLEET-0042", "user-42"):
        assert tag not in everything
    log = files["logs/chargepoint.log"]
    assert '"idTag":"*******lid1"' in log and '"parentIdTag":"******0042"' in log
    assert "token *******lid1 presented" in log
    state = json.loads(files["state.json"])
    assert state["connectors"][0]["id_tag"] == "*******lid1"
    assert state["connectors"][1]["id_tag"] is None
    assert state["reservation"] == {
        "idTag": "****-42",
        "parentIdTag": "******0042",
        "reservationId": 4,
    }


def test_id_tags_are_kept_when_asked(tmp_path: Path) -> None:
    everything = "".join(_tag_archive(tmp_path, id_tags=True).values())
    assert everything.count("RFID_valid1") == 2  # the frame and the state
    assert everything.count("FLEET-0042") == 2 and "user-42" in everything
