"""PN532 over HSU: frame vectors, and the driver against the emulated device on a real pty."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hal.emulators.pn532_device import Pn532Device
from hal.emulators.serial_link import SerialLink
from hal.errors import HalConfigError
from hal.interfaces import Fault, FaultChanged, HalEvent, TokenPresented
from hal.serial.pn532 import (
    ACK,
    ACK_FRAME,
    CMD_GET_FIRMWARE_VERSION,
    CMD_IN_LIST_PASSIVE_TARGET,
    CMD_RF_CONFIGURATION,
    CMD_SAM_CONFIGURATION,
    ERROR,
    ERROR_FRAME,
    NACK,
    NACK_FRAME,
    TFI_PN532,
    BadFrame,
    Frame,
    Pn532Error,
    Pn532FrameParser,
    Pn532Reader,
    build_frame,
    parse_frame,
    parse_passive_targets,
)
from tests.unit.aio import advanced, drain, next_event, running_lenient, until

UID = "04A1B2C3"

# ---------------------------------------------------------------- helpers


@pytest.fixture
def link(tmp_path: Path) -> Iterator[SerialLink]:
    with SerialLink(tmp_path, "pn532") as link:
        yield link


@pytest.fixture
def events() -> asyncio.Queue[HalEvent]:
    return asyncio.Queue()


PRESENT_TIMEOUT_S = 0.3


def reader(events: asyncio.Queue[HalEvent], link: SerialLink, **options: Any) -> Pn532Reader:
    settings: dict[str, Any] = {
        "poll_s": 0.05,
        # Room for a loaded machine: a missed ACK here would fail a test about something else.
        "ack_timeout_s": 0.25,
        "response_timeout_s": 0.5,
        "retries": 2,
        "reopen_min_s": 0.05,
        "reopen_max_s": 0.2,
        "present_timeout_s": PRESENT_TIMEOUT_S,
    }
    settings.update(options)
    return Pn532Reader(events, port=str(link.path), **settings)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------- frames


def test_command_frames_match_the_manual() -> None:
    assert build_frame(bytes.fromhex("14 01 14 01")) == bytes.fromhex(
        "00 00 ff 05 fb d4 14 01 14 01 02 00"
    )
    assert build_frame(b"\x02") == bytes.fromhex("00 00 ff 02 fe d4 02 2a 00")
    assert build_frame(bytes.fromhex("4a 01 00")) == bytes.fromhex(
        "00 00 ff 04 fc d4 4a 01 00 e1 00"
    )


def test_special_frames_parse() -> None:
    assert bytes.fromhex("00 00 ff 00 ff 00") == ACK_FRAME
    assert bytes.fromhex("00 00 ff ff 00 00") == NACK_FRAME
    assert bytes.fromhex("00 00 ff 01 ff 7f 81 00") == ERROR_FRAME
    assert parse_frame(ACK_FRAME) == ACK
    assert parse_frame(NACK_FRAME) == NACK
    assert parse_frame(ERROR_FRAME) == ERROR


def test_response_frame_round_trip() -> None:
    frame = build_frame(bytes.fromhex("03 32 01 06 07"), tfi=TFI_PN532)
    assert frame == bytes.fromhex("00 00 ff 06 fa d5 03 32 01 06 07 e8 00")
    assert parse_frame(frame) == Frame(TFI_PN532, bytes.fromhex("03 32 01 06 07"))
    long_data = bytes(range(256)) * 2
    extended = build_frame(long_data)
    assert extended[:5] == bytes.fromhex("00 00 ff ff ff")
    assert parse_frame(extended) == Frame(0xD4, long_data)


def test_bad_checksums_are_rejected() -> None:
    good = build_frame(b"\x02")
    bad_lcs = good[:4] + b"\x00" + good[5:]
    bad_dcs = good[:-2] + b"\x00\x00"
    for frame in (bad_lcs, bad_dcs, good[:-3]):
        with pytest.raises(ValueError):
            parse_frame(frame)
    assert Pn532FrameParser().feed(bad_dcs) == [BadFrame("DCS mismatch in 2-byte frame")]


def test_parser_resyncs_after_garbage_and_split_input() -> None:
    response = build_frame(b"\x4b\x00", tfi=TFI_PN532)
    stream = (
        b"\x55\x13\x00\xff\x30"  # start code with a bad LCS
        + b"\x00\xff\x03\xfd\xd5\xaa"  # sound header, truncated body
        + ACK_FRAME
        + b"\xff\x00\x00\xff"  # noise that looks like half a frame
        + response
        + ERROR_FRAME
    )
    items: list[object] = []
    parser = Pn532FrameParser()
    for i in range(len(stream)):
        items += parser.feed(stream[i : i + 1])
    assert [i for i in items if not isinstance(i, BadFrame)] == [
        ACK,
        Frame(TFI_PN532, b"\x4b\x00"),
        ERROR,
    ]
    assert Pn532FrameParser().feed(stream) == items


def test_in_list_passive_target_responses() -> None:
    assert parse_passive_targets(b"\x00") == []
    one = bytes.fromhex("01 01 00 04 08 04 a1 b2 c3 d4")
    assert parse_passive_targets(one) == [bytes.fromhex("a1 b2 c3 d4")]
    seven = bytes.fromhex("01 01 00 44 00 07 04 11 22 33 44 55 66")
    assert parse_passive_targets(seven) == [bytes.fromhex("04 11 22 33 44 55 66")]
    # an ISO 14443-4 card carries its ATS after the NFCID
    iso_dep = bytes.fromhex(
        "02 01 03 44 20 04 01 02 03 04 05 78 80 70 02 02 00 04 08 04 aa bb cc dd"
    )
    assert parse_passive_targets(iso_dep) == [bytes.fromhex("01020304"), bytes.fromhex("aabbccdd")]
    for bad in (b"", bytes.fromhex("01 01 00 04"), bytes.fromhex("01 01 00 04 08 07 01 02")):
        with pytest.raises(Pn532Error):
            parse_passive_targets(bad)


def test_options_are_checked(events: asyncio.Queue[HalEvent]) -> None:
    with pytest.raises(HalConfigError):
        Pn532Reader(events, port="/dev/null", poll_s=0)
    with pytest.raises(HalConfigError):
        Pn532Reader(events, port="/dev/null", retries=-1)
    with pytest.raises(HalConfigError):
        Pn532Reader(events, port="", baudrate=115200)
    with pytest.raises(HalConfigError):
        Pn532Reader(events, port="/dev/null", reopen_min_s=2.0, reopen_max_s=1.0)


# ---------------------------------------------------------------- driver


async def test_handshake_then_a_held_card_counts_once(
    link: SerialLink, events: asyncio.Queue[HalEvent]
) -> None:
    device = Pn532Device(link)
    drv = reader(events, link, connector_id=2)
    async with running_lenient(device.run(), drv.run()):
        await until(lambda: drv.online)
        assert device.awake and device.sam_configured
        assert device.commands[:3] == [
            CMD_SAM_CONFIGURATION,
            CMD_GET_FIRMWARE_VERSION,
            CMD_RF_CONFIGURATION,
        ]
        assert drv.firmware == (0x32, 0x01, 0x06, 0x07)
        await advanced(lambda: device.commands.count(CMD_IN_LIST_PASSIVE_TARGET), 2)
        assert drain(events) == []  # polled twice, no card

        device.present(UID)
        assert await next_event(events) == TokenPresented(UID, 2)
        await advanced(lambda: drv.reads, 8)  # still held: read at every poll...
        assert drain(events) == []  # ...and reported once

        device.remove()
        await advanced(lambda: device.commands.count(CMD_IN_LIST_PASSIVE_TARGET), 4)
        assert drain(events) == []
        await asyncio.sleep(PRESENT_TIMEOUT_S)  # away that long, a card counts again
        device.present(UID)
        assert await next_event(events) == TokenPresented(UID, 2)
        device.present("04112233445566")
        assert await next_event(events) == TokenPresented("04112233445566", 2)


async def test_nack_error_frame_bad_checksum_and_garbage_are_recovered(
    link: SerialLink, events: asyncio.Queue[HalEvent]
) -> None:
    device = Pn532Device(link)
    drv = reader(events, link)
    async with running_lenient(device.run(), drv.run()):
        await until(lambda: drv.online)
        polls = device.commands.count(CMD_IN_LIST_PASSIVE_TARGET)
        device.nack_next()
        device.error_next()
        device.corrupt_next()
        device.garbage(b"\x55\x00\xff\x30\x00\xff\x03\xfd\xd5\x13\x00")
        device.present(UID)
        assert await next_event(events) == TokenPresented(UID, None)
        assert device.commands.count(CMD_IN_LIST_PASSIVE_TARGET) >= polls + 3
        assert drv.online
        await advanced(lambda: drv.reads, 2)  # the card read again past the bad frames
        assert drain(events) == []


async def test_errors_during_the_handshake_are_retried(
    link: SerialLink, events: asyncio.Queue[HalEvent]
) -> None:
    device = Pn532Device(link)
    device.nack_next()
    device.error_next()
    device.present(UID)
    drv = reader(events, link)
    async with running_lenient(device.run(), drv.run()):
        assert await next_event(events) == TokenPresented(UID, None)
        assert device.commands[:3] == [CMD_SAM_CONFIGURATION] * 3


async def test_a_device_that_never_answers_is_offline_once(
    link: SerialLink, events: asyncio.Queue[HalEvent]
) -> None:
    drv = reader(events, link, retries=1)
    async with running_lenient(drv.run()):
        assert await next_event(events) == FaultChanged(0, Fault.READER_OFFLINE, True)
        await advanced(lambda: drv.open_attempts, 3)
        assert drain(events) == []  # further failed reopens say nothing
        assert not drv.online
        # the reader is switched on at last
        device = Pn532Device(link)
        async with running_lenient(device.run()):
            assert await next_event(events) == FaultChanged(0, Fault.READER_OFFLINE, False)
            device.present(UID)
            assert await next_event(events) == TokenPresented(UID, None)


async def test_unplug_reports_offline_and_replug_recovers(
    link: SerialLink, events: asyncio.Queue[HalEvent]
) -> None:
    device = Pn532Device(link)
    drv = reader(events, link, connector_id=1)
    async with running_lenient(device.run(), drv.run()):
        device.present(UID)
        assert await next_event(events) == TokenPresented(UID, 1)
        device.remove()

        link.unplug()
        assert await next_event(events) == FaultChanged(1, Fault.READER_OFFLINE, True)
        await asyncio.sleep(0.3)  # a few reopens fail: the port is gone
        assert events.empty()
        assert not link.plugged and not link.path.exists()

        link.replug()
        assert await next_event(events) == FaultChanged(1, Fault.READER_OFFLINE, False)
        # the device was power-cycled, and woken and configured again
        assert device.awake and device.commands.count(CMD_SAM_CONFIGURATION) == 2
        device.present("DEADBEEF")
        assert await next_event(events) == TokenPresented("DEADBEEF", 1)


async def test_cancel_closes_the_port(link: SerialLink, events: asyncio.Queue[HalEvent]) -> None:
    device = Pn532Device(link)
    before = open_fds()
    drv = reader(events, link)
    task = asyncio.create_task(drv.run())
    async with running_lenient(device.run()):
        await until(lambda: drv.online)
        assert open_fds() > before
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert open_fds() == before
