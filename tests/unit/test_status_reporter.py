"""StatusReporter: a job's statuses in order while registered, the newest while not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from firmware.ocpp.errors import CallTimeout
from firmware.ocpp.status_reporter import StatusReporter


class FakeRpc:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.connected_event = asyncio.Event()
        self.connected_event.set()
        self.fail_next: Exception | None = None

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err
        self.sent.append(payload["status"])
        return {}


async def test_reporter_sends_in_order_online_and_only_the_newest_offline() -> None:
    rpc, ready = FakeRpc(), asyncio.Event()
    delivered: list[str] = []
    reporter = StatusReporter(
        rpc,  # type: ignore[arg-type]
        "FirmwareStatusNotification",
        ready,
        on_delivered=delivered.append,
        retry_s=0.01,
    )
    task = asyncio.create_task(reporter.run())
    try:
        reporter.report("Downloading")  # offline: stale once the next one comes
        reporter.report("Downloaded")
        ready.set()
        reporter.report("Installing")  # online: every one, in order
        reporter.report("InstallationFailed")
        assert await reporter.flush(5)
        assert rpc.sent == ["Downloaded", "Installing", "InstallationFailed"]
        assert delivered == rpc.sent
        rpc.fail_next = CallTimeout("no answer")  # retried while it is news
        reporter.report("Downloading")
        assert await reporter.flush(5)
        assert rpc.sent[-1] == "Downloading"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
