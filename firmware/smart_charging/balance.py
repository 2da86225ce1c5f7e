"""Local load balancing: the station maximum shared between charging connectors (pure).

A ChargePointMaxProfile limits the whole station (§3.13.3). With several
connectors, its limit is split equally between the connectors that have a
transaction; a share below what a connector needs to charge (6 A, IEC 61851,
or the profile's minChargingRate if higher) would leave every connector
unable to charge, so instead the most recently started session is paused
(offered 0) and the rest split again. A connector without a session gets the
share it would have if its session started now, so a start never offers
more than the station can carry.

Every value here is in A per phase.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

MIN_CHARGING_A = 6.0


@dataclass(frozen=True, slots=True)
class Demand:
    """One connector as the balancer sees it."""

    connector_id: int
    own_limit_a: float | None  # its TxProfile/TxDefaultProfile limit; None: none
    started_at: datetime | None = None  # its session's start; None: no session
    min_charging_a: float = MIN_CHARGING_A


def allocate(station_limit_a: float | None, demands: Sequence[Demand]) -> dict[int, float | None]:
    """The limit of each connector; 0: paused; None: nothing limits it."""
    if station_limit_a is None:
        return {d.connector_id: d.own_limit_a for d in demands}
    sessions = sorted(
        (d for d in demands if d.started_at is not None),
        key=lambda d: (d.started_at, d.connector_id),
    )
    paused: list[Demand] = []
    while sessions:
        share = station_limit_a / len(sessions)
        if all(share >= d.min_charging_a for d in sessions):
            break
        paused.append(sessions.pop())  # the most recently started gives way
    result: dict[int, float | None] = {}
    running = len(sessions)
    for demand in demands:
        if demand in paused:
            result[demand.connector_id] = 0.0
            continue
        count = running if demand.started_at is not None else running + 1
        result[demand.connector_id] = _lower(demand.own_limit_a, station_limit_a / count)
    return result


def _lower(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)
