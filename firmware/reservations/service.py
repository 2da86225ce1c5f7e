"""Reservations on the running station: ReserveNow, CancelReservation, expiry,
who may start where, and the Reserved status of each connector.

The station and its connectors know nothing of reservations beyond four
hooks this service fills in: ``Station.admits`` (may this tag start on this
connector), ``Station.group_may_admit`` (might it, once its group is known),
``ConnectorController.claim_reservation`` (the reservation a starting
transaction ends; its id goes into StartTransaction) and
``ConnectorController.set_reserved`` (show Reserved).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from firmware.clock import Clock, iso
from firmware.connector.controller import ConnectorController
from firmware.connector.status import FATAL
from firmware.reservations import rules
from firmware.reservations.rules import Reservation, Slot, StationView
from firmware.reservations.store import ReservationStore
from firmware.settings import StationSettings
from firmware.station import Station
from hal.tokens import Tag

log = logging.getLogger("firmware.reservations")


def slot_of(controller: ConnectorController) -> Slot:
    if controller.fatal:
        return Slot.FAULTED
    if not controller.effective_operative:
        return Slot.UNAVAILABLE
    if (
        controller.tx is not None
        or controller.pending is not None
        or controller.pilot.plugged
        or controller.finishing
    ):
        return Slot.OCCUPIED
    return Slot.FREE


class Reservations:
    """``max_wait_s`` bounds how long the expiry timer sleeps, so a reservation
    still expires on time after the clock adopted the CSMS's time.

    Not ``supported`` (SupportedFeatureProfiles leaves Reservation out): every
    ReserveNow is Rejected and reservations stored earlier are dropped, so no
    connector is Reserved and every tag may start anywhere.
    """

    def __init__(
        self,
        store: ReservationStore,
        station: Station,
        settings: StationSettings,
        clock: Clock,
        *,
        max_wait_s: float = 1.0,
        supported: bool = True,
    ) -> None:
        self.store = store
        self.supported = supported
        self.station = station
        self.settings = settings
        self.clock = clock
        self.max_wait_s = max_wait_s
        self._changed = asyncio.Event()
        self._scheduled = False
        station.admits = self.admits
        station.group_may_admit = self.group_may_admit
        for controller in station.connectors.values():
            controller.claim_reservation = self.claim
        station.subscribe(lambda _cid, _status: self._schedule())
        if not supported:
            for r in store.all():
                store.remove(r.reservation_id)
                log.warning(
                    "reservation %d dropped: SupportedFeatureProfiles leaves out Reservation",
                    r.reservation_id,
                )

    # ------------------------------------------------------------ queries

    def view(self) -> StationView:
        station = self.station
        return StationView(
            slots={cid: slot_of(c) for cid, c in station.connectors.items()},
            faulted=bool(station.station_faults & FATAL),
            operative=station.ctx.availability.station_operative(),
        )

    def active(self) -> list[Reservation]:
        now = self.clock.now()
        return [r for r in self.store.all() if not r.expired(now)]

    def admits(self, connector_id: int, id_tag: str, parent_id_tag: str | None) -> bool:
        allowed = rules.admits(connector_id, id_tag, parent_id_tag, self.view(), self.active())
        if not allowed:
            log.info(
                "connector %d is reserved: %s may not start there",
                connector_id,
                Tag(id_tag),
                extra={"connector": connector_id},
            )
        return allowed

    def group_may_admit(self, connector_id: int, id_tag: str) -> bool:
        return rules.group_may_admit(connector_id, id_tag, self.view(), self.active())

    # ------------------------------------------------------------ CSMS commands

    def reserve(self, request: Reservation) -> str:
        if not self.supported:
            log.info("reservation %d not made: not supported", request.reservation_id)
            return "Rejected"
        status = rules.answer(
            request,
            self.view(),
            self.active(),
            zero_supported=self.settings.reserve_whole_station,
            now=self.clock.now(),
        )
        if status == "Accepted":
            replaced = self.store.get(request.reservation_id) is not None
            self.store.put(request)
            log.info(
                "reservation %d %s: connector %d for %s until %s",
                request.reservation_id,
                "replaced" if replaced else "made",
                request.connector_id,
                Tag(request.id_tag),
                iso(request.expiry),
            )
            self._changed.set()
            self.reconsider()
        else:
            log.info("reservation %d not made: %s", request.reservation_id, status)
        return status

    def cancel(self, reservation_id: int) -> bool:
        gone = self.store.remove(reservation_id)
        if gone is None:
            return False
        log.info("reservation %d cancelled", reservation_id)
        self._changed.set()
        self.reconsider()
        return True

    # ------------------------------------------------------------ hooks

    def claim(self, connector_id: int, id_tag: str, parent_id_tag: str | None) -> int | None:
        """A transaction starts: end the reservation it uses. In the caller's db transaction."""
        used = rules.claimed_by(connector_id, id_tag, parent_id_tag, self.active())
        if used is None:
            return None
        self.store.remove(used.reservation_id)
        log.info(
            "reservation %d used by %s on connector %d",
            used.reservation_id,
            Tag(id_tag),
            connector_id,
            extra={"connector": connector_id},
        )
        self._schedule()
        return used.reservation_id

    def _schedule(self) -> None:
        """Reconsider soon: never from inside a connector's status report."""
        if self._scheduled:
            return
        self._scheduled = True
        try:
            asyncio.get_running_loop().call_soon(self.reconsider)
        except RuntimeError:  # no loop (start-up, tests)
            self.reconsider()

    def reconsider(self) -> None:
        """End expired reservations and those of Faulted or Unavailable connectors;
        show Reserved where it applies."""
        self._scheduled = False
        view = self.view()
        now = self.clock.now()
        for r in self.store.expired(now):
            self.store.remove(r.reservation_id)
            log.info("reservation %d expired", r.reservation_id)
        for r in rules.ended_by_state(view, self.store.all()):
            self.store.remove(r.reservation_id)
            log.info(
                "reservation %d ended: its connector is Faulted or Unavailable", r.reservation_id
            )
        shown = rules.reserved_connectors(view, self.store.all())
        for cid, controller in self.station.connectors.items():
            controller.set_reserved(cid in shown)

    # ------------------------------------------------------------ life cycle

    def drop_expired(self) -> int:
        """At boot: reservations that expired while the station was down."""
        now = self.clock.now()
        expired = self.store.expired(now)
        for r in expired:
            self.store.remove(r.reservation_id)
            log.info("reservation %d expired while the station was down", r.reservation_id)
        return len(expired)

    async def run(self) -> None:
        """Expire each reservation at its expiryDate."""
        while True:
            self._changed.clear()
            self.reconsider()
            due = self.store.next_expiry()
            timeout: float | None = None
            if due is not None:
                left = (due - self.clock.now()).total_seconds()
                timeout = max(0.0, min(left, self.max_wait_s))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait()
