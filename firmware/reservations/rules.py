"""Reservation profile rules as pure functions (OCPP 1.6 edition 2, 5.13 and 5.2).

Everything here works on a ``StationView`` (what each connector can do right
now) and the active reservations, so the rules can be tested with tables.

Connector 0 reservations: the station does not pin a connector but keeps, for
each of them, one connector free for its idTag. A connector is *open* when it
is free (operative, not faulted, no vehicle, no authorization, no transaction)
and not reserved by a connector-specific reservation. With k connector-0
reservations a tag outside them may take a connector only while k open
connectors stay behind; when no more than k are open, the open ones show
Reserved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hal.tokens import same_id_tag


class Slot(StrEnum):
    """What a connector can offer a new reservation."""

    FREE = "free"
    OCCUPIED = "occupied"  # vehicle plugged, authorization waiting, transaction, finishing
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: int
    connector_id: int  # 0: any connector
    id_tag: str
    expiry: datetime
    parent_id_tag: str | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expiry

    def admits(self, id_tag: str, parent_id_tag: str | None) -> bool:
        """The reserved idTag, or a tag of the reservation's parentIdTag group
        (both compared case-insensitively, as CiString20)."""
        return same_id_tag(id_tag, self.id_tag) or same_id_tag(parent_id_tag, self.parent_id_tag)


@dataclass(frozen=True, slots=True)
class StationView:
    slots: Mapping[int, Slot]  # connectors 1..N
    faulted: bool = False  # the station (connector 0) is Faulted
    operative: bool = True  # the station (connector 0) is not Unavailable


def open_connectors(view: StationView, reservations: Iterable[Reservation]) -> list[int]:
    pinned = {r.connector_id for r in reservations if r.connector_id != 0}
    return [
        cid for cid, slot in sorted(view.slots.items()) if slot is Slot.FREE and cid not in pinned
    ]


def _zero(reservations: Iterable[Reservation]) -> list[Reservation]:
    return [r for r in reservations if r.connector_id == 0]


def answer(
    request: Reservation,
    view: StationView,
    reservations: Iterable[Reservation],
    *,
    zero_supported: bool,
    now: datetime,
) -> str:
    """ReserveNow.conf status for ``request``.

    A reservation with the same id is being replaced: it is left out of the
    reckoning, so a reservation can be moved, extended or given another tag.
    """
    others = [r for r in reservations if r.reservation_id != request.reservation_id]
    cid = request.connector_id
    if request.expired(now):
        return "Rejected"
    if cid == 0 and not zero_supported:
        return "Rejected"
    if cid != 0 and cid not in view.slots:
        return "Rejected"
    if view.faulted:
        return "Faulted"
    if not view.operative:
        return "Unavailable"
    zero_count = len(_zero(others))
    open_now = open_connectors(view, others)
    if cid == 0:
        if len(open_now) > zero_count:
            return "Accepted"
        slots = set(view.slots.values())
        if slots == {Slot.FAULTED}:
            return "Faulted"
        if slots == {Slot.UNAVAILABLE}:
            return "Unavailable"
        return "Occupied"
    slot = view.slots[cid]
    if slot is Slot.FAULTED:
        return "Faulted"
    if slot is Slot.UNAVAILABLE:
        return "Unavailable"
    if slot is Slot.OCCUPIED or cid not in open_now:
        return "Occupied"  # in use, or reserved by another reservation
    if len(open_now) - 1 < zero_count:
        return "Occupied"  # the last open connectors are kept for connector 0 reservations
    return "Accepted"


def reserved_connectors(view: StationView, reservations: Iterable[Reservation]) -> set[int]:
    """Connectors whose status is Reserved (unless something weightier shows)."""
    active = list(reservations)
    shown = {r.connector_id for r in active if r.connector_id in view.slots}
    zero_count = len(_zero(active))
    open_now = open_connectors(view, active)
    if zero_count and len(open_now) <= zero_count:
        shown.update(open_now)
    return shown


def admits(
    connector_id: int,
    id_tag: str,
    parent_id_tag: str | None,
    view: StationView,
    reservations: Iterable[Reservation],
) -> bool:
    """Whether ``id_tag`` may start a transaction on ``connector_id``."""
    active = list(reservations)
    pinned = [r for r in active if r.connector_id == connector_id]
    if pinned:
        return any(r.admits(id_tag, parent_id_tag) for r in pinned)
    zero = _zero(active)
    if not zero or any(r.admits(id_tag, parent_id_tag) for r in zero):
        return True
    left = [cid for cid in open_connectors(view, active) if cid != connector_id]
    return len(left) >= len(zero)


def group_may_admit(
    connector_id: int,
    id_tag: str,
    view: StationView,
    reservations: Iterable[Reservation],
) -> bool:
    """Whether ``id_tag``, whose group is not known, is refused on
    ``connector_id`` as it stands but would be admitted were it of the group
    of one of the reservations: then its group is worth asking for."""
    active = list(reservations)
    if admits(connector_id, id_tag, None, view, active):
        return False
    groups = {r.parent_id_tag for r in active if r.parent_id_tag is not None}
    return any(admits(connector_id, id_tag, group, view, active) for group in sorted(groups))


def claimed_by(
    connector_id: int,
    id_tag: str,
    parent_id_tag: str | None,
    reservations: Iterable[Reservation],
) -> Reservation | None:
    """The reservation a transaction of ``id_tag`` on ``connector_id`` ends (and reports)."""
    active = list(reservations)
    for wanted in (connector_id, 0):
        for r in active:
            if r.connector_id == wanted and r.admits(id_tag, parent_id_tag):
                return r
    return None


def ended_by_state(view: StationView, reservations: Iterable[Reservation]) -> list[Reservation]:
    """Reservations that end because their connector (or the station) became
    Faulted or Unavailable."""
    ended = []
    for r in reservations:
        if r.connector_id == 0:
            gone = view.faulted or not view.operative
        else:
            gone = view.slots.get(r.connector_id) in (Slot.FAULTED, Slot.UNAVAILABLE)
        if gone:
            ended.append(r)
    return ended
