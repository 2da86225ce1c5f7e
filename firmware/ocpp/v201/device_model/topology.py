"""What the station is built of, from its configuration: identity, EVSEs and connectors.

OCPP 2.0.1 counts connectors within an EVSE. Connector N of the configuration
(``connectors: N``, the local API, the HAL) is EVSE N, connector 1: one
connector per EVSE, as a station whose connectors can all charge at once is
built. ``Topology`` holds that mapping both ways, so that a configuration that
groups several connectors under one EVSE only changes ``layout``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from firmware.config import Config
from firmware.metering import supported_measurands


@dataclass(frozen=True, slots=True)
class Evse:
    """EVSE ``id`` and, for each of its connectors 1..n in order, the station connector."""

    id: int
    station_connectors: tuple[int, ...]

    @property
    def connector_ids(self) -> range:
        return range(1, len(self.station_connectors) + 1)


class Topology:
    """EVSEs, their connectors, and the station connector each one is."""

    def __init__(self, evses: Sequence[Evse]) -> None:
        self.evses = tuple(evses)
        self._by_station: dict[int, tuple[int, int]] = {}
        for evse in self.evses:
            for connector_id, station_connector in zip(
                evse.connector_ids, evse.station_connectors, strict=True
            ):
                if station_connector in self._by_station:
                    raise ValueError(f"connector {station_connector} is on two EVSEs")
                self._by_station[station_connector] = (evse.id, connector_id)
        ids = [e.id for e in self.evses]
        if ids != list(range(1, len(ids) + 1)):
            raise ValueError(f"EVSE ids must be 1..n in order, got {ids}")

    def __iter__(self) -> Iterator[Evse]:
        return iter(self.evses)

    def address(self, station_connector: int) -> tuple[int, int]:
        """(EVSE id, connector id) of a connector of the configuration; KeyError if none."""
        return self._by_station[station_connector]

    def connectors_of(self, evse_id: int) -> tuple[int, ...] | None:
        """The connectors of the configuration on EVSE ``evse_id``; None: no such EVSE."""
        if not 1 <= evse_id <= len(self.evses):
            return None
        return self.evses[evse_id - 1].station_connectors

    def station_connector(self, evse_id: int, connector_id: int) -> int:
        """The connector of the configuration at (EVSE, connector); KeyError if none."""
        evse = self.evses[evse_id - 1] if 1 <= evse_id <= len(self.evses) else None
        if evse is None or not 1 <= connector_id <= len(evse.station_connectors):
            raise KeyError((evse_id, connector_id))
        return evse.station_connectors[connector_id - 1]


def layout(connectors: int) -> Topology:
    """One EVSE per connector: connector N is EVSE N, connector 1."""
    return Topology([Evse(n, (n,)) for n in range(1, connectors + 1)])


@dataclass(frozen=True, slots=True)
class Station:
    """The facts of the station the built-in values of the device model come from."""

    charge_point_id: str
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None
    topology: Topology
    phases: int
    max_power_w: float  # of one EVSE: the board's current on every phase at nominal voltage
    has_lock: bool  # a socket with a cable lock; without: a fixed cable
    measurands: frozenset[str]
    has_password: bool
    max_frame_bytes: int
    response_timeout_s: float
    reconnect_min_s: float
    reconnect_max_s: float
    reconnect_spread_s: float

    @property
    def backoff_doublings(self) -> int:
        """How often the reconnect backoff doubles from its minimum before it is capped."""
        ratio = self.reconnect_max_s / self.reconnect_min_s
        return max(0, math.ceil(math.log2(ratio))) if ratio > 1 else 0


def describe(config: Config) -> Station:
    """The station a configuration file describes."""
    board = config.board
    return Station(
        charge_point_id=config.ocpp.charge_point_id,
        vendor=config.identity.vendor,
        model=config.identity.model,
        serial_number=config.identity.serial_number,
        firmware_version=config.identity.firmware_version,
        topology=layout(config.connectors),
        phases=board.phases,
        max_power_w=board.max_current_a * board.nominal_voltage_v * board.phases,
        has_lock=board.has_lock,
        measurands=supported_measurands(has_bms=board.has_bms),
        has_password=config.ocpp.password is not None,
        max_frame_bytes=config.ocpp.max_frame_bytes,
        response_timeout_s=config.ocpp.response_timeout_s,
        reconnect_min_s=config.ocpp.reconnect_min_s,
        reconnect_max_s=config.ocpp.reconnect_max_s,
        reconnect_spread_s=config.ocpp.reconnect_spread_s,
    )
