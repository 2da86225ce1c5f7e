"""GetLog end to end: the security log and the diagnostics log uploaded over HTTP and FTP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware.clock import iso
from hil.station_log import CallErrorReceived
from tests.integration.file_servers import Http, http_server
from tests.integration.harness import Daemon, charge_session_start, free_port
from tests.integration.test_diagnostics import members
from tests.unit.test_transfer_ftp import Ftp
from tests.unit.test_transfer_ftp import _serve as ftp_serve

MakeDaemon = Callable[..., Awaitable[Daemon]]
HEADER = ["id", "timestamp", "type", "critical", "techInfo", "delivery", "sentAt"]


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Http]:
    async with http_server(tmp_path / "www") as server:
        yield server


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[Ftp]:
    yield from ftp_serve(tmp_path)


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """An HTTP location that takes the connection and never answers: an upload that hangs."""
    connected = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        connected.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/upload", connected
    finally:
        for writer in held:
            writer.close()
        server.close()


async def _daemon(make_daemon: MakeDaemon, **diagnostics: Any) -> Daemon:
    d = await make_daemon(start=False)
    d.write_config(
        {
            "diagnostics": {
                "log_file": str(d.workdir / "logs" / "chargepoint.log"),
                "stall_timeout_s": 30,
                "transfer_timeout_s": 60,
                **diagnostics,
            }
        }
    )
    await d.start()
    await d.log.wait_for("SecurityEventNotification")  # the StartupOfTheDevice
    await d.wait_queue_empty()
    return d


def get_log(log_type: str, location: str, request_id: int = 1, **extra: Any) -> dict[str, Any]:
    window = {k: v for k, v in extra.items() if k in ("oldestTimestamp", "latestTimestamp")}
    rest = {k: v for k, v in extra.items() if k not in window}
    return {
        "logType": log_type,
        "requestId": request_id,
        "log": {"remoteLocation": location, **window},
        **rest,
    }


def statuses(d: Daemon, request_id: int | None = None) -> list[str]:
    return [
        p["status"]
        for p in d.log.calls("LogStatusNotification")
        if request_id is None or p.get("requestId") == request_id
    ]


async def wait_log_status(d: Daemon, request_id: int, status: str, timeout: float = 20) -> None:
    await d.log.wait_for(
        "LogStatusNotification",
        lambda p: p.get("requestId") == request_id and p["status"] == status,
        timeout=timeout,
    )


def rows(data: bytes) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    assert header == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in reader]


async def tamper_event(d: Daemon) -> dict[str, Any]:
    mark = d.log.mark()
    await d.fault("tamper", True, connector=0)
    event = await d.log.wait_for(
        "SecurityEventNotification",
        lambda p: p["type"] == "TamperDetectionActivated",
        since=mark,
    )
    await d.wait_queue_empty()
    return event


@pytest.mark.parametrize("transport", ["http", "ftp"])
async def test_security_log_uploaded_with_its_time_window(
    make_daemon: MakeDaemon, http: Http, ftp: Ftp, transport: str
) -> None:
    d = await _daemon(make_daemon)
    startup = d.log.calls("SecurityEventNotification")[0]
    tamper = await tamper_event(d)
    location = f"{http.base}/upload" if transport == "http" else ftp.url("incoming")

    async def fetch(request_id: int, **window: Any) -> tuple[str, bytes]:
        answer = await d.log.call("GetLog", get_log("SecurityLog", location, request_id, **window))
        assert answer["status"] == "Accepted"
        await wait_log_status(d, request_id, "Uploaded")
        assert statuses(d, request_id) == ["Uploading", "Uploaded"]
        name = str(answer["filename"])
        if transport == "http":
            method, filename, body, _ = http.seen.uploads[-1]
            assert (method, filename) == ("POST", name)
            return name, body
        return name, (ftp.home / "incoming" / name).read_bytes()

    name, data = await fetch(7)
    assert name.startswith("securitylog-CP-1-") and name.endswith(".csv")
    entries = rows(data)
    assert [(e["type"], e["timestamp"], e["delivery"]) for e in entries] == [
        ("StartupOfTheDevice", startup["timestamp"], "sent"),
        ("TamperDetectionActivated", tamper["timestamp"], "sent"),
    ]
    assert entries[1]["critical"] == "true" and entries[1]["sentAt"]
    assert entries[1]["techInfo"] == "tamper input active"
    # The window: from the tamper event on, then up to the start-up alone.
    _, data = await fetch(8, oldestTimestamp=tamper["timestamp"])
    assert [e["type"] for e in rows(data)] == ["TamperDetectionActivated"]
    _, data = await fetch(9, latestTimestamp=startup["timestamp"])
    assert [e["type"] for e in rows(data)] == ["StartupOfTheDevice"]


@pytest.mark.parametrize("transport", ["http", "ftp"])
async def test_diagnostics_log_uploaded_with_its_time_window(
    make_daemon: MakeDaemon, http: Http, ftp: Ftp, transport: str
) -> None:
    d = await _daemon(make_daemon, upload_method="PUT")
    location = f"{http.base}/upload/" if transport == "http" else ftp.url("incoming")
    before = datetime.now(UTC) - timedelta(hours=2)
    window = {"oldestTimestamp": iso(before), "latestTimestamp": iso(before + timedelta(hours=1))}
    answer = await d.log.call("GetLog", get_log("DiagnosticsLog", location, 3, **window))
    assert answer["status"] == "Accepted"
    name = str(answer["filename"])
    assert name.startswith("diagnostics-CP-1-") and name.endswith(".tar.gz")
    await wait_log_status(d, 3, "Uploaded")
    if transport == "http":
        assert ("PUT", f"/upload/{name}") in [(m, p) for m, p, _ in http.seen.requests]
        archive = http.seen.uploads[-1][2]
    else:
        archive = (ftp.home / "incoming" / name).read_bytes()
    files = members(archive)
    manifest = json.loads(files["manifest.json"])
    assert (manifest["startTime"], manifest["stopTime"]) == (
        window["oldestTimestamp"],
        window["latestTimestamp"],
    )
    assert "logs/chargepoint.log" not in files  # every line is from now, none two hours ago
    assert manifest["logs"][0]["linesRead"] > 0
    assert json.loads(files["state.json"])["status"]["charge_point_id"] == "CP-1"


async def test_diagnostics_log_masks_id_tags(make_daemon: MakeDaemon, http: Http) -> None:
    d = await _daemon(make_daemon)
    await charge_session_start(d, "RFID_valid1")
    answer = await d.log.call("GetLog", get_log("DiagnosticsLog", f"{http.base}/upload", 4))
    await wait_log_status(d, 4, "Uploaded")
    files = members(http.seen.uploads[-1][2])
    connector = json.loads(files["state.json"])["status"]["connectors"][0]
    assert connector["id_tag"] == "*******lid1"
    assert "rfid_valid1" not in b"".join(files.values()).decode().casefold()
    assert answer["filename"].endswith(".tar.gz")


async def test_a_new_get_log_cancels_the_running_one(make_daemon: MakeDaemon, http: Http) -> None:
    d = await _daemon(make_daemon)
    trigger = {"requestedMessage": "LogStatusNotification"}
    mark = d.log.mark()
    assert await d.log.call("ExtendedTriggerMessage", trigger) == {"status": "Accepted"}
    idle = await d.log.wait_for("LogStatusNotification", since=mark)
    assert idle == {"status": "Idle"}
    async with silent_server() as (hanging, connected):
        first = await d.log.call("GetLog", get_log("SecurityLog", hanging, 1))
        assert first["status"] == "Accepted"
        await wait_log_status(d, 1, "Uploading")
        await connected.wait()  # the upload is under way, and hangs
        mark = d.log.mark()
        await d.log.call("ExtendedTriggerMessage", trigger)
        running = await d.log.wait_for("LogStatusNotification", since=mark)
        assert running == {"status": "Uploading", "requestId": 1}
        second = await d.log.call("GetLog", get_log("SecurityLog", f"{http.base}/upload", 2))
        assert second["status"] == "AcceptedCanceled"
        assert second["filename"].startswith("securitylog-CP-1-")
        await wait_log_status(d, 2, "Uploaded")
    after = [(p["status"], p.get("requestId")) for p in d.log.calls("LogStatusNotification")]
    assert after[1:] == [  # after the Idle: the first upload, the trigger, the cancel, the second
        ("Uploading", 1),
        ("Uploading", 1),
        ("UploadFailure", 1),
        ("Uploading", 2),
        ("Uploaded", 2),
    ]
    assert [(m, name) for m, name, _, _ in http.seen.uploads] == [("POST", second["filename"])]
    mark = d.log.mark()
    await d.log.call("ExtendedTriggerMessage", trigger)
    assert await d.log.wait_for("LogStatusNotification", since=mark) == {"status": "Idle"}


async def test_a_failed_upload_says_why(make_daemon: MakeDaemon, http: Http) -> None:
    d = await _daemon(make_daemon)
    failures = {
        "/status/401": "PermissionDenied",
        "/status/405": "NotSupportedOperation",
        "/status/400": "BadMessage",
        "/status/500": "UploadFailure",
    }
    for request_id, (path, expected) in enumerate(failures.items(), start=10):
        request = get_log("SecurityLog", http.base + path, request_id, retries=0)
        assert (await d.log.call("GetLog", request))["status"] == "Accepted"
        await wait_log_status(d, request_id, expected)
        assert statuses(d, request_id) == ["Uploading", expected]
    assert list((d.state_dir / "logs").iterdir()) == []  # nothing left behind


async def test_upload_failure_after_the_retries(make_daemon: MakeDaemon) -> None:
    d = await _daemon(make_daemon)
    closed = f"http://127.0.0.1:{free_port()}/upload"
    request = get_log("DiagnosticsLog", closed, 6, retries=1, retryInterval=1)
    line = len(d.log_lines())
    assert (await d.log.call("GetLog", request))["status"] == "Accepted"
    await wait_log_status(d, 6, "UploadFailure")
    await d.wait_log(r"upload to \S+ failed \(attempt 2 of 2\)", since=line)
    assert statuses(d, 6) == ["Uploading", "UploadFailure"]


async def test_an_unusable_location_is_rejected(daemon: Daemon) -> None:
    answer = await daemon.log.call("GetLog", get_log("SecurityLog", "gopher://host/dir"))
    assert answer == {"status": "Rejected"}
    await daemon.wait_log(r"GetLog 1: location gopher://host/dir unusable")
    assert daemon.log.calls("LogStatusNotification") == []


@pytest.mark.parametrize(
    "extra",
    [
        {"oldestTimestamp": "yesterday"},
        {"oldestTimestamp": "2026-01-02T00:00:00Z", "latestTimestamp": "2026-01-01T00:00:00Z"},
        {"retryInterval": -5},
        {"retries": -1},
    ],
)
async def test_bad_get_log_requests_get_a_callerror(daemon: Daemon, extra: dict[str, Any]) -> None:
    with pytest.raises(CallErrorReceived) as caught:
        await daemon.log.call("GetLog", get_log("SecurityLog", "http://h/d", **extra))
    assert caught.value.code in ("TypeConstraintViolation", "PropertyConstraintViolation")
