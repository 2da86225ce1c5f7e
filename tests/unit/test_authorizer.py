"""The authorizer's precedence: local list → cache → the CSMS → offline policy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware.auth.authorizer import Authorizer
from firmware.auth.cache import AuthCache, IdTagInfo
from firmware.auth.local_list import ListEntry, LocalAuthList
from firmware.clock import Clock
from firmware.metering import supported_measurands
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v16.authorize import ask_csms
from firmware.ocpp.v16.configuration import ConfigurationStore, StationFacts
from firmware.ocpp.v16.settings import ConfigurationSettings
from firmware.storage.db import Database
from tests.unit.memory_socket import MemorySocket

FACTS = StationFacts(
    number_of_connectors=1, supported_measurands=supported_measurands(has_bms=False)
)
PAST = datetime(2020, 1, 1, tzinfo=UTC)
TAG = "04A1B2C3"


class Csms:
    """Answers every authorization with ``status`` and records each question."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.calls: list[str] = []

    async def __call__(self, id_tag: str, timeout: float) -> IdTagInfo | None:
        self.calls.append("Authorize")
        return IdTagInfo(self.status)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


def build(
    db: Database,
    *,
    listed: IdTagInfo | None,
    cached: IdTagInfo | None,
    online: bool,
    csms: str = "Accepted",
    config: dict[str, str] | None = None,
) -> tuple[Authorizer, Csms]:
    store = ConfigurationStore(db, config or {}, FACTS)
    if listed is not None:  # sent while the list was enabled
        filler = LocalAuthList(
            db, enabled=lambda: True, max_length=lambda: 100, send_max_length=lambda: 100
        )
        assert filler.update(1, full=True, entries=[ListEntry(TAG, listed)]) == "Accepted"
    local_list = LocalAuthList(
        db,
        enabled=lambda: store.get_bool("LocalAuthListEnabled"),
        max_length=lambda: 100,
        send_max_length=lambda: 100,
    )
    cache = AuthCache(db, Clock())
    if cached is not None:
        cache.put(TAG, cached)
    rpc = Csms(csms)
    authorizer = Authorizer(
        cache,
        ConfigurationSettings(store),
        rpc,
        Clock(),
        online=lambda: online,
        local_list=local_list,
    )
    return authorizer, rpc


ACC, BLK = IdTagInfo("Accepted"), IdTagInfo("Blocked")
PRE = {"LocalPreAuthorize": "true"}
NO_OFFLINE = {"LocalAuthorizeOffline": "false"}
LIST_OFF = {"LocalAuthListEnabled": "false", **PRE}

# listed, cached, online, csms answer, config → status, source, Authorize.req sent
PRECEDENCE: list[
    tuple[str, IdTagInfo | None, IdTagInfo | None, bool, str, dict[str, str], str, str, bool]
] = [
    ("list wins over cache", ACC, BLK, True, "Blocked", PRE, "Accepted", "local_list", False),
    (
        "blocked list entry is final online",
        BLK,
        ACC,
        True,
        "Accepted",
        PRE,
        "Blocked",
        "local_list",
        False,
    ),
    (
        "expired list entry",
        IdTagInfo("Accepted", PAST),
        None,
        True,
        "Accepted",
        PRE,
        "Expired",
        "local_list",
        False,
    ),
    (
        "without pre-authorize the CSMS decides",
        ACC,
        None,
        True,
        "Blocked",
        {},
        "Blocked",
        "csms",
        True,
    ),
    ("cache when not listed", None, ACC, True, "Blocked", PRE, "Accepted", "cache", False),
    (
        "blocked cache entry is asked again",
        None,
        BLK,
        True,
        "Accepted",
        PRE,
        "Accepted",
        "csms",
        True,
    ),
    ("unknown tag online", None, None, True, "Invalid", PRE, "Invalid", "csms", True),
    ("disabled list is ignored", BLK, ACC, True, "Invalid", LIST_OFF, "Accepted", "cache", False),
    ("offline list entry", ACC, BLK, False, "-", {}, "Accepted", "offline", False),
    (
        "offline blocked list entry",
        BLK,
        ACC,
        False,
        "-",
        {"AllowOfflineTxForUnknownId": "true"},
        "Blocked",
        "offline",
        False,
    ),
    (
        "offline expired list entry",
        IdTagInfo("Accepted", PAST),
        None,
        False,
        "-",
        {},
        "Expired",
        "offline",
        False,
    ),
    (
        "offline without LocalAuthorizeOffline",
        ACC,
        None,
        False,
        "-",
        NO_OFFLINE,
        "Invalid",
        "offline",
        False,
    ),
    ("offline unknown tag", None, None, False, "-", {}, "Invalid", "offline", False),
    (
        "offline unknown tag allowed",
        None,
        None,
        False,
        "-",
        {"AllowOfflineTxForUnknownId": "true"},
        "Accepted",
        "offline",
        False,
    ),
]


@pytest.mark.parametrize(
    ("listed", "cached", "online", "csms", "config", "status", "source", "asked"),
    [row[1:] for row in PRECEDENCE],
    ids=[row[0] for row in PRECEDENCE],
)
async def test_precedence(
    db: Database,
    listed: IdTagInfo | None,
    cached: IdTagInfo | None,
    online: bool,
    csms: str,
    config: dict[str, str],
    status: str,
    source: str,
    asked: bool,
) -> None:
    authorizer, rpc = build(
        db, listed=listed, cached=cached, online=online, csms=csms, config=config
    )
    decision = await authorizer.authorize(TAG)
    assert (decision.info.status, decision.source) == (status, source)
    assert rpc.calls == (["Authorize"] if asked else [])


async def test_csms_answers_never_touch_a_listed_tag(db: Database) -> None:
    authorizer, _ = build(db, listed=ACC, cached=None, online=True, csms="Blocked")
    await authorizer.authorize(TAG)  # Authorize.conf says Blocked
    authorizer.remember(TAG, BLK)  # e.g. StartTransaction.conf
    assert authorizer.cache.get(TAG) is None
    assert authorizer.local_list is not None
    assert authorizer.local_list.get(TAG) == ACC
    authorizer.remember("OTHER", BLK)
    assert authorizer.cache.get("OTHER") == BLK


async def test_listed_tag_is_cached_while_the_list_is_disabled(db: Database) -> None:
    authorizer, _ = build(
        db, listed=ACC, cached=None, online=True, config={"LocalAuthListEnabled": "false"}
    )
    authorizer.remember(TAG, BLK)
    assert authorizer.cache.get(TAG) == BLK


def test_known_locally_keeps_the_parent(db: Database) -> None:
    authorizer, _ = build(
        db, listed=IdTagInfo("Accepted", None, "FLEET"), cached=None, online=False
    )
    found = authorizer.known_locally(TAG)
    assert found is not None and found[0].parent_id_tag == "FLEET" and found[1] == "local_list"


def test_cache_matches_id_tags_case_insensitively(db: Database) -> None:
    cache = AuthCache(db, Clock())
    cache.put("User-42", ACC)
    assert cache.get("user-42") == cache.get("USER-42") == cache.get("User-42") == ACC
    cache.put("USER-42", IdTagInfo("Blocked", None, "Fleet"))  # the same tag: one entry
    assert len(cache) == 1 and cache.get("user-42") == IdTagInfo("Blocked", None, "Fleet")


async def test_a_differently_cased_tap_finds_the_list_and_cache_entries(db: Database) -> None:
    authorizer, rpc = build(
        db, listed=IdTagInfo("Accepted", None, "FLEET"), cached=None, online=True, config=PRE
    )
    found = authorizer.known_locally(TAG.lower())
    assert found is not None and found[1] == "local_list"
    authorizer.remember("Rfid_Mixed1", IdTagInfo("Accepted", None, "FLEET"))
    cached = authorizer.known_locally("RFID_MIXED1")
    assert cached is not None and cached[0].parent_id_tag == "FLEET" and cached[1] == "cache"
    assert (await authorizer.authorize("rfid_mixed1")).source == "cache"
    assert rpc.calls == []


async def test_a_tap_behind_a_hung_call_is_decided_offline_within_its_timeout(
    db: Database,
) -> None:
    async with asyncio.TaskGroup() as tg:
        rpc = Rpc(response_timeout_s=30, max_frame_bytes=65536, spawn=tg.create_task)
        sock = MemorySocket()
        tg.create_task(rpc.serve(sock))
        await rpc.connected_event.wait()
        store = ConfigurationStore(db, {"AllowOfflineTxForUnknownId": "true"}, FACTS)
        authorizer = Authorizer(
            AuthCache(db, Clock()),
            ConfigurationSettings(store),
            ask_csms(rpc),
            Clock(),
            online=lambda: True,
            authorize_timeout_s=0.1,
        )
        hung = tg.create_task(rpc.call("Heartbeat", {}))  # the CSMS will take its time
        await sock.wait_sent(1)
        decision = await authorizer.authorize(TAG)
        assert (decision.info.status, decision.source) == ("Accepted", "offline")
        assert len(sock.sent) == 1  # no Authorize went out behind the hung call
        hung.cancel()
        await sock.close()
