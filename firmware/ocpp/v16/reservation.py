"""Reservation profile: ReserveNow and CancelReservation."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from firmware.clock import parse_iso
from firmware.ocpp.errors import ProtocolViolation
from firmware.ocpp.rpc import Reply, Rpc
from firmware.reservations.rules import Reservation
from firmware.reservations.service import Reservations


class ReservationHandlers:
    """Registers the Reservation profile's CSMS→station actions on an Rpc."""

    def __init__(self, reservations: Reservations) -> None:
        self.reservations = reservations

    def register(self, rpc: Rpc) -> None:
        rpc.on("ReserveNow", self.reserve_now)
        rpc.on("CancelReservation", self.cancel_reservation)

    async def reserve_now(self, req: dict[str, Any]) -> Reply:
        try:
            expiry = parse_iso(req["expiryDate"]).astimezone(UTC)
        except ValueError as err:
            raise ProtocolViolation("TypeConstraintViolation", f"expiryDate: {err}") from err
        request = Reservation(
            reservation_id=int(req["reservationId"]),
            connector_id=int(req["connectorId"]),
            id_tag=str(req["idTag"]),
            expiry=expiry,
            parent_id_tag=req.get("parentIdTag"),
        )
        return Reply({"status": self.reservations.reserve(request)})

    async def cancel_reservation(self, req: dict[str, Any]) -> Reply:
        found = self.reservations.cancel(int(req["reservationId"]))
        return Reply({"status": "Accepted" if found else "Rejected"})
