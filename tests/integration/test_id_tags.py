"""Any idTag starts a session, matched case-insensitively, and the log shows it masked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.integration.harness import Daemon, charge_session_start

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware

MakeDaemon = Callable[..., Awaitable[Daemon]]

# Station-wide taps (None) of tokens that are not chip UIDs go through the
# emulated backend's station line reader, connector taps through the
# connector's line reader; the simulated plant takes them all directly.
TOKENS = [
    ("RFID_VALID1", None),
    ("TAG0001", 1),
    ("user-42", None),
    ("abc", 1),
    ("Rfid Mixed-1", None),
    ("04a1b2c3", None),  # lower-case hex stays lower-case
]


@pytest.mark.emulated
async def test_any_id_tag_starts_and_stops_its_session(daemon: Daemon) -> None:
    await daemon.wait_status("Available")
    for tag, connector in TOKENS:
        await daemon.sim(cp_state="B")
        await daemon.wait_status("Preparing")
        await daemon.tap(tag, connector)
        start = await daemon.log.wait_for(
            "StartTransaction", lambda p, tag=tag: p["idTag"] == tag, since=daemon._since
        )
        assert start["connectorId"] == 1
        # The local API shows the tag in full (it listens on loopback only).
        running = await daemon.wait_connector(lambda c: c["transaction_id"] is not None)
        assert running["id_tag"] == tag
        await daemon.tap(tag, connector)
        stop = await daemon.log.wait_for("StopTransaction", since=daemon._since)
        assert (stop["idTag"], stop["reason"]) == (tag, "Local")
        await daemon.wait_status("Finishing")
        await daemon.sim(cp_state="A")
        await daemon.wait_status("Available")
    # Each tag was authorized once, exactly as presented; its own tap stopped it.
    assert [p["idTag"] for p in daemon.log.calls("Authorize")] == [t for t, _ in TOKENS]
    if daemon.backend == "emulated":  # read by the real line reader driver (log at DEBUG)
        text = daemon.log_path.read_text()
        assert "reader-station-lines): token RFID_VALID1" in text
        assert "reader1): token TAG0001" in text


async def test_a_differently_cased_tap_of_the_same_tag_stops_the_session(daemon: Daemon) -> None:
    await charge_session_start(daemon, "User-42")
    await daemon.tap("USER-42")
    stop = await daemon.log.wait_for("StopTransaction", since=daemon._since)
    assert (stop["idTag"], stop["reason"]) == ("USER-42", "Local")
    # The same tag (CiString20: case-insensitive) stops without an Authorize.
    assert [p["idTag"] for p in daemon.log.calls("Authorize")] == ["User-42"]


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_the_daemon_log_shows_id_tags_in_full_only_at_debug(
    make_daemon: MakeDaemon, level: str
) -> None:
    tag = "RFID_valid1"
    d = await make_daemon(log_level=level)
    await charge_session_start(d, tag)
    await d.tap(tag)
    await d.log.wait_for("StopTransaction", since=d._since)
    assert await d.stop() == 0
    text = d.log_path.read_text()
    if level == "INFO":
        assert tag.casefold() not in text.casefold()
        assert "token *******lid1 presented" in text
        assert "transaction 1 started for *******lid1" in text
    else:
        assert f"token {tag} presented" in text
        assert f'"idTag":"{tag}"' in text.replace(" ", "")  # the frame log
