"""Reservation profile rules (firmware/reservations/rules.py) as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firmware.reservations.rules import (
    Reservation,
    Slot,
    StationView,
    admits,
    answer,
    claimed_by,
    ended_by_state,
    group_may_admit,
    reserved_connectors,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=30)
# B: busy (occupied)
F, B, X, U = Slot.FREE, Slot.OCCUPIED, Slot.FAULTED, Slot.UNAVAILABLE


def view(*slots: Slot, faulted: bool = False, operative: bool = True) -> StationView:
    return StationView(dict(enumerate(slots, start=1)), faulted=faulted, operative=operative)


def res(rid: int, connector: int, tag: str = "AA01", parent: str | None = None) -> Reservation:
    return Reservation(rid, connector, tag, LATER, parent)


# (name, request, station, existing reservations, zero supported, expected status)
ANSWERS: list[tuple[str, Reservation, StationView, list[Reservation], bool, str]] = [
    ("free connector", res(1, 1), view(F), [], True, "Accepted"),
    ("second connector", res(1, 2), view(B, F), [], True, "Accepted"),
    ("connector in use", res(1, 1), view(B), [], True, "Occupied"),
    ("connector faulted", res(1, 1), view(X), [], True, "Faulted"),
    ("connector unavailable", res(1, 1), view(U), [], True, "Unavailable"),
    ("unknown connector", res(1, 3), view(F, F), [], True, "Rejected"),
    ("negative connector", res(1, -1), view(F), [], True, "Rejected"),
    ("already expired", Reservation(1, 1, "AA01", NOW), view(F), [], True, "Rejected"),
    ("reserved by another id", res(2, 1), view(F), [res(1, 1, "BB02")], True, "Occupied"),
    ("reserved for the same tag", res(2, 1), view(F), [res(1, 1)], True, "Occupied"),
    ("same id replaces", res(1, 1, "CC03"), view(F), [res(1, 1)], True, "Accepted"),
    ("same id moves", res(1, 2), view(F, F), [res(1, 1)], True, "Accepted"),
    ("station faulted", res(1, 1), view(F, faulted=True), [], True, "Faulted"),
    ("station unavailable", res(1, 1), view(U, operative=False), [], True, "Unavailable"),
    ("zero: free connector", res(1, 0), view(B, F), [], True, "Accepted"),
    ("zero: not supported", res(1, 0), view(F), [], False, "Rejected"),
    ("zero: all occupied", res(1, 0), view(B, B), [], True, "Occupied"),
    ("zero: all faulted", res(1, 0), view(X, X), [], True, "Faulted"),
    ("zero: all unavailable", res(1, 0), view(U, U), [], True, "Unavailable"),
    ("zero: faulted and occupied", res(1, 0), view(X, B), [], True, "Occupied"),
    ("zero: last free one pinned", res(2, 0), view(B, F), [res(1, 2, "BB02")], True, "Occupied"),
    ("zero: last free one kept", res(2, 0), view(B, F), [res(1, 0, "BB02")], True, "Occupied"),
    ("zero: two free, one kept", res(2, 0), view(F, F), [res(1, 0, "BB02")], True, "Accepted"),
    ("pin the one kept for zero", res(2, 1), view(F), [res(1, 0, "BB02")], True, "Occupied"),
    ("pin one of two, one kept", res(2, 1), view(F, F), [res(1, 0, "BB02")], True, "Accepted"),
]


@pytest.mark.parametrize(
    ("name", "request_", "station", "existing", "zero", "expected"),
    ANSWERS,
    ids=[a[0] for a in ANSWERS],
)
def test_reserve_now_answer(
    name: str,
    request_: Reservation,
    station: StationView,
    existing: list[Reservation],
    zero: bool,
    expected: str,
) -> None:
    assert answer(request_, station, existing, zero_supported=zero, now=NOW) == expected


# (name, connector, tag, parent, station, reservations, may start)
ADMITS: list[tuple[str, int, str, str | None, StationView, list[Reservation], bool]] = [
    ("no reservation", 1, "BB02", None, view(F), [], True),
    ("reserved tag", 1, "AA01", None, view(F), [res(1, 1)], True),
    ("other tag", 1, "BB02", None, view(F), [res(1, 1)], False),
    ("other tag, EV plugged", 1, "BB02", None, view(B), [res(1, 1)], False),
    ("other tag, other connector", 2, "BB02", None, view(F, F), [res(1, 1)], True),
    ("same group", 1, "BB02", "GRP", view(F), [res(1, 1, parent="GRP")], True),
    ("other group", 1, "BB02", "GRP2", view(F), [res(1, 1, parent="GRP")], False),
    ("no group on the reservation", 1, "BB02", "GRP", view(F), [res(1, 1)], False),
    ("zero: reserved tag on last", 1, "AA01", None, view(F), [res(1, 0)], True),
    ("zero: group on last", 1, "BB02", "G", view(F), [res(1, 0, parent="G")], True),
    ("zero: other tag on last", 1, "BB02", None, view(F), [res(1, 0)], False),
    ("zero: other tag, one stays", 1, "BB02", None, view(F, F), [res(1, 0)], True),
    ("zero: other tag, plugged", 1, "BB02", None, view(B, F), [res(1, 0)], True),
    ("zero: two kept", 1, "BB02", None, view(F, F), [res(1, 0), res(2, 0, "CC03")], False),
]


@pytest.mark.parametrize(
    ("name", "connector", "tag", "parent", "station", "reservations", "expected"),
    ADMITS,
    ids=[a[0] for a in ADMITS],
)
def test_who_may_start(
    name: str,
    connector: int,
    tag: str,
    parent: str | None,
    station: StationView,
    reservations: list[Reservation],
    expected: bool,
) -> None:
    assert admits(connector, tag, parent, station, reservations) is expected


# (name, station, reservations, connectors shown Reserved)
SHOWN: list[tuple[str, StationView, list[Reservation], set[int]]] = [
    ("none", view(F, F), [], set()),
    ("pinned", view(F, F), [res(1, 2)], {2}),
    ("zero, two open", view(F, F), [res(1, 0)], set()),
    ("zero, one open", view(B, F), [res(1, 0)], {2}),
    ("zero, one open after a pin", view(F, F), [res(1, 0), res(2, 1, "BB02")], {1, 2}),
    ("zero, nothing open", view(B, X), [res(1, 0)], set()),
    ("two zero, two open", view(F, F), [res(1, 0), res(2, 0, "BB02")], {1, 2}),
]


@pytest.mark.parametrize(
    ("name", "station", "reservations", "expected"), SHOWN, ids=[s[0] for s in SHOWN]
)
def test_reserved_status(
    name: str, station: StationView, reservations: list[Reservation], expected: set[int]
) -> None:
    assert reserved_connectors(station, reservations) == expected


# (name, connector, tag whose group is unknown, station, reservations, worth an Authorize)
MAYBE: list[tuple[str, int, str, StationView, list[Reservation], bool]] = [
    ("reserved under a group", 1, "BB02", view(F), [res(1, 1, parent="G")], True),
    ("reserved without a group", 1, "BB02", view(F), [res(1, 1)], False),
    ("another connector's group", 1, "BB02", view(F, F), [res(1, 2, parent="G")], False),
    ("zero: group on the last", 1, "BB02", view(F), [res(1, 0, parent="G")], True),
    ("zero: no group on the last", 1, "BB02", view(F), [res(1, 0)], False),
    ("not reserved", 1, "BB02", view(F), [], False),
    ("the reserved tag itself", 1, "AA01", view(F), [res(1, 1, parent="G")], False),
]


@pytest.mark.parametrize(
    ("name", "connector", "tag", "station", "reservations", "expected"),
    MAYBE,
    ids=[m[0] for m in MAYBE],
)
def test_who_might_start_once_the_group_is_known(
    name: str,
    connector: int,
    tag: str,
    station: StationView,
    reservations: list[Reservation],
    expected: bool,
) -> None:
    assert group_may_admit(connector, tag, station, reservations) is expected


def test_claim_prefers_the_connector_then_zero() -> None:
    pinned, anywhere = res(1, 1), res(2, 0)
    assert claimed_by(1, "AA01", None, [anywhere, pinned]) == pinned
    assert claimed_by(2, "AA01", None, [anywhere, pinned]) == anywhere
    assert claimed_by(2, "AA01", None, [pinned]) is None  # a pinned one stays for its connector
    assert claimed_by(1, "BB02", "G", [res(3, 1, parent="G")]) == res(3, 1, parent="G")
    assert claimed_by(1, "BB02", None, [pinned, anywhere]) is None


def test_tags_and_groups_match_case_insensitively() -> None:
    mixed = Reservation(1, 1, "User-42", LATER, "Fleet-A")
    assert mixed.admits("USER-42", None) and mixed.admits("user-42", None)
    assert mixed.admits("someone-else", "FLEET-a")
    assert not mixed.admits("User-43", None) and not mixed.admits("User-43", "Fleet-B")
    assert claimed_by(1, "user-42", None, [mixed]) == mixed
    assert admits(1, "USER-42", None, view(F), [mixed]) is True
    assert admits(1, "User-43", None, view(F), [mixed]) is False


def test_faulted_or_unavailable_ends_reservations() -> None:
    active = [res(1, 1), res(2, 2), res(3, 3), res(4, 0)]
    assert ended_by_state(view(X, U, B), active) == [res(1, 1), res(2, 2)]
    assert ended_by_state(view(F, F, F, faulted=True), active) == [res(4, 0)]
    assert ended_by_state(view(U, U, U, operative=False), active) == active


def test_expiry() -> None:
    r = res(1, 1)
    assert not r.expired(NOW)
    assert r.expired(LATER)
    assert r.expired(LATER + timedelta(seconds=1))
