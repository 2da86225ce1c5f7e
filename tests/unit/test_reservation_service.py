"""The reservation service with a stand-in station and an injected clock:
persistence, expiry on the timer, boot-time clean-up, Reserved flags, claims."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from firmware.clock import Clock
from firmware.ocpp.v16.configuration import ConfigurationStore, StationFacts
from firmware.ocpp.v16.settings import ConfigurationSettings
from firmware.reservations.rules import Reservation
from firmware.reservations.service import Reservations
from firmware.reservations.store import ReservationStore
from firmware.storage.db import Database
from hal.interfaces import Fault, PilotState

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ENERGY = "Energy.Active.Import.Register"


class FakeClock(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.at = START

    def now(self) -> datetime:
        return self.at


@dataclass
class FakeConnector:
    id: int
    fatal: bool = False
    effective_operative: bool = True
    tx: object | None = None
    pending: object | None = None
    pilot: PilotState = PilotState.A
    finishing: bool = False
    reserved: bool = False
    claim_reservation: Callable[[int, str, str | None], int | None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # the Reserved flag changed

    def set_reserved(self, reserved: bool) -> None:
        if reserved != self.reserved:
            self.changed.set()
        self.reserved = reserved


class FakeAvailability:
    def station_operative(self) -> bool:
        return True


@dataclass
class FakeStation:
    connectors: dict[int, FakeConnector]
    station_faults: set[Fault] = field(default_factory=set)
    ctx: Any = field(default_factory=lambda: type("Ctx", (), {"availability": FakeAvailability()}))
    admits: Any = None
    listeners: list[Any] = field(default_factory=list)

    def subscribe(self, callback: Any) -> None:
        self.listeners.append(callback)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state.db")
    yield database
    database.close()


def service(
    db: Database, clock: FakeClock, connectors: int = 2
) -> tuple[Reservations, FakeStation]:
    station = FakeStation({cid: FakeConnector(cid) for cid in range(1, connectors + 1)})
    config = ConfigurationStore(db, {}, StationFacts(connectors, frozenset({ENERGY})))
    found = Reservations(
        ReservationStore(db),
        cast(Any, station),
        ConfigurationSettings(config),
        clock,
        max_wait_s=0.01,
    )
    return found, station


def res(rid: int, connector: int, seconds: float, tag: str = "AA01") -> Reservation:
    return Reservation(rid, connector, tag, START + timedelta(seconds=seconds))


def test_store_keeps_reservations_across_reopen(tmp_path: Path) -> None:
    first = Database(tmp_path / "state.db")
    ReservationStore(first).put(Reservation(5, 1, "AA01", START, "GRP"))
    ReservationStore(first).put(Reservation(6, 0, "BB02", START + timedelta(hours=1)))
    ReservationStore(first).put(Reservation(6, 2, "CC03", START + timedelta(hours=2)))
    first.close()
    again = Database(tmp_path / "state.db")
    store = ReservationStore(again)
    assert store.all() == [
        Reservation(5, 1, "AA01", START, "GRP"),
        Reservation(6, 2, "CC03", START + timedelta(hours=2)),
    ]
    assert store.next_expiry() == START
    assert store.remove(5) is not None and store.remove(5) is None
    again.close()


def test_boot_drops_what_expired_while_down(db: Database) -> None:
    clock = FakeClock()
    ReservationStore(db).put(res(1, 1, 10))
    ReservationStore(db).put(res(2, 2, 100))
    clock.at = START + timedelta(seconds=50)
    reservations, _ = service(db, clock)
    assert reservations.drop_expired() == 1
    assert [r.reservation_id for r in ReservationStore(db).all()] == [2]


async def test_timer_expires_each_reservation_at_its_expiry(db: Database) -> None:
    clock = FakeClock()
    reservations, station = service(db, clock)
    assert reservations.reserve(res(1, 1, 10)) == "Accepted"
    assert reservations.reserve(res(2, 2, 20)) == "Accepted"
    assert station.connectors[1].reserved and station.connectors[2].reserved
    timer = asyncio.create_task(reservations.run())
    try:
        clock.at = START + timedelta(seconds=10)
        await _until_unreserved(station.connectors[1])
        assert station.connectors[2].reserved
        clock.at = START + timedelta(seconds=25)
        await _until_unreserved(station.connectors[2])
        assert reservations.store.all() == []
    finally:
        timer.cancel()


async def _until_unreserved(connector: FakeConnector) -> None:
    async with asyncio.timeout(5):
        while connector.reserved:
            await connector.changed.wait()
            connector.changed.clear()


def test_claim_ends_the_reservation_and_gives_its_id(db: Database) -> None:
    clock = FakeClock()
    reservations, station = service(db, clock)
    assert reservations.reserve(res(7, 0, 60)) == "Accepted"
    claim = station.connectors[2].claim_reservation
    assert claim is not None
    assert claim(2, "BB02", None) is None
    assert claim(2, "AA01", None) == 7
    assert claim(1, "AA01", None) is None
    assert reservations.cancel(7) is False


def test_a_fault_ends_the_reservation(db: Database) -> None:
    clock = FakeClock()
    reservations, station = service(db, clock)
    assert reservations.reserve(res(8, 1, 60)) == "Accepted"
    station.connectors[1].fatal = True
    reservations.reconsider()
    assert not station.connectors[1].reserved
    assert reservations.store.all() == []
    assert reservations.reserve(res(9, 1, 60)) == "Faulted"


def test_admits_uses_the_live_view(db: Database) -> None:
    clock = FakeClock()
    reservations, station = service(db, clock)
    assert reservations.reserve(res(10, 0, 60)) == "Accepted"
    assert station.admits(1, "BB02", None) is True  # connector 2 stays open
    station.connectors[2].pilot = PilotState.B
    reservations.reconsider()
    assert station.connectors[1].reserved and not station.connectors[2].reserved
    assert station.admits(1, "BB02", None) is False
    assert station.admits(2, "BB02", None) is True
    assert station.admits(1, "AA01", None) is True
