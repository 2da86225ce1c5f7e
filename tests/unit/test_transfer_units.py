"""The pure parts of firmware.transfer: URLs, progress throttling, retries, deadlines."""

from __future__ import annotations

import asyncio

import pytest

from firmware.transfer import InvalidUrl, TransferFailed, TransferTimeout, redact_url
from firmware.transfer.deadline import Deadline
from firmware.transfer.progress import Progress
from firmware.transfer.retry import attempts
from firmware.transfer.urls import parse


def test_parse_decodes_credentials_and_hides_them() -> None:
    location = parse("ftp://us%40er:p%3Ass@Host:2121/dir/fw%20v2.bin")
    assert (location.user, location.password) == ("us@er", "p:ss")
    assert (location.host, location.port, location.ftp_path) == ("host", 2121, "dir/fw v2.bin")
    assert "p:ss" not in repr(location) and "p%3Ass" not in location.safe
    assert location.safe == "ftp://us%40er:***@host:2121/dir/fw%20v2.bin"


@pytest.mark.parametrize(
    ("url", "port", "implicit"),
    [("ftps://h/f", 21, False), ("ftps://h:990/f", 990, True), ("ftp://h:990/f", 990, False)],
)
def test_ftps_is_explicit_unless_on_port_990(url: str, port: int, implicit: bool) -> None:
    location = parse(url)
    assert (location.port, location.implicit_tls) == (port, implicit)


def test_an_ftp_url_needs_a_file() -> None:
    with pytest.raises(InvalidUrl):
        parse("ftp://host/")


def test_redact_url_never_raises() -> None:
    assert redact_url("http://u:pw@h/x") == "http://u:***@h/x"
    assert "pw" not in redact_url("http://u:pw@h:99999/x")


def test_progress_is_throttled_by_bytes_and_time() -> None:
    now = [0.0]
    seen: list[tuple[int, int | None]] = []
    progress = Progress(
        lambda d, t: seen.append((d, t)), every_bytes=100, every_s=1.0, clock=lambda: now[0]
    )
    progress.start(0, 1000)
    for _ in range(10):
        progress.add(50)  # 500 bytes, no time passed: only the start
    now[0] = 2.0
    progress.add(50)
    progress.add(50)  # enough bytes, but too soon after the last report
    progress.finish()
    assert seen == [(0, 1000), (550, 1000), (600, 1000)]


async def test_attempts_wait_between_tries_and_raise_the_last_failure() -> None:
    calls: list[int] = []
    slept: list[float] = []

    async def attempt() -> None:
        calls.append(1)
        raise TransferFailed(f"try {len(calls)}")

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(TransferFailed, match="try 3"):
        await attempts(attempt, retries=2, retry_interval_s=7.5, what="x", sleep=sleep)
    assert len(calls) == 3 and slept == [7.5, 7.5]


async def test_attempts_do_not_retry_other_errors() -> None:
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        raise ValueError("bug")

    with pytest.raises(ValueError):
        await attempts(attempt, retries=3, retry_interval_s=0, what="x")
    assert calls == [1]


async def test_deadline_kicks_keep_a_moving_transfer_alive() -> None:
    deadline = Deadline(timeout_s=5, stall_timeout_s=0.1)
    async with deadline.guard():
        for _ in range(5):
            await asyncio.sleep(0.05)
            deadline.kick()
    with pytest.raises(TransferTimeout, match="stalled"):
        async with deadline.guard():
            await asyncio.sleep(1)


async def test_outside_cancellation_is_not_a_timeout() -> None:
    deadline = Deadline(timeout_s=5, stall_timeout_s=5)

    async def guarded() -> None:
        async with deadline.guard():
            await asyncio.sleep(10)

    task = asyncio.create_task(guarded())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
