"""The station's settings, in the station's own words.

The station's rules (connector/, auth/, smart_charging/, reservations/ and
station.py) read what they may do here and never a protocol's configuration.
A protocol front-end maps its own store onto this: the OCPP 1.6 configuration
keys (``firmware.ocpp.v16.settings``), the 2.0.1 device model's variables.
Every value is read when it is needed, so a change the CSMS makes applies at
once; ``subscribe`` tells which setting changed.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol


class Measurands(StrEnum):
    """Which measurands a kind of meter sample carries."""

    PERIODIC = "periodic"  # Sample.Periodic MeterValues of a transaction
    ALIGNED = "aligned"  # Sample.Clock MeterValues, in a transaction or not
    STOP_PERIODIC = "stop_periodic"  # periodic samples kept for the stop message
    STOP_ALIGNED = "stop_aligned"  # clock-aligned samples kept for the stop message


class StationSettings(Protocol):
    # Sessions
    @property
    def connection_timeout_s(self) -> int:
        """How long an authorization waits for a vehicle (and a vehicle for one)."""

    @property
    def stop_on_ev_disconnect(self) -> bool:
        """A transaction ends when the vehicle unplugs (else it is suspended)."""

    @property
    def unlock_on_ev_disconnect(self) -> bool:
        """The connector unlocks when the vehicle unplugs."""

    @property
    def tx_start_points(self) -> frozenset[str]:
        """What starts a transaction, in OCPP 2.0.1's TxStartPoint words: "EVConnected"
        (the vehicle plugs in), "Authorized" (a token is accepted), "PowerPathClosed"
        (both have happened: 1.6's rule). The first that happens starts it."""

    @property
    def tx_stop_points(self) -> frozenset[str]:
        """What ends a transaction, in TxStopPoint words: "EVConnected" (the vehicle
        leaves), "Authorized" (the authorization ends: a stop tap, a remote stop),
        "PowerPathClosed" (either: 1.6's rule). The first that happens ends it."""

    @property
    def stop_on_invalid_id(self) -> bool:
        """A transaction started offline ends when its id turns out invalid."""

    @property
    def max_energy_on_invalid_id_wh(self) -> int:
        """The energy such a transaction may still deliver when it does not end."""

    # Metering
    @property
    def sample_interval_s(self) -> int:
        """Periodic samples of a transaction; 0: none."""

    @property
    def aligned_interval_s(self) -> int:
        """Clock-aligned samples; 0: none."""

    def measurands(self, kind: Measurands) -> list[str]:
        """The measurands of ``kind`` samples, in order."""

    # Authorization
    @property
    def auth_cache_enabled(self) -> bool: ...

    @property
    def local_pre_authorize(self) -> bool:
        """A locally known valid id starts without asking the CSMS first."""

    @property
    def local_authorize_offline(self) -> bool:
        """Offline, a locally known valid id may start."""

    @property
    def offline_unknown_id_allowed(self) -> bool:
        """Offline, an id known nowhere may start."""

    @property
    def authorize_remote_start(self) -> bool:
        """A remote start's id is authorized as a tap's would be."""

    @property
    def master_pass_group(self) -> str:
        """Tokens of this group stop every transaction and start none; empty: none."""

    # Smart charging and reservations
    @property
    def smart_charging_enabled(self) -> bool: ...

    @property
    def charging_rate_units(self) -> list[str]:
        """The units a schedule may use ("Current", "Power"), as configured."""

    @property
    def max_stack_level(self) -> int: ...

    @property
    def max_schedule_periods(self) -> int: ...

    @property
    def max_profiles_installed(self) -> int: ...

    @property
    def reserve_whole_station(self) -> bool:
        """A reservation may name no connector (any connector of the station)."""

    def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` after a setting changed; ``name`` is the attribute's."""
