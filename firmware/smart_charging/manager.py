"""Smart charging in the daemon: installed profiles, and their limit on the hardware.

``SmartCharging`` keeps the installed profiles (in memory and in the
database), answers the three Smart Charging requests, and applies the
resulting limit to each connector controller: at start, whenever profiles
change, when a session starts or ends, and at the next instant the limit
changes (``next_change_after``): it sleeps until then, it does not poll.
The controller offers min(board maximum, cable rating, limit) and pauses
below 6 A (SuspendedEVSE).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ocpp.v16.enums import ChargingProfilePurposeType, ChargingRateUnitType

from firmware.clock import Clock
from firmware.connector.controller import ConnectorController
from firmware.connector.session import ActiveTx
from firmware.settings import StationSettings
from firmware.smart_charging import balance, rules
from firmware.smart_charging.composite import (
    Supply,
    TransactionContext,
    composite_schedule,
    limit_at,
    next_change_after,
)
from firmware.smart_charging.errors import ProfileError
from firmware.smart_charging.profiles import (
    InstalledProfile,
    ProfileLimits,
    parse_charging_profile,
    parse_remote_start_profile,
)
from firmware.smart_charging.store import ProfileStore
from firmware.storage.db import Database
from hal.interfaces import BoardSettings

log = logging.getLogger("firmware.smart_charging")

AMPS = ChargingRateUnitType.amps
WATTS = ChargingRateUnitType.watts
UNIT_KEYS = {"current": AMPS, "power": WATTS}
STATION_MAX = ChargingProfilePurposeType.charge_point_max_profile
# GetCompositeSchedule answers for at most this long: the schedule of a longer
# request is cut (its duration says so), not computed for years of recurrences.
MAX_COMPOSITE_S = 31 * 86400


class SmartCharging:
    def __init__(
        self,
        db: Database,
        settings: StationSettings,
        clock: Clock,
        board: BoardSettings,
        connectors: Mapping[int, ConnectorController],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.board = board
        self.connectors = connectors
        self.supply = Supply(board.nominal_voltage_v, board.phases)
        self._store = ProfileStore(db)
        self._wake = asyncio.Event()
        # No transaction survives a restart (they end with PowerLoss), nor do their TxProfiles.
        # Without the profile (SupportedFeatureProfiles) no stored profile limits anything.
        loaded = self._store.load(self.limits())
        stale = [
            item.profile.charging_profile_id
            for item in loaded
            if item.profile.purpose == ChargingProfilePurposeType.tx_profile or not self.enabled
        ]
        if stale and not self.enabled:
            log.warning(
                "charging profile(s) %s dropped: SupportedFeatureProfiles leaves out SmartCharging",
                sorted(stale),
            )
        if stale:
            self._store.save((), removed=stale)
        self.installed: tuple[InstalledProfile, ...] = tuple(
            item for item in loaded if item.profile.charging_profile_id not in stale
        )
        for controller in connectors.values():
            controller.limiter = self
        log.info("%d charging profile(s) installed", len(self.installed))

    # ------------------------------------------------------------ settings

    @property
    def enabled(self) -> bool:
        return self.settings.smart_charging_enabled

    def limits(self) -> ProfileLimits:
        units = {
            UNIT_KEYS[item.casefold()]
            for item in self.settings.charging_rate_units
            if item.casefold() in UNIT_KEYS
        }
        return ProfileLimits(
            max_stack_level=self.settings.max_stack_level,
            max_periods=self.settings.max_schedule_periods,
            allowed_units=frozenset(units),
        )

    # ------------------------------------------------------------ CSMS requests

    def set_profile(self, connector_id: int, payload: Mapping[str, Any]) -> str:
        """SetChargingProfile: Accepted, Rejected or NotSupported."""
        if not self.enabled:
            return "NotSupported"
        if connector_id != 0 and connector_id not in self.connectors:
            log.info("SetChargingProfile for unknown connector %d rejected", connector_id)
            return "Rejected"
        try:
            profile = parse_charging_profile(
                payload, connector_id=connector_id, limits=self.limits()
            )
        except ProfileError as err:
            log.info("SetChargingProfile rejected: %s", err)
            return "Rejected"
        if profile.purpose == ChargingProfilePurposeType.tx_profile:
            tx = self.connectors[connector_id].tx
            if tx is None:
                log.info("TxProfile rejected: no transaction on connector %d", connector_id)
                return "Rejected"
            if profile.transaction_id is not None and profile.transaction_id != tx.record.csms_id:
                log.info(
                    "TxProfile rejected: transaction %d is not running on connector %d",
                    profile.transaction_id,
                    connector_id,
                )
                return "Rejected"
        return "Accepted" if self._install(InstalledProfile(connector_id, profile)) else "Rejected"

    def clear(self, criteria: rules.ClearFilter) -> str:
        """ClearChargingProfile: Accepted if something was cleared, else Unknown."""
        change = rules.clear(self.installed, criteria)
        if not change.removed:
            return "Unknown"
        self._apply(change, ())
        log.info("charging profile(s) %s cleared", sorted(change.removed))
        return "Accepted"

    def composite(
        self, connector_id: int, duration_s: int, unit: str | None
    ) -> dict[str, Any] | None:
        """GetCompositeSchedule.conf payload; None for an unknown connector."""
        if connector_id != 0 and connector_id not in self.connectors:
            return None
        asked = ChargingRateUnitType(unit) if unit is not None else None
        schedule = composite_schedule(
            self.installed,
            now=self.clock.now(),
            connector_id=connector_id,
            duration_s=min(duration_s, MAX_COMPOSITE_S),
            supply=self.supply,
            transaction=self._context(connector_id),
            unit=asked,
        )
        hardware_a = self.board.max_current_a
        if connector_id != 0:
            rating = self.connectors[connector_id].hw.evse.cable_rating_a
            if rating is not None:
                hardware_a = min(hardware_a, rating)
        hardware = hardware_a
        if schedule.unit == WATTS:
            hardware = hardware_a * self.supply.voltage_v * self.supply.phases
        return schedule.conf_payload(hardware_max=hardware)

    def remote_start_profile_ok(self, payload: Mapping[str, Any], connector_id: int) -> bool:
        """RemoteStartTransaction's chargingProfile: a valid TxProfile that would fit.

        Without the Smart Charging profile it never fits: starting without the
        limit the CSMS asked for could overload what it planned for.
        """
        if not self.enabled:
            log.info("RemoteStartTransaction chargingProfile rejected: SmartCharging not supported")
            return False
        try:
            profile = parse_remote_start_profile(
                payload, connector_id=connector_id, limits=self.limits()
            )
            rules.install(
                self.installed,
                InstalledProfile(connector_id, profile),
                maximum=self.settings.max_profiles_installed,
            )
        except (ProfileError, rules.TooManyProfiles) as err:
            log.info("RemoteStartTransaction chargingProfile rejected: %s", err)
            return False
        return True

    # ------------------------------------------------------------ sessions

    def session_changed(self, connector_id: int, tx: ActiveTx | None) -> float | None:
        """A session started, got its transactionId (``tx``) or ended (None).

        Called by the controller under its lock, before it drives the
        hardware: installs the RemoteStartTransaction's TxProfile, gives it
        the transactionId once known (§5.16.2), or drops the ended
        transaction's, and returns the connector's new limit (the other
        connectors are re-balanced by ``run``).
        """
        if tx is None:
            change = rules.end_transaction(self.installed, connector_id)
            if change.removed:
                self._apply(change, ())
                log.info("TxProfile(s) %s ended with the transaction", sorted(change.removed))
        elif tx.charging_profile is not None:
            payload, tx.charging_profile = tx.charging_profile, None  # installed once
            try:
                profile = parse_remote_start_profile(
                    payload, connector_id=connector_id, limits=self.limits()
                )
                self._install(InstalledProfile(connector_id, profile))
            except ProfileError as err:  # checked when the request came; limits changed since
                log.warning("remote start TxProfile not installed: %s", err)
        if tx is not None and tx.record.csms_id is not None:
            installed, bound = rules.bind_transaction(
                self.installed, connector_id, tx.record.csms_id
            )
            if bound:
                self._apply(rules.Change(installed, frozenset()), bound)
        self._wake.set()
        return self._allocation(self.clock.now()).get(connector_id)

    # ------------------------------------------------------------ applying the limit

    def reevaluate(self) -> None:
        """Apply the limits again now (e.g. the wall clock was set)."""
        self._wake.set()

    async def run(self) -> None:
        """Apply the limits now, then at each change; wake early on any event."""
        while True:
            self._wake.clear()
            timeout = None
            try:
                timeout = await self._apply_now()
            except Exception:  # never take the daemon down; try again on the next event
                log.exception("charging limits not applied")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _apply_now(self) -> float | None:
        """Apply every connector's limit; returns the seconds until the next change."""
        now = self.clock.now()
        for connector_id, limit in self._allocation(now).items():
            await self.connectors[connector_id].apply_limit(limit)
        wake = self._next_change(now)
        if wake is None:
            return None
        log.debug("next charging limit change at %s", wake.isoformat())
        return max(0.0, (wake - self.clock.now()).total_seconds())

    def _allocation(self, now: datetime) -> dict[int, float | None]:
        own = [item for item in self.installed if item.profile.purpose != STATION_MAX]
        station = limit_at(self.installed, now=now, connector_id=0, supply=self.supply, unit=AMPS)
        demands = []
        for connector_id in self.connectors:
            context = self._context(connector_id)
            limit = limit_at(
                own,
                now=now,
                connector_id=connector_id,
                supply=self.supply,
                transaction=context,
                unit=AMPS,
            )
            least = balance.MIN_CHARGING_A
            if limit is not None and limit.min_charging_rate is not None:
                least = max(least, limit.min_charging_rate)
            demands.append(
                balance.Demand(
                    connector_id,
                    None if limit is None else limit.value,
                    None if context is None else context.started_at,
                    least,
                )
            )
        return balance.allocate(None if station is None else station.value, demands)

    def _next_change(self, now: datetime) -> datetime | None:
        changes = [
            next_change_after(
                self.installed,
                now=now,
                connector_id=connector_id,
                supply=self.supply,
                transaction=self._context(connector_id),
                unit=AMPS,
            )
            for connector_id in (0, *self.connectors)
        ]
        found = [change for change in changes if change is not None]
        return min(found) if found else None

    def _context(self, connector_id: int) -> TransactionContext | None:
        controller = self.connectors.get(connector_id)
        if controller is None or controller.tx is None:
            return None
        record = controller.tx.record
        return TransactionContext(record.started_at, record.csms_id)

    def _install(self, item: InstalledProfile) -> bool:
        try:
            change = rules.install(
                self.installed, item, maximum=self.settings.max_profiles_installed
            )
        except rules.TooManyProfiles as err:
            log.info("charging profile %d rejected: %s", item.profile.charging_profile_id, err)
            return False
        self._apply(change, (item,))
        log.info(
            "charging profile %d (%s, stack level %d) installed on connector %d",
            item.profile.charging_profile_id,
            item.profile.purpose.value,
            item.profile.stack_level,
            item.connector_id,
        )
        return True

    def _apply(self, change: rules.Change, added: tuple[InstalledProfile, ...] = ()) -> None:
        self._store.save(added, removed=change.removed)
        self.installed = change.installed
        self._wake.set()
