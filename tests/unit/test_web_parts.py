"""The parts of the web page that are not the browser: the OCPP log ring, the link
tracker, the page's view of the status, and the assets' budget."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from firmware import logs
from firmware.ocpp.connection import LinkState
from firmware.ocpp.link_tracker import LinkTracker
from firmware.web.frames import TEXT_MAX, FrameRing
from firmware.web.ui import STATIC
from firmware.web.view import page_state

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def secret() -> Iterator[str]:
    logs.add_secret("hunter2-the-key")
    yield "hunter2-the-key"
    logs.forget_secrets()


def test_answers_get_the_action_of_their_call_and_tags_are_masked(secret: str) -> None:
    ring = FrameRing(lambda: 1000)
    ring.add("out", json.dumps([2, "a-1", "Authorize", {"idTag": "04A1B2C3"}]))
    ring.add("in", json.dumps([2, "c-1", "RemoteStartTransaction", {"idTag": "RFID_VALID1"}]))
    ring.add("out", json.dumps([3, "c-1", {"status": "Accepted"}]))
    ring.add(
        "in",
        json.dumps([3, "a-1", {"idTagInfo": {"status": "Accepted", "parentIdTag": "GROUP-0042"}}]),
    )
    ring.add("in", json.dumps([2, "c-2", "ChangeConfiguration", {"key": "x", "value": secret}]))
    ring.add("out", json.dumps([4, "c-2", "NotSupported", "no", {}]))
    ring.add("in", "not json at all")
    shown = ring.since(0)
    assert [(f["dir"], f["kind"], f["action"]) for f in shown] == [
        ("out", "CALL", "Authorize"),
        ("in", "CALL", "RemoteStartTransaction"),
        ("out", "RESULT", "RemoteStartTransaction"),
        ("in", "RESULT", "Authorize"),
        ("in", "CALL", "ChangeConfiguration"),
        ("out", "ERROR", "ChangeConfiguration"),
        ("in", "?", ""),
    ]
    assert shown[0]["payload"] == '{"idTag":"****B2C3"}'
    assert shown[1]["payload"] == '{"idTag":"*******LID1"}'
    assert shown[3]["payload"] == '{"idTagInfo":{"status":"Accepted","parentIdTag":"******0042"}}'
    assert secret not in json.dumps(shown)
    assert shown[5]["payload"] == '["NotSupported","no",{}]'
    assert shown[6]["payload"] == "not json at all"
    assert [f["seq"] for f in ring.since(5)] == [6, 7] and ring.since(7) == []


def test_the_ring_is_bounded_and_long_frames_are_cut() -> None:
    ring = FrameRing(lambda: 0, size=3)
    long_tag = json.dumps([2, "m-1", "DataTransfer", {"vendorId": "x", "data": "y" * 5000}])
    ring.add("out", long_tag)
    assert len(ring.since(0)[0]["payload"]) <= TEXT_MAX + 1
    for n in range(5):
        ring.add("out", json.dumps([2, f"h-{n}", "Heartbeat", {}]))
    assert [f["id"] for f in ring.since(0)] == ["h-2", "h-3", "h-4"]
    cut = json.dumps([2, "s-1", "StartTransaction", {"idTag": "04A1B2C3" + " " * TEXT_MAX}])
    ring.add("out", cut[: TEXT_MAX - 10] + '", "x": 1}]')
    assert "04A1B2C3" not in json.dumps(ring.since(0))


def test_the_link_tracker_keeps_when_the_link_went_down() -> None:
    now = [START]
    tracker = LinkTracker(lambda: now[0])
    assert tracker.summary()["state"] == "connecting"
    assert tracker.summary()["since"] == "2026-01-01T00:00:00.000Z"
    now[0] += timedelta(seconds=5)
    tracker.update(LinkState("connected", "ws://x/CP"))
    assert tracker.summary() == {
        "state": "connected",
        "detail": "",
        "since": "2026-01-01T00:00:05.000Z",
        "retry_at": None,
    }
    now[0] += timedelta(seconds=60)
    tracker.update(LinkState("offline", "ws://x/CP", "disconnected from ws://x/CP", 2.5))
    now[0] += timedelta(seconds=3)
    tracker.update(LinkState("connecting", "ws://x/CP"))
    now[0] += timedelta(seconds=1)
    tracker.update(
        LinkState("offline", "ws://x/CP", "cannot connect to ws://u:secretpw@x/CP: HTTP 401", 8.0)
    )
    summary = tracker.summary()
    assert summary["state"] == "offline"
    assert summary["since"] == "2026-01-01T00:01:05.000Z"  # the outage began at the loss
    assert summary["retry_at"] == "2026-01-01T00:01:17.000Z"
    assert "secretpw" not in summary["detail"]


def test_the_page_shows_tags_masked() -> None:
    connector = {"id": 1, "status": "Charging", "id_tag": "RFID_VALID1", "faults": []}
    status = {
        "charge_point_id": "CP",
        "ocpp": {"connected": True, "registration": "Accepted", "queued": 0},
        "station": {"status": "Available", "error_code": "NoError", "faults": []},
        "connectors": [connector],
    }
    view = page_state(status)
    assert view["connectors"][0]["id_tag"] == "*******LID1"
    assert "RFID_VALID1" not in json.dumps(view)


def test_the_page_fits_the_budget_and_asks_nothing_of_other_hosts() -> None:
    files = sorted(STATIC.iterdir())
    assert {f.name for f in files} == {"index.html", "app.js", "app.css", "favicon.svg"}
    assert sum(f.stat().st_size for f in files) < 150_000
    for f in files:
        text = f.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name
        assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), f.name
    script = (STATIC / "app.js").read_text()
    # Pushed by the station: no timer and no polling loop in the page.
    assert not re.search(r"setInterval|setTimeout|requestAnimationFrame|XMLHttpRequest", script)
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
