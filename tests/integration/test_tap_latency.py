"""The tap-to-energize instrument seen through the local API (no speed is asserted)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.harness import Daemon, charge_session_start, wait_until

# Drives the plant (the `hardware` marker in pyproject.toml says what that runs).
pytestmark = pytest.mark.hardware


async def _metrics(d: Daemon) -> dict[str, Any]:
    metrics: dict[str, Any] = (await d.get("/status"))["metrics"]
    return metrics


async def _wait_count(d: Daemon, count: int) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal last
        last = await _metrics(d)
        return bool(last["count"] >= count)

    deadline = asyncio.get_running_loop().time() + 10
    while not await reached():
        assert asyncio.get_running_loop().time() < deadline, f"metrics {last}"
        await asyncio.sleep(0.05)
    assert last["count"] == count, last
    return last


async def _wait_relay_closes(d: Daemon, count: int) -> None:
    """The daemon logged ``count`` completed relay closes (confirmed by feedback)."""
    await wait_until(
        lambda: d.log_path.read_text(errors="replace").count("connector 1 relay closed") >= count,
        10,
        f"{count} relay closes",
    )


@pytest.mark.emulated
async def test_a_tap_that_energizes_gives_one_figure(daemon: Daemon) -> None:
    await daemon.wait_status("Available")
    assert await _metrics(daemon) == {"count": 0, "tap_to_energize_ms": []}
    await daemon.sim(cp_state="C")
    await daemon.tap("04A1B2C3")
    await daemon.wait_connector(lambda c: c["relay_closed"])
    # Counted once the close is confirmed by the contactor's feedback.
    metrics = await _wait_count(daemon, 1)
    [figure] = metrics["tap_to_energize_ms"]
    # From the reader's read of the UID to the close command: after the
    # Authorize round trip and the persisted start, within the wait above.
    assert 0 < figure < 10_000
    # The stopping tap and a later remote start of the same tag are no taps.
    await daemon.tap("04A1B2C3")
    await daemon.log.wait_for("StopTransaction")
    await daemon.wait_connector(lambda c: not c["relay_closed"])
    answer = await daemon.log.call(
        "RemoteStartTransaction", {"idTag": "04A1B2C3", "connectorId": 1}
    )
    assert answer == {"status": "Accepted"}
    await _wait_relay_closes(daemon, 2)
    assert (await _metrics(daemon))["count"] == 1


async def test_a_refused_tap_gives_no_figure(daemon: Daemon) -> None:
    daemon.csms.id_tags["BADBAD"] = "Blocked"
    await daemon.wait_status("Available")
    await daemon.sim(cp_state="C")
    await daemon.tap("BADBAD")
    await wait_until(
        lambda: "token BADBAD not authorized" in daemon.log_path.read_text(errors="replace"),
        10,
        "the refusal of BADBAD",
    )
    # Unblocked later and started remotely: the refused tap is not its start.
    daemon.csms.id_tags["BADBAD"] = "Accepted"
    answer = await daemon.log.call("RemoteStartTransaction", {"idTag": "BADBAD"})
    assert answer == {"status": "Accepted"}
    await _wait_relay_closes(daemon, 1)
    assert await _metrics(daemon) == {"count": 0, "tap_to_energize_ms": []}
    await daemon.tap("BADBAD")
    await daemon.log.wait_for("StopTransaction")
    await daemon.sim(cp_state="A")
    await daemon.wait_status("Available")
    await charge_session_start(daemon, "0C0FFEE0")
    metrics = await _wait_count(daemon, 1)
    assert metrics["tap_to_energize_ms"][0] > 0
