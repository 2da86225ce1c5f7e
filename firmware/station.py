"""The station: connectors, token routing, station-wide state and commands."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.auth.authorizer import Authorizer
from firmware.auth.cache import IdTagInfo
from firmware.connector.context import ConnectorContext
from firmware.connector.controller import ConnectorController
from firmware.connector.status import Status, derive_station_status
from firmware.metering import next_aligned
from hal.errors import HalError
from hal.interfaces import (
    Fault,
    FaultChanged,
    HalBackend,
    HalEvent,
    PilotChanged,
    TokenPresented,
)
from hal.tokens import Tag, same_id_tag

log = logging.getLogger("firmware.station")

# Faults reported on connector 0 that concern every connector.
STATION_WIDE = frozenset({Fault.EMERGENCY_STOP})
BOOT_METER_WAIT_S = 3.0  # how long a power-loss recovery waits for a meter to answer
# idTagInfo statuses that may stop a session of the same parentIdTag.
GROUP_STATUSES = frozenset({"Accepted", "ConcurrentTx"})


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """Where an accepted RemoteStartTransaction goes.

    ``learn_group``: the connector is reserved under a parentIdTag and the
    tag's group is not known locally, so Authorize.req asks for it whatever
    AuthorizeRemoteTxRequests says [5.13]. The RemoteStartTransaction answer
    does not wait for it: Accepted means the station will try to start [5.11],
    and a CSMS that handles one message at a time would not answer our
    Authorize before it has our answer. A tag of the reservation's group then
    starts (and its StartTransaction carries the reservationId); any other
    answer starts nothing and the reservation stays.
    """

    controller: ConnectorController
    learn_group: bool = False


def _plugged_first(candidates: list[ConnectorController]) -> ConnectorController:
    plugged = [c for c in candidates if c.pilot.plugged]
    return (plugged or candidates)[0]


class Station:
    def __init__(
        self,
        hal: HalBackend,
        ctx: ConnectorContext,
        authorizer: Authorizer,
        on_status: Callable[[int, Status], None],
    ) -> None:
        self.hal = hal
        self.ctx = ctx
        self.authorizer = authorizer
        self.connectors: dict[int, ConnectorController] = {
            cid: ConnectorController(hw, ctx) for cid, hw in sorted(hal.connectors.items())
        }
        for controller in self.connectors.values():
            controller.subscribe(on_status)
        self._listeners = [on_status]
        # Told of every hardware fault change before the connectors act on it.
        self.fault_observers: list[Callable[[FaultChanged], None]] = []
        # Whether a tag may start on a connector (the Reservation profile fills it in).
        self.admits: Callable[[int, str, str | None], bool] = lambda _cid, _tag, _parent: True
        # Whether a tag whose group is not known might be admitted there once it is.
        self.group_may_admit: Callable[[int, str], bool] = lambda _cid, _tag: False
        self.station_faults: set[Fault] = set()
        self.status0: Status | None = None
        self._pending_station_auth: tuple[str, IdTagInfo, bool, float] | None = None

    def subscribe(self, callback: Callable[[int, Status], None]) -> None:
        """Status changes of every connector and of the station (connector 0)."""
        self._listeners.append(callback)
        for controller in self.connectors.values():
            controller.subscribe(callback)

    # ------------------------------------------------------------ the CSMS's answers

    def start_answered(self, local_id: int, csms_id: int, info: IdTagInfo) -> None:
        """The CSMS took a transaction's start: its id for the transaction and what it
        says of the token (called inside the queue's database transaction)."""
        record = self.ctx.transactions.get(local_id)
        if record is None:
            return
        if record.id_tag:  # none yet: the vehicle started it (TxStartPoint EVConnected)
            self.authorizer.remember(record.id_tag, info)
        controller = self.connectors.get(record.connector_id)
        if controller is not None:
            controller.start_confirmed(local_id, csms_id, info)
        else:  # a connector no longer configured: keep the answer with the record
            self.ctx.transactions.confirm(local_id, csms_id, info.status, info.parent_id_tag)

    def stop_answered(self, local_id: int, info: IdTagInfo | None) -> None:
        """The CSMS took a transaction's end; ``info``: what it says of the token, if anything."""
        record = self.ctx.transactions.get(local_id)
        if record is not None and record.id_tag and info is not None:
            self.authorizer.remember(record.id_tag, info)

    # ------------------------------------------------------------ start-up

    async def _boot_reading_wh(self, connector_id: int) -> float | None:
        hw = self.hal.connectors.get(connector_id)
        if hw is None:
            return None
        # A meter powered up with the board may take a moment to answer.
        problem: BaseException | None = None
        try:
            async with asyncio.timeout(BOOT_METER_WAIT_S):
                while True:
                    try:
                        return (await hw.meter.read()).energy_wh
                    except HalError as err:
                        problem = err
                    await asyncio.sleep(0.2)
        except TimeoutError as err:
            problem = problem or err
        log.warning("connector %d meter not readable at boot: %s", connector_id, problem)
        return None

    async def recover_after_power_loss(self) -> int:
        """End every transaction left open by a crash or power cut (reason PowerLoss).

        meterStop is the meter's register at boot when it can be read (it kept
        counting until the power went), else the last reading saved; the
        timestamp is the last time the transaction was known to run.
        """
        open_txs = self.ctx.transactions.open_transactions()
        for record in open_txs:
            meter_stop = max(round(record.last_meter_wh), record.meter_start_wh)
            at_boot = await self._boot_reading_wh(record.connector_id)
            if at_boot is not None and at_boot >= meter_stop:
                meter_stop = round(at_boot)
            with self.ctx.db.transaction():
                self.ctx.journal.ended(record, meter_stop, record.last_seen_at, "PowerLoss", None)
                self.ctx.transactions.close(
                    record.local_id, meter_stop, record.last_seen_at, "PowerLoss", None
                )
            log.warning(
                "transaction %d on connector %d ended by power loss (meterStop %d Wh)",
                record.local_id,
                record.connector_id,
                meter_stop,
                extra={"connector": record.connector_id, "transaction": record.local_id},
            )
        return len(open_txs)

    async def start(self) -> None:
        for controller in self.connectors.values():
            await controller.start()
        self._refresh_station()

    # ------------------------------------------------------------ station status

    def _refresh_station(self) -> None:
        status = derive_station_status(
            self.ctx.availability.station_operative(), frozenset(self.station_faults)
        )
        if status != self.status0:
            self.status0 = status
            for callback in self._listeners:
                callback(0, status)

    # ------------------------------------------------------------ HAL events

    async def run_events(self) -> None:
        while True:
            event = await self.hal.events.get()
            try:
                await self.handle_event(event)
            except Exception:
                log.exception("error while handling %s", event)

    async def handle_event(self, event: HalEvent) -> None:
        if isinstance(event, PilotChanged):
            controller = self.connectors.get(event.connector_id)
            if controller is None:
                return
            claimed = self._claim_station_auth(controller, event)
            await controller.on_pilot(event.state)
            if claimed is not None:
                self.ctx.spawn(self._start_claimed(controller, claimed))
        elif isinstance(event, FaultChanged):
            for observer in self.fault_observers:
                observer(event)
            await self._on_fault(event)
        elif isinstance(event, TokenPresented):
            self.ctx.taps.token_read(event.uid, event.read_at)
            self.ctx.spawn(self.on_token(event.uid, event.connector_id))

    def _claim_station_auth(
        self, controller: ConnectorController, event: PilotChanged
    ) -> tuple[str, IdTagInfo, bool] | None:
        pending = self._pending_station_auth
        if pending is None or not event.state.plugged or controller.pilot.plugged:
            return None
        self._pending_station_auth = None
        if self.ctx.clock.monotonic() > pending[3]:
            return None
        return pending[0], pending[1], pending[2]

    async def _start_claimed(
        self, controller: ConnectorController, claim: tuple[str, IdTagInfo, bool]
    ) -> None:
        if self.admits(controller.id, claim[0], claim[1].parent_id_tag):
            await controller.authorize(claim[0], claim[1], offline=claim[2])

    async def _on_fault(self, event: FaultChanged) -> None:
        if event.connector_id == 0:
            if event.active:
                self.station_faults.add(event.fault)
            else:
                self.station_faults.discard(event.fault)
            self._refresh_station()
            if event.fault in STATION_WIDE:
                for each in self.connectors.values():
                    await each.on_fault(event.fault, event.active)
            return
        target = self.connectors.get(event.connector_id)
        if target is not None:
            await target.on_fault(event.fault, event.active)

    # ------------------------------------------------------------ tokens

    def _session_of(self, id_tag: str, parent: str | None) -> ConnectorController | None:
        for controller in self.connectors.values():
            tx = controller.tx
            if tx is None:
                continue
            if same_id_tag(tx.id_tag, id_tag):
                return controller
            if same_id_tag(tx.record.parent_id_tag, parent):
                return controller
        return None

    def _group_session(self, id_tag: str, info: IdTagInfo) -> ConnectorController | None:
        if info.parent_id_tag is None or info.status not in GROUP_STATUSES:
            return None
        return self._session_of(id_tag, info.parent_id_tag)

    async def _master_pass(self, id_tag: str) -> None:
        """A token of the master pass group: every transaction ends, none starts (C16)."""
        self.ctx.taps.forget(id_tag)
        running = [c for c in self.connectors.values() if c.tx is not None]
        log.info("master pass %s: stopping %d transaction(s)", Tag(id_tag), len(running))
        for controller in running:
            await controller.stop("MasterPass", id_tag)

    async def on_token(self, id_tag: str, connector_id: int | None) -> None:
        log.info("token %s presented (connector %s)", Tag(id_tag), connector_id or "any")
        # The same tag stops its own session without asking the CSMS.
        running = self._session_of(id_tag, None)
        if running is not None:
            self.ctx.taps.forget(id_tag)
            await running.stop("Local", id_tag)
            return
        # A tag of the same group, known locally, stops it without asking either.
        local = self.authorizer.known_locally(id_tag)
        if local is not None:
            group = self._group_session(id_tag, local[0])
            if group is not None:
                await group.stop("Local", id_tag)
                return
        decision = await self.authorizer.authorize(id_tag)
        parent = decision.info.parent_id_tag
        master = self.ctx.settings.master_pass_group
        if master and decision.accepted and same_id_tag(parent, master):
            await self._master_pass(id_tag)
            return
        if parent is not None and decision.info.status in GROUP_STATUSES:
            group = self._session_of(id_tag, parent)
            if group is not None:
                self.ctx.taps.forget(id_tag)
                await group.stop("Local", id_tag)
                return
        if not decision.accepted:
            self.ctx.taps.forget(id_tag)
            log.info("token %s not authorized: %s", Tag(id_tag), decision.info.status)
            return
        target = self._target_for_token(connector_id, id_tag, parent)
        if target is None:
            if connector_id is None and any(
                c.can_start() and self.admits(c.id, id_tag, parent)
                for c in self.connectors.values()
            ):
                timeout = self.ctx.settings.connection_timeout_s
                self._pending_station_auth = (
                    id_tag,
                    decision.info,
                    decision.offline,
                    self.ctx.clock.monotonic() + timeout,
                )
                log.info("token %s authorized; waiting for a vehicle on any connector", Tag(id_tag))
            else:
                log.info("token %s authorized but no connector can take it", Tag(id_tag))
            return
        await target.authorize(id_tag, decision.info, offline=decision.offline)

    def _target_for_token(
        self, connector_id: int | None, id_tag: str, parent: str | None
    ) -> ConnectorController | None:
        if connector_id is not None:
            controller = self.connectors.get(connector_id)
            if controller is None or not controller.can_start():
                return None
            return controller if self.admits(controller.id, id_tag, parent) else None
        free = [
            c
            for c in self.connectors.values()
            if c.can_start() and self.admits(c.id, id_tag, parent)
        ]
        plugged = [c for c in free if c.pilot.plugged]
        if plugged:
            return plugged[0]
        if len(free) == 1:
            return free[0]
        return None

    # ------------------------------------------------------------ CSMS commands

    def remote_start_target(self, connector_id: int | None, id_tag: str) -> RemoteTarget | None:
        """The connector a RemoteStartTransaction would use; None: Rejected.

        A tag the station knows (local list, cache) is judged by the group it
        has there. An unknown tag may still be of the group a connector is
        reserved for: that connector is taken with ``learn_group`` [5.13].
        Without connectorId a connector that admits the tag for certain comes
        first, then one whose reservation's group might; plugged ones first.
        """
        known = self.authorizer.known_locally(id_tag)
        parent = known[0].parent_id_tag if known is not None else None
        if connector_id is not None:
            controller = self.connectors.get(connector_id)
            if controller is None or not controller.can_start():
                return None
            free = [controller]
        else:
            free = [c for c in self.connectors.values() if c.can_start()]
        admitted = [c for c in free if self.admits(c.id, id_tag, parent)]
        if admitted:
            return RemoteTarget(_plugged_first(admitted))
        if known is None:
            maybe = [c for c in free if self.group_may_admit(c.id, id_tag)]
            if maybe:
                return RemoteTarget(_plugged_first(maybe), learn_group=True)
        return None

    async def remote_start(
        self, target: RemoteTarget, id_tag: str, charging_profile: dict[str, Any] | None
    ) -> None:
        """After RemoteStartTransaction was Accepted (see ``RemoteTarget``)."""
        controller = target.controller
        if target.learn_group or self.ctx.settings.authorize_remote_start:
            decision = await self.authorizer.authorize(id_tag)
            if not decision.accepted:
                log.info(
                    "remote start for %s not authorized: %s", Tag(id_tag), decision.info.status
                )
                return
            info, offline = decision.info, decision.offline
        else:
            info, offline = IdTagInfo("Accepted"), not self.ctx.online()
        if not self.admits(controller.id, id_tag, info.parent_id_tag):
            if target.learn_group:
                log.info(
                    "remote start for %s not started: connector %d stays reserved (%s)",
                    Tag(id_tag),
                    controller.id,
                    "the group could not be learned"
                    if offline
                    else "the tag is not of the reservation's group",
                )
            return
        taken = await controller.authorize(
            id_tag, info, offline=offline, charging_profile=charging_profile
        )
        if not taken:
            log.warning(
                "remote start for %s: connector %d no longer free", Tag(id_tag), controller.id
            )

    def find_transaction(self, csms_id: int) -> ConnectorController | None:
        for controller in self.connectors.values():
            tx = controller.tx
            if tx is not None and tx.record.csms_id == csms_id:
                return controller
        return None

    async def change_availability(self, connector_id: int, operative: bool) -> str:
        if connector_id == 0:
            self.ctx.availability.set(0, operative)
            self._refresh_station()
            results = [await c.set_availability(operative) for c in self.connectors.values()]
            return "Scheduled" if "Scheduled" in results else "Accepted"
        return await self.connectors[connector_id].set_availability(operative)

    async def stop_all(self, reason: str) -> None:
        for controller in self.connectors.values():
            await controller.stop(reason)

    async def safe_state(self) -> None:
        await self.hal.safe_state()

    # ------------------------------------------------------------ periodic work

    async def run_polling(self) -> None:
        """Poll every connector's meter and timers; wake early for a due sample."""
        while True:
            for controller in self.connectors.values():
                try:
                    await controller.poll()
                except Exception:
                    log.exception(
                        "connector %d poll failed",
                        controller.id,
                        extra={"connector": controller.id},
                    )
            now = self.ctx.clock.monotonic()
            wake = now + self.ctx.meter_poll_s
            for controller in self.connectors.values():
                due = controller.next_sample_due()
                if due is not None:
                    wake = min(wake, due)
            await asyncio.sleep(max(0.0, wake - now))

    async def run_clock_aligned(self) -> None:
        """Clock-aligned meter values every ClockAlignedDataInterval."""
        changed = asyncio.Event()
        self.ctx.settings.subscribe(
            lambda name: changed.set() if name == "aligned_interval_s" else None
        )
        while True:
            changed.clear()
            interval = self.ctx.settings.aligned_interval_s
            timeout: float | None = None
            if interval > 0:
                boundary = next_aligned(self.ctx.clock.now(), interval)
                timeout = max(0.0, (boundary - self.ctx.clock.now()).total_seconds())
            try:
                async with asyncio.timeout(timeout):
                    await changed.wait()
                continue
            except TimeoutError:
                pass
            for controller in self.connectors.values():
                await controller.aligned_sample(boundary)
