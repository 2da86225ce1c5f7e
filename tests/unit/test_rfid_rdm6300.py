"""RDM6300: frame vectors, and the driver against the emulated reader on a real pty."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hal.emulators.rdm6300_device import Rdm6300Device
from hal.emulators.serial_link import SerialLink
from hal.interfaces import Fault, FaultChanged, HalEvent, TokenPresented
from hal.serial.rdm6300 import (
    Rdm6300Parser,
    Rdm6300Reader,
    build_rdm6300_frame,
    parse_rdm6300_frame,
    rdm6300_tag_number,
)
from tests.unit.aio import advanced, drain, next_event, running_lenient

EXAMPLE = b"\x0201004CB0A954\x03"
TAG = "01004CB0A9"

# ---------------------------------------------------------------- helpers


@pytest.fixture
def link(tmp_path: Path) -> Iterator[SerialLink]:
    with SerialLink(tmp_path, "rdm6300") as link:
        yield link


@pytest.fixture
def events() -> asyncio.Queue[HalEvent]:
    return asyncio.Queue()


def reader(events: asyncio.Queue[HalEvent], port: str, **options: Any) -> Rdm6300Reader:
    settings: dict[str, Any] = {
        "reopen_min_s": 0.05,
        "reopen_max_s": 0.2,
        "present_timeout_s": 0.3,
    }
    settings.update(options)
    return Rdm6300Reader(events, port=port, **settings)


# ---------------------------------------------------------------- frames


def test_the_example_frame() -> None:
    assert len(EXAMPLE) == 14
    assert parse_rdm6300_frame(EXAMPLE) == TAG
    assert rdm6300_tag_number(TAG) == 5025961
    assert build_rdm6300_frame(TAG) == EXAMPLE
    assert build_rdm6300_frame("01004cb0a9") == EXAMPLE


def test_bad_frames_are_rejected() -> None:
    for bad in (
        b"\x0201004CB0A955\x03",  # checksum
        b"\x0201004CB0A954\x04",  # ETX
        b"\x0101004CB0A954\x03",  # STX
        b"\x0201004CB0AG54\x03",  # not hex
        EXAMPLE[:-1],
    ):
        with pytest.raises(ValueError):
            parse_rdm6300_frame(bad)
    with pytest.raises(ValueError):
        build_rdm6300_frame("01004CB0A")


def test_parser_skips_garbage_and_bad_frames() -> None:
    bad = build_rdm6300_frame(TAG, checksum=0x00)
    other = build_rdm6300_frame("0A12345678")
    stream = b"\xff\x00junk" + EXAMPLE + b"\x02\x02zz\x03" + bad + b"\x0201" + other + EXAMPLE
    parser = Rdm6300Parser()
    assert parser.feed(stream) == [TAG, "0A12345678", TAG]
    assert parser.discarded >= 3
    parser = Rdm6300Parser()
    tags: list[str] = []
    for i in range(0, len(stream), 3):
        tags += parser.feed(stream[i : i + 3])
    assert tags == [TAG, "0A12345678", TAG]


# ---------------------------------------------------------------- driver


async def test_a_held_card_counts_once(link: SerialLink, events: asyncio.Queue[HalEvent]) -> None:
    device = Rdm6300Device(link)
    drv = reader(events, str(link.path), connector_id=1)
    async with running_lenient(device.run(), drv.run()):
        await asyncio.sleep(0.1)
        device.present(TAG)
        assert await next_event(events) == TokenPresented(TAG, 1)
        await advanced(lambda: drv.reads, 4)  # read again and again while held...
        assert drain(events) == []  # ...and reported once

        device.remove()
        await asyncio.sleep(0.3)  # present_timeout_s: away that long, a card counts again
        assert drain(events) == []
        device.present(TAG)
        assert await next_event(events) == TokenPresented(TAG, 1)


async def test_bad_checksum_frames_are_ignored(
    link: SerialLink, events: asyncio.Queue[HalEvent]
) -> None:
    device = Rdm6300Device(link, interval_s=0.05)
    drv = reader(events, str(link.path))
    async with running_lenient(device.run(), drv.run()):
        await asyncio.sleep(0.1)
        for _ in range(4):
            device.bad_checksum_next()
        device.present(TAG)
        assert await next_event(events) == TokenPresented(TAG, None)
        assert device.frames_sent >= 5  # the first good frame was the fifth


async def test_garbage_between_frames(link: SerialLink, events: asyncio.Queue[HalEvent]) -> None:
    device = Rdm6300Device(link, interval_s=0.05)
    drv = reader(events, str(link.path))
    async with running_lenient(device.run(), drv.run()):
        await asyncio.sleep(0.1)
        device.garbage(b"\x02\x02zz\x03\x00\xffnoise\x0201004C")
        await asyncio.sleep(0.1)
        device.present("0A12345678")
        device.garbage(b"\x03\x03\x02")
        assert await next_event(events) == TokenPresented("0A12345678", None)
        await advanced(lambda: drv.reads, 2)  # the card read twice more past the garbage
        assert drain(events) == []


async def test_missing_port_then_plugged_in(
    tmp_path: Path, events: asyncio.Queue[HalEvent]
) -> None:
    drv = reader(events, str(tmp_path / "later"), connector_id=2)
    async with running_lenient(drv.run()):
        assert await next_event(events) == FaultChanged(2, Fault.READER_OFFLINE, True)
        with SerialLink(tmp_path, "later") as link:
            device = Rdm6300Device(link)
            async with running_lenient(device.run()):
                assert await next_event(events) == FaultChanged(2, Fault.READER_OFFLINE, False)
                device.present(TAG)
                assert await next_event(events) == TokenPresented(TAG, 2)

                link.unplug()
                assert await next_event(events) == FaultChanged(2, Fault.READER_OFFLINE, True)
                link.replug()
                assert await next_event(events) == FaultChanged(2, Fault.READER_OFFLINE, False)
