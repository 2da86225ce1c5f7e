"""Readers that print one token per line, and the reopen backoff shared by all readers."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hal.emulators.serial_link import SerialLink
from hal.errors import HalConfigError
from hal.interfaces import Fault, FaultChanged, HalEvent, TokenPresented
from hal.serial.line_reader import LineParser, LineReader, parse_token_line, parse_uid_line
from hal.serial.port import SerialPort, SerialPortError
from tests.unit.aio import drain, next_event, running_lenient

# ---------------------------------------------------------------- helpers


@pytest.fixture
def link(tmp_path: Path) -> Iterator[SerialLink]:
    with SerialLink(tmp_path, "lines") as link:
        yield link


@pytest.fixture
def events() -> asyncio.Queue[HalEvent]:
    return asyncio.Queue()


def reader(events: asyncio.Queue[HalEvent], port: str, **options: Any) -> LineReader:
    settings: dict[str, Any] = {
        "reopen_min_s": 0.05,
        "reopen_max_s": 0.2,
        "present_timeout_s": 0.3,
    }
    settings.update(options)
    return LineReader(events, port=port, **settings)


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("line", "uid"),
    [
        ("04:a1:b2:c3", "04A1B2C3"),
        ("04 A1 B2 C3", "04A1B2C3"),
        ("04-a1-b2-c3-d4-e5-f6", "04A1B2C3D4E5F6"),
        ("  deadbeef\t", "DEADBEEF"),
        ("0005025961", "0005025961"),
        ("", None),
        (" : ", None),
        ("UID: 04A1B2C3", None),
        ("hello", None),
        ("0x04A1", None),
        ("0" * 21, None),
    ],
)
def test_parse_uid_line(line: str, uid: str | None) -> None:
    assert parse_uid_line(line) == uid


@pytest.mark.parametrize(
    ("line", "token"),
    [
        ("RFID_VALID1", "RFID_VALID1"),
        ("user-42", "user-42"),
        ("abc", "abc"),
        ("04:a1:b2:c3", "04:a1:b2:c3"),  # as the reader gives it: no hex rules
        ("  TAG0001\t", "TAG0001"),  # blanks around the token are padding
        ("two words", "two words"),
        ("x" * 20, "x" * 20),
        ("", None),
        ("   ", None),
        ("x" * 21, None),
        ("carte-\ufffd", None),  # a byte that is not ASCII
        ("bell\x07", None),
    ],
)
def test_parse_token_line(line: str, token: str | None) -> None:
    assert parse_token_line(line) == token


def test_parse_token_line_honours_max_chars() -> None:
    assert parse_token_line("ABCDEFGH", max_chars=8) == "ABCDEFGH"
    assert parse_token_line("ABCDEFGHI", max_chars=8) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_chars": 21}, "max_chars: must be an integer 1..20"),
        ({"max_chars": 0}, "max_chars: must be an integer 1..20"),
        ({"max_chars": True}, "max_chars: must be an integer 1..20"),
        ({"hex_only": "yes"}, "hex_only: must be true or false"),
    ],
)
def test_bad_options_are_refused(
    events: asyncio.Queue[HalEvent], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(HalConfigError, match=message):
        reader(events, "/dev/null", **options)


def test_line_parser_splits_on_any_line_end() -> None:
    parser = LineParser()
    assert parser.feed(b"04A1\r\nB2") == ["04A1"]
    assert parser.feed(b"C3\rD4\n\n") == ["B2C3", "D4"]
    assert parser.feed(b"x" * 300) == []
    assert parser.feed(b"still too long\r\nAABB\n") == ["AABB"]


# ---------------------------------------------------------------- driver


async def test_tokens_pass_through_unchanged(
    link: SerialLink, events: asyncio.Queue[HalEvent], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hal.serial.line_reader")
    drv = reader(events, str(link.path), connector_id=2)
    async with running_lenient(link.run(), drv.run()):
        await asyncio.sleep(0.1)
        link.write(b"RFID_valid1\r\n\xff\xfe\r\n" + b"y" * 21 + b"\n")
        assert await next_event(events) == TokenPresented("RFID_valid1", 2)
        link.write(b"  user-42 \n")
        assert await next_event(events) == TokenPresented("user-42", 2)
        link.write(b"RFID_valid1\n")  # the same token again at once: still held
        link.write(b"04:a1:b2:c3\n")
        assert await next_event(events) == TokenPresented("04:a1:b2:c3", 2)
        # Four tokens read (the repeat included, the junk lines not), three reported.
        assert drv.reads == 4 and drain(events) == []
    # A discarded line may be a mangled card number: logged masked.
    assert f"not a token, discarded: '{'*' * 16}yyyy'" in caplog.text
    assert "y" * 21 not in caplog.text


async def test_hex_only_reader_normalises_uids_and_drops_the_rest(
    link: SerialLink, events: asyncio.Queue[HalEvent]
) -> None:
    drv = reader(events, str(link.path), connector_id=1, hex_only=True)
    async with running_lenient(link.run(), drv.run()):
        await asyncio.sleep(0.1)
        link.write(b"04:a1:b2:c3\r\njunk line\r\n\xff\xfe\r\n")
        assert await next_event(events) == TokenPresented("04A1B2C3", 1)
        link.write(b"04 A1 B2 C3\r\n")  # the same card again at once: still held
        link.write(b"dead")
        await asyncio.sleep(0.05)
        link.write(b"beef\n")
        assert await next_event(events) == TokenPresented("DEADBEEF", 1)
        assert drv.reads == 3 and drain(events) == []  # the held card was read, not reported
        await asyncio.sleep(0.3)  # present_timeout_s: away that long, a card counts again
        link.write(b"04A1B2C3\n")  # presented again later
        assert await next_event(events) == TokenPresented("04A1B2C3", 1)


async def test_unplugged_reader_goes_offline_and_comes_back(
    link: SerialLink, events: asyncio.Queue[HalEvent]
) -> None:
    drv = reader(events, str(link.path))
    async with running_lenient(link.run(), drv.run()):
        await asyncio.sleep(0.1)
        assert drv.online
        link.unplug()
        assert await next_event(events) == FaultChanged(0, Fault.READER_OFFLINE, True)
        link.replug()
        assert await next_event(events) == FaultChanged(0, Fault.READER_OFFLINE, False)
        link.write(b"AABBCCDD\n")
        assert await next_event(events) == TokenPresented("AABBCCDD", None)


async def test_reopen_backs_off_exponentially(
    tmp_path: Path, events: asyncio.Queue[HalEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[float] = []
    real_open = SerialPort.open

    async def counting_open(path: str, baudrate: int) -> SerialPort:
        attempts.append(asyncio.get_running_loop().time())
        return await real_open(path, baudrate)

    monkeypatch.setattr(SerialPort, "open", counting_open)
    drv = reader(events, str(tmp_path / "missing"), reopen_min_s=0.04, reopen_max_s=0.16)
    async with running_lenient(drv.run()):
        assert await next_event(events) == FaultChanged(0, Fault.READER_OFFLINE, True)
        await asyncio.sleep(1.2)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # Each wait is at least the doubled one (a loaded machine only makes it longer),
    # and the cap holds: uncapped, five waits would take 0.04 + 0.08 + … + 0.64 s.
    assert len(gaps) >= 5
    for gap, expected in zip(gaps, [0.04, 0.08, 0.16, 0.16, 0.16], strict=False):
        assert gap >= expected * 0.9
    assert events.empty()


async def test_serial_port_reports_a_vanished_device(link: SerialLink) -> None:
    port = await SerialPort.open(str(link.path), 9600)
    try:
        link.write(b"abc")
        assert await asyncio.wait_for(port.read(), 1.0) == b"abc"
        await port.write(b"xyz")
        assert await asyncio.wait_for(link.read(), 1.0) == b"xyz"
        link.unplug()
        with pytest.raises(SerialPortError):
            await asyncio.wait_for(port.read(), 1.0)
        with pytest.raises(SerialPortError):
            await port.write(b"more")
    finally:
        port.close()
    with pytest.raises(SerialPortError):
        await SerialPort.open(str(link.path), 9600)


async def test_serial_port_read_survives_cancellation(link: SerialLink) -> None:
    async with await SerialPort.open(str(link.path), 9600) as port:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(port.read(), 0.05)
        link.write(b"late")
        assert await asyncio.wait_for(port.read(), 1.0) == b"late"
    assert not port.is_open
