"""Firmware Management, GetDiagnostics: archive of logs and state, uploaded over HTTP or FTP."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware.clock import iso
from hil.station_log import CallErrorReceived
from tests.integration.file_servers import Http, http_server
from tests.integration.harness import Daemon, charge_session_start, free_port
from tests.unit.test_transfer_ftp import Ftp
from tests.unit.test_transfer_ftp import _serve as ftp_serve

MakeDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Http]:
    async with http_server(tmp_path / "www") as server:
        yield server


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[Ftp]:
    yield from ftp_serve(tmp_path)


async def _daemon(make_daemon: MakeDaemon, method: str = "POST") -> Daemon:
    d = await make_daemon(start=False)
    d.write_config(
        {
            "diagnostics": {
                "log_file": str(d.workdir / "logs" / "chargepoint.log"),
                "upload_method": method,
                "stall_timeout_s": 5,
                "transfer_timeout_s": 30,
            }
        }
    )
    await d.start()
    return d


def diagnostics_statuses(d: Daemon) -> list[str]:
    return [p["status"] for p in d.log.calls("DiagnosticsStatusNotification")]


async def wait_diagnostics(d: Daemon, status: str, timeout: float = 20) -> None:
    await d.log.wait_for(
        "DiagnosticsStatusNotification", lambda p: p["status"] == status, timeout=timeout
    )


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        out = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                out[member.name.split("/", 1)[1]] = handle.read()
        return out


async def test_post_upload_holds_logs_and_state(make_daemon: MakeDaemon, http: Http) -> None:
    d = await _daemon(make_daemon)
    await d.sim(cp_state="B")  # something worth logging
    await d.wait_status("Preparing")
    answer = await d.log.call("GetDiagnostics", {"location": f"{http.base}/upload"})
    name = answer["fileName"]
    assert name.startswith("diagnostics-CP-1-") and name.endswith(".tar.gz")
    await wait_diagnostics(d, "Uploaded")
    assert diagnostics_statuses(d) == ["Uploading", "Uploaded"]
    method, filename, body, _ = http.seen.uploads[0]
    assert (method, filename) == ("POST", name)
    files = members(body)
    assert set(files) >= {"manifest.json", "state.json", "logs/chargepoint.log"}
    log_text = files["logs/chargepoint.log"].decode()
    assert "registration Accepted" in log_text
    state = json.loads(files["state.json"])
    assert state["status"]["charge_point_id"] == "CP-1"
    assert any(k["key"] == "HeartbeatInterval" for k in state["configuration"])
    api = (await d.get("/status"))["diagnostics"]
    assert api["status"] == "Uploaded" and api["location"] == f"{http.base}/upload"
    assert api["bytes"] == api["total"] == len(body)


async def test_put_upload_goes_to_the_file_in_the_directory(
    make_daemon: MakeDaemon, http: Http
) -> None:
    d = await _daemon(make_daemon, "PUT")
    answer = await d.log.call("GetDiagnostics", {"location": f"{http.base}/upload/"})
    await wait_diagnostics(d, "Uploaded")
    assert ("PUT", f"/upload/{answer['fileName']}") in [(m, p) for m, p, _ in http.seen.requests]
    assert "manifest.json" in members(http.seen.uploads[0][2])


async def test_ftp_upload_with_the_time_window(make_daemon: MakeDaemon, ftp: Ftp) -> None:
    d = await _daemon(make_daemon)
    before = datetime.now(UTC) - timedelta(hours=2)
    window = {"startTime": iso(before), "stopTime": iso(before + timedelta(hours=1))}
    answer = await d.log.call("GetDiagnostics", {"location": ftp.url("incoming"), **window})
    await wait_diagnostics(d, "Uploaded")
    uploaded = (ftp.home / "incoming" / answer["fileName"]).read_bytes()
    files = members(uploaded)
    manifest = json.loads(files["manifest.json"])
    assert manifest["startTime"] == window["startTime"]
    assert manifest["stopTime"] == window["stopTime"]
    # Every line of the log is from now: none falls in a window two hours ago.
    assert "logs/chargepoint.log" not in files
    assert manifest["logs"][0]["linesKept"] == 0 and manifest["logs"][0]["linesRead"] > 0
    # A window around now keeps the lines.
    now = {"startTime": iso(datetime.now(UTC) - timedelta(minutes=5))}
    mark = d.log.mark()
    answer = await d.log.call("GetDiagnostics", {"location": ftp.url("incoming"), **now})
    await d.log.wait_for(
        "DiagnosticsStatusNotification", lambda p: p["status"] == "Uploaded", since=mark
    )
    files = members((ftp.home / "incoming" / answer["fileName"]).read_bytes())
    assert "registration Accepted" in files["logs/chargepoint.log"].decode()
    assert "STOR incoming/" + answer["fileName"] in ftp.commands


async def test_upload_failed_after_the_retries(make_daemon: MakeDaemon) -> None:
    d = await _daemon(make_daemon)
    location = f"http://127.0.0.1:{free_port()}/upload"
    answer = await d.log.call(
        "GetDiagnostics", {"location": location, "retries": 1, "retryInterval": 1}
    )
    assert "fileName" in answer
    await wait_diagnostics(d, "UploadFailed")
    assert diagnostics_statuses(d) == ["Uploading", "UploadFailed"]
    assert (await d.get("/status"))["diagnostics"]["status"] == "UploadFailed"
    assert list((d.state_dir / "diagnostics").iterdir()) == []  # no archive left behind


async def test_nothing_to_upload_gets_no_file_name(daemon: Daemon) -> None:
    answer = await daemon.log.call("GetDiagnostics", {"location": "gopher://host/dir"})
    assert answer == {}
    assert daemon.log.calls("DiagnosticsStatusNotification") == []


@pytest.mark.parametrize(
    "payload",
    [
        {"location": "http://h/d", "startTime": "yesterday"},
        {
            "location": "http://h/d",
            "startTime": "2026-01-02T00:00:00Z",
            "stopTime": "2026-01-01T00:00:00Z",
        },
        {"location": "http://h/d", "retryInterval": -5},
    ],
)
async def test_bad_get_diagnostics_requests_get_a_callerror(
    daemon: Daemon, payload: dict[str, Any]
) -> None:
    with pytest.raises(CallErrorReceived) as caught:
        await daemon.log.call("GetDiagnostics", payload)
    assert caught.value.code in ("TypeConstraintViolation", "PropertyConstraintViolation")


@pytest.mark.parametrize("include", [False, True])
async def test_archive_masks_id_tags_unless_configured(
    make_daemon: MakeDaemon, http: Http, include: bool
) -> None:
    tag, masked = "RFID_valid1", "*******lid1"
    d = await make_daemon(start=False)  # at log_level DEBUG: the log file has the frames
    d.write_config(
        {
            "diagnostics": {
                "log_file": str(d.workdir / "logs" / "chargepoint.log"),
                "include_id_tags": include,
            }
        }
    )
    await d.start()
    await charge_session_start(d, tag)  # the state summary shows the running session
    await d.log.call("GetDiagnostics", {"location": f"{http.base}/upload"})
    await wait_diagnostics(d, "Uploaded")
    files = members(http.seen.uploads[0][2])
    log_text = files["logs/chargepoint.log"].decode()
    connector = json.loads(files["state.json"])["status"]["connectors"][0]
    frames = log_text.replace(" ", "")
    if include:
        assert connector["id_tag"] == tag
        assert f'"idTag":"{tag}"' in frames and f"token {tag} presented" in log_text
    else:
        assert connector["id_tag"] == masked
        assert f'"idTag":"{masked}"' in frames and f"token {masked} presented" in log_text
        assert tag.casefold() not in b"".join(files.values()).decode().casefold()
