"""One connector: session sequencing, hardware reconciliation, status.

When a transaction starts and ends follows the settings' transaction points
(OCPP 2.0.1's TxStartPoint and TxStopPoint; 1.6's rule is the default):

- it starts when the vehicle is plugged in and a token is accepted
  (PowerPathClosed); with "Authorized" a token starts it before the vehicle
  comes (which must come within the connection timeout, else it ends with
  reason Timeout); with "EVConnected" the vehicle starts it before a token,
  and energy waits for one;
- it ends when the vehicle leaves or the authorization ends (a stop tap, a
  remote stop): PowerPathClosed. Without "Authorized" (nor PowerPathClosed) an
  ended authorization only withdraws the energy and the transaction ends when
  the vehicle leaves; without "EVConnected" a vehicle leaving does not end it,
  as with StopTransactionOnEVSideDisconnect false.
- the connector locks once a transaction is authorized and a vehicle plugged in.

Every public coroutine runs under the connector's lock, so events are handled
one at a time; while it is held, log lines carry the connector and its
transaction. After each event ``_reconcile`` drives the hardware towards
what the state allows (offered current, relay) and ``_refresh`` reports the
derived status. The relay opens on any doubt: whenever a step fails, the
desired state is recomputed and energy is withdrawn first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from firmware import logs
from firmware.auth.cache import IdTagInfo
from firmware.connector.context import ConnectorContext
from firmware.connector.journal import TxChange
from firmware.connector.overcurrent import OvercurrentMonitor
from firmware.connector.power import PowerPath
from firmware.connector.sampling import Sampler
from firmware.connector.session import ActiveTx, PendingAuth
from firmware.connector.status import FATAL, Status, StatusInputs, derive_status
from firmware.metering import Sample
from hal.errors import MeterError
from hal.interfaces import ConnectorHardware, Fault, MeterReading, PilotState
from hal.tokens import Tag

log = logging.getLogger("firmware.connector")


def _no_reservation(_connector_id: int, _id_tag: str, _parent: str | None) -> int | None:
    return None


# The stop reasons that end an authorization rather than the vehicle's connection.
DEAUTHORIZING = frozenset({"Local", "Remote", "DeAuthorized", "MasterPass"})
ENDS_ON_UNPLUG = frozenset({"EVConnected", "PowerPathClosed"})
ENDS_ON_DEAUTHORIZATION = frozenset({"Authorized", "PowerPathClosed"})

MIN_CURRENT_A = 6.0
DRAWING_THRESHOLD_A = 0.5
# How often the running transaction's meter reading is saved when no periodic
# sample does it (the meterStop of a transaction ended by a power cut).
METER_SNAPSHOT_S = 15.0


class Limiter(Protocol):
    """Smart charging, as a controller sees it."""

    def session_changed(self, connector_id: int, tx: ActiveTx | None) -> float | None:
        """A session started, was confirmed (``tx``) or ended (None); returns the limit."""


class ConnectorController:
    def __init__(self, hw: ConnectorHardware, ctx: ConnectorContext) -> None:
        self.hw = hw
        self.id = hw.connector_id
        self.ctx = ctx
        self._lock = asyncio.Lock()
        self.pilot: PilotState = hw.evse.pilot
        self.faults: set[Fault] = set()
        self.operative = ctx.availability.get(self.id)
        self.scheduled_operative: bool | None = None
        # Withheld from new sessions while a firmware update waits or installs
        # (Unavailable once idle; not persisted: a restart ends it).
        self.held = False
        self.pending: PendingAuth | None = None
        self.tx: ActiveTx | None = None
        self.finishing = False
        self.limit_a: float | None = None  # smart charging limit, None = none
        self.limiter: Limiter | None = None
        self.reading: MeterReading | None = None
        self.power = PowerPath(hw, ctx.clock.monotonic)
        self.overcurrent = OvercurrentMonitor(ctx.overcurrent_margin_a, ctx.overcurrent_time_s)
        self.sampler = Sampler(ctx, self.id)
        self._last_persist = 0.0
        self.status: Status | None = None
        self._on_status: list[Callable[[int, Status], None]] = []
        # Reservation profile: shown as Reserved; the reservation a starting
        # transaction ends (its id goes into StartTransaction).
        self.reserved = False
        self.claim_reservation: Callable[[int, str, str | None], int | None] = _no_reservation

    # ------------------------------------------------------------ queries

    def subscribe(self, callback: Callable[[int, Status], None]) -> None:
        self._on_status.append(callback)

    @property
    def effective_operative(self) -> bool:
        return self.operative and not self.held and self.ctx.availability.station_operative()

    @property
    def fatal(self) -> bool:
        return bool(self.faults & FATAL) or self.pilot.is_error

    def can_start(self) -> bool:
        """Free for a new authorization (tap-first, remote start): no transaction, or one
        the vehicle started that waits for a token."""
        return (
            (self.tx is None or self._awaits_token(self.tx))
            and self.effective_operative
            and not self.fatal
            and self.pending is None
        )

    @staticmethod
    def _awaits_token(tx: ActiveTx) -> bool:
        return not tx.authorized and tx.deauthorized is None

    def _starts_on(self, point: str) -> bool:
        return point in self.ctx.settings.tx_start_points

    def _ends_on(self, points: frozenset[str]) -> bool:
        return bool(points & self.ctx.settings.tx_stop_points)

    def offered_target_a(self) -> float:
        limit = self.ctx.board.max_current_a
        if self.hw.evse.cable_rating_a is not None:
            limit = min(limit, self.hw.evse.cable_rating_a)
        if self.limit_a is not None:
            limit = min(limit, self.limit_a)
        return limit

    def _status_inputs(self) -> StatusInputs:
        tx = self.tx
        drawing = False
        if self.reading is not None:
            drawing = max(self.reading.current_a) > DRAWING_THRESHOLD_A
        grace = 2 * self.ctx.meter_poll_s
        if (
            self.hw.relay.commanded_closed
            and self.ctx.clock.monotonic() - self.power.closed_at < grace
        ):
            drawing = True
        return StatusInputs(
            operative=self.effective_operative,
            pilot=self.pilot,
            faults=frozenset(self.faults),
            transaction=tx is not None and (tx.confirmed or tx.energy_allowed or tx.invalid),
            authorized=self.pending is not None or (tx is not None and not tx.confirmed),
            energy_allowed=tx is not None and tx.energy_allowed and not tx.invalid,
            limit_ok=self.offered_target_a() >= MIN_CURRENT_A,
            relay_closed=self.hw.relay.commanded_closed,
            ev_drawing=drawing,
            finishing=self.finishing,
            reserved=self.reserved,
        )

    def snapshot(self) -> dict[str, Any]:
        tx = self.tx
        reading = self.reading
        return {
            "id": self.id,
            "status": self.status.status if self.status else None,
            "error_code": self.status.error_code if self.status else "NoError",
            "transaction_id": (tx.record.csms_id if tx else None),
            "local_transaction_id": tx.local_id if tx else None,
            "id_tag": (tx.id_tag or None)
            if tx
            else (self.pending.id_tag if self.pending else None),
            "relay_closed": self.hw.relay.commanded_closed,
            "locked": self.hw.lock.locked if self.hw.lock else None,
            "offered_current_a": self.hw.evse.offered_current_a,
            "limit_a": self.limit_a,
            "power_w": round(reading.power_w, 1) if reading else 0.0,
            "energy_wh": round(reading.energy_wh, 1) if reading else None,
            "session_energy_wh": (
                round(max(reading.energy_wh - tx.record.meter_start_wh, 0.0), 1)
                if tx and reading
                else None
            ),
            "pilot": self.pilot.value,
            "faults": sorted(f.value for f in self.faults),
        }

    # ------------------------------------------------------------ plumbing

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        async with self._lock:
            with logs.context(connector=self.id, transaction=self._transaction_id):
                yield

    def _transaction_id(self) -> int | None:
        return self.tx.local_id if self.tx is not None else None

    def set_reserved(self, reserved: bool) -> None:
        if reserved != self.reserved:
            self.reserved = reserved
            if self.status is not None:
                self._refresh()

    def _refresh(self) -> None:
        status = derive_status(self._status_inputs())
        if status != self.status:
            self.status = status
            for callback in self._on_status:
                callback(self.id, status)

    async def _reconcile(self) -> None:
        """Drive offer and relay towards what the state allows."""
        tx = self.tx
        target = self.offered_target_a()
        allowed = (
            tx is not None
            and tx.energy_allowed
            and not tx.invalid
            and not self.fatal
            and Fault.METER_OFFLINE not in self.faults
            and self.pilot.plugged
            and target >= MIN_CURRENT_A
        )
        commanded_before = self.power.close_commanded_at
        self.faults |= await self.power.drive(
            target if allowed else 0.0, allowed and self.pilot.requests_energy
        )
        if tx is not None and self.power.close_commanded_at != commanded_before:
            self.ctx.taps.energized(tx.id_tag, self.power.close_commanded_at)

    async def _withdraw(self) -> None:
        self.faults |= await self.power.withdraw()

    async def _read(self) -> MeterReading | None:
        try:
            self.reading = await self.hw.meter.read()
        except MeterError as err:
            log.warning("connector %d meter read failed: %s", self.id, err)
        return self.reading

    def _energy_wh(self) -> float:
        if self.reading is not None:
            return self.reading.energy_wh
        if self.tx is not None:
            return self.tx.record.last_meter_wh
        return 0.0

    def _sample(self) -> Sample | None:
        if self.reading is None:
            return None
        bms = self.hw.bms
        return Sample(
            self.reading,
            self.hw.evse.offered_current_a,
            bms.soc_percent if bms else None,
            self.ctx.board.phases,
            self.ctx.board.nominal_voltage_v,
        )

    # ------------------------------------------------------------ events

    async def start(self) -> None:
        async with self._turn():
            self.pilot = self.hw.evse.pilot
            await self._read()
            await self._reconcile()
            self._refresh()

    async def on_pilot(self, state: PilotState) -> None:
        async with self._turn():
            previous, self.pilot = self.pilot, state
            log.info("connector %d pilot %s -> %s", self.id, previous.value, state.value)
            if state is PilotState.A:
                self.finishing = False
                # Latched until the vehicle leaves; the next vehicle gets a new close attempt.
                self.faults.discard(Fault.OVERCURRENT)
                self.faults.discard(Fault.CONTACTOR_FAILED_TO_CLOSE)
                if self.tx is not None:
                    await self._vehicle_left(self.tx)
                elif self.hw.lock is not None and self.hw.lock.locked:
                    await self._unlock_quietly()
            if state.plugged and not previous.plugged:
                await self._vehicle_came()
            await self._reconcile()
            self._refresh()

    async def _vehicle_left(self, tx: ActiveTx) -> None:
        if (
            tx.deauthorized is not None  # its authorization ended earlier: reported then
            or not tx.authorized
            or tx.invalid
            or (self.ctx.settings.stop_on_ev_disconnect and self._ends_on(ENDS_ON_UNPLUG))
        ):
            await self._stop("EVDisconnected", None)
        else:
            self._journal_change(tx, TxChange.EV_DISCONNECTED)
            if self.hw.lock is not None and self.ctx.settings.unlock_on_ev_disconnect:
                await self._reconcile()
                await self._unlock_quietly()

    async def _vehicle_came(self) -> None:
        tx = self.tx
        if self.pending is not None:
            seq = await self._begin_transaction()
            if seq is not None:
                self._spawn_confirmation_wait(seq)
        elif tx is not None:
            tx.ev_deadline = None
            self._journal_change(tx, TxChange.EV_CONNECTED)
            if tx.authorized and tx.deauthorized is None and not await self.power.lock():
                self.faults.add(Fault.LOCK_FAILURE)
        elif self._starts_on("EVConnected") and self.effective_operative and not self.fatal:
            await self._begin_transaction()

    def _journal_change(
        self,
        tx: ActiveTx,
        change: TxChange,
        reason: str | None = None,
        id_tag: str | None = None,
    ) -> None:
        with self.ctx.db.transaction():
            self.ctx.journal.changed(tx.record, change, self.ctx.clock.now(), reason, id_tag)

    async def on_fault(self, fault: Fault, active: bool) -> None:
        async with self._turn():
            if active:
                self.faults.add(fault)
                log.warning("connector %d fault %s", self.id, fault.value)
            else:
                self.faults.discard(fault)
                log.info("connector %d fault %s cleared", self.id, fault.value)
            if active and fault is Fault.EMERGENCY_STOP and self.tx is not None:
                await self._withdraw()
                await self._stop("EmergencyStop", None)
            await self._reconcile()
            self._refresh()

    async def authorize(
        self,
        id_tag: str,
        info: IdTagInfo,
        *,
        offline: bool,
        charging_profile: dict[str, Any] | None = None,
    ) -> bool:
        """An accepted authorization for this connector. False if it cannot be taken."""
        async with self._turn():
            tx = self.tx
            if not self.effective_operative or self.fatal:
                return False
            if tx is not None and not self._awaits_token(tx):
                return False
            timeout = self.ctx.settings.connection_timeout_s
            self.pending = PendingAuth(
                id_tag,
                info,
                offline,
                self.ctx.clock.monotonic() + timeout,
                charging_profile,
            )
            seq = None
            if tx is not None:
                seq = await self._authorize_transaction(tx)
            elif self.pilot.plugged or self._starts_on("Authorized"):
                seq = await self._begin_transaction()
            await self._reconcile()
            self._refresh()
        if seq is not None:
            with logs.context(connector=self.id, transaction=self._transaction_id):
                await self._await_confirmation(seq)
        return True

    def _spawn_confirmation_wait(self, seq: int) -> None:
        self.ctx.spawn(self._await_confirmation(seq))

    async def _begin_transaction(self) -> int | None:
        """Lock, persist the transaction and queue its start, for the pending
        authorization (none: the vehicle started it, TxStartPoint EVConnected). Under
        the lock. Returns the start's handle for an authorized transaction."""
        auth, self.pending = self.pending, None
        self.finishing = False
        plugged = self.pilot.plugged
        if auth is not None and plugged and not await self.power.lock():
            self.faults.add(Fault.LOCK_FAILURE)
            return None
        await self._read()
        meter_start = round(self._energy_wh())
        now = self.ctx.clock.now()
        id_tag = auth.id_tag if auth is not None else ""
        parent = auth.info.parent_id_tag if auth is not None else None
        db = self.ctx.db
        with db.transaction():
            reservation_id = (
                self.claim_reservation(self.id, id_tag, parent) if auth is not None else None
            )
            record = self.ctx.transactions.open(
                self.id, id_tag, parent, meter_start, now, reservation_id
            )
            seq = self.ctx.journal.started(record)
            self.sampler.begin(record.local_id, meter_start, now, self._sample())
        self.tx = ActiveTx(
            record,
            auth.info if auth is not None else IdTagInfo("Accepted"),
            offline=(auth is not None and auth.offline) or not self.ctx.online(),
            start_seq=seq,
            next_sample_at=self.ctx.clock.monotonic() + self._sample_interval(),
            charging_profile=auth.charging_profile if auth is not None else None,
            authorized=auth is not None,
        )
        if not plugged:
            timeout = self.ctx.settings.connection_timeout_s
            self.tx.ev_deadline = self.ctx.clock.monotonic() + timeout
        self._session_changed()
        log.info(
            "connector %d transaction %d started %s (meterStart %d Wh)",
            self.id,
            record.local_id,
            f"for {Tag(id_tag)}" if auth is not None else "by the vehicle, before a token",
            meter_start,
        )
        if auth is None:
            return None  # no energy before a token
        if self.tx.offline:
            self.tx.energy_allowed = True  # decided offline: the CSMS learns of it later
        return seq

    async def _authorize_transaction(self, tx: ActiveTx) -> int | None:
        """The pending authorization becomes the token of ``tx``, which the vehicle
        started; energy follows the CSMS's answer as after a start. Under the lock."""
        auth, self.pending = self.pending, None
        assert auth is not None
        if self.pilot.plugged and not await self.power.lock():
            self.faults.add(Fault.LOCK_FAILURE)
            return None
        with self.ctx.db.transaction():
            self.ctx.transactions.authorize(tx.local_id, auth.id_tag, auth.info.parent_id_tag)
            tx.record.id_tag = auth.id_tag
            tx.record.parent_id_tag = auth.info.parent_id_tag
            seq = self.ctx.journal.authorized(tx.record, self.ctx.clock.now())
        tx.authorized = True
        tx.info = auth.info
        tx.confirmed = False
        tx.start_seq = seq
        tx.offline = auth.offline or not self.ctx.online()
        tx.charging_profile = auth.charging_profile
        self._session_changed()
        log.info(
            "connector %d transaction %d authorized for %s",
            self.id,
            tx.local_id,
            Tag(auth.id_tag),
        )
        if tx.offline:
            tx.energy_allowed = True
        return seq

    async def _await_confirmation(self, seq: int) -> None:
        """Energize once StartTransaction is Accepted, or by offline policy on timeout."""
        tx = self.tx
        if tx is None or tx.start_seq != seq or tx.energy_allowed:
            return
        try:
            async with asyncio.timeout(self.ctx.response_timeout_s):
                answered = await asyncio.shield(self.ctx.journal.answered(seq))
        except TimeoutError:
            answered = False
        if answered:
            return  # the answer was applied as a command (start_confirmed)
        log.warning("connector %d: the CSMS did not confirm the transaction's start", self.id)
        async with self._turn():
            if self.tx is tx and not tx.confirmed and not tx.energy_allowed:
                decision = self.ctx.offline_decision(tx.id_tag)
                if decision:
                    tx.offline = True
                    tx.energy_allowed = True
                else:
                    await self._stop("DeAuthorized", None)
            await self._reconcile()
            self._refresh()

    def start_confirmed(self, local_id: int, csms_id: int, info: IdTagInfo) -> None:
        """StartTransaction.conf arrived (called inside the outbox's db transaction).

        Its parentIdTag is the transaction's group from now on (a tag of that
        group stops it), in the record and at once in memory, so a tap that
        comes before the confirmation is applied already sees it.
        """
        self.ctx.transactions.confirm(local_id, csms_id, info.status, info.parent_id_tag)
        tx = self.tx
        if tx is not None and tx.local_id == local_id and info.parent_id_tag is not None:
            tx.record.parent_id_tag = info.parent_id_tag
        self.ctx.spawn(self._apply_confirmation(local_id, csms_id, info))

    async def _apply_confirmation(self, local_id: int, csms_id: int, info: IdTagInfo) -> None:
        async with self._turn():
            tx = self.tx
            if tx is None or tx.local_id != local_id:
                return
            tx.record.csms_id = csms_id
            tx.confirmed = True
            self._session_changed()
            if not tx.authorized or tx.deauthorized is not None:
                return  # nothing to energize: the answer to a start without a token
            tx.info = info
            log.info(
                "connector %d transaction %d is CSMS id %d (%s)",
                self.id,
                local_id,
                csms_id,
                info.status,
            )
            if info.accepted:
                tx.energy_allowed = True
            elif self.ctx.settings.stop_on_invalid_id:
                cap = self.ctx.settings.max_energy_on_invalid_id_wh
                delivered = self._energy_wh() - tx.record.meter_start_wh
                if cap > 0 and delivered < cap and tx.energy_allowed:
                    tx.energy_cap_wh = tx.record.meter_start_wh + cap
                else:
                    await self._stop("DeAuthorized", None)
            else:
                tx.invalid = True
                tx.energy_allowed = False
            await self._reconcile()
            self._refresh()

    async def stop(self, reason: str, id_tag: str | None = None) -> bool:
        async with self._turn():
            tx = self.tx
            if tx is None:
                return False
            if (
                reason in DEAUTHORIZING
                and self.pilot.plugged
                and tx.authorized
                and not self._ends_on(ENDS_ON_DEAUTHORIZATION)
            ):
                await self._deauthorize(tx, reason, id_tag)
            else:
                await self._stop(reason, id_tag)
            await self._reconcile()
            self._refresh()
            return True

    async def _deauthorize(self, tx: ActiveTx, reason: str, id_tag: str | None) -> None:
        """The authorization ends and the energy with it; the transaction ends when the
        vehicle leaves (TxStopPoint without Authorized)."""
        if tx.deauthorized is not None:
            return
        tx.energy_allowed = False
        tx.deauthorized = (reason, id_tag)
        await self._withdraw()
        self._journal_change(tx, TxChange.DEAUTHORIZED, reason, id_tag)
        log.info(
            "connector %d transaction %d: authorization ended (%s); it ends when the "
            "vehicle leaves",
            self.id,
            tx.local_id,
            reason,
        )

    async def _stop(self, reason: str, id_tag: str | None) -> None:
        tx = self.tx
        assert tx is not None
        tx.energy_allowed = False
        await self._withdraw()
        await self._read()
        now = self.ctx.clock.now()
        meter_stop = max(round(self._energy_wh()), tx.record.meter_start_wh)
        with self.ctx.db.transaction():
            self.sampler.end(tx.local_id, now, self._sample())
            self.ctx.journal.ended(tx.record, meter_stop, now, reason, id_tag)
            self.ctx.transactions.close(tx.local_id, meter_stop, now, reason, id_tag)
        log.info(
            "connector %d transaction %d stopped: %s (meterStop %d Wh)",
            self.id,
            tx.local_id,
            reason,
            meter_stop,
        )
        self.tx = None
        self._session_changed()
        self.finishing = self.pilot.plugged
        keep_locked = reason == "EVDisconnected" and not self.ctx.settings.unlock_on_ev_disconnect
        if not keep_locked:
            await self._unlock_quietly()
        if self.scheduled_operative is not None:
            self._apply_availability(self.scheduled_operative)

    async def _unlock_quietly(self) -> bool:
        if await self.power.unlock():
            return True
        self.faults.add(Fault.LOCK_FAILURE)
        return False

    # ------------------------------------------------------------ CSMS commands

    async def unlock(self) -> str:
        async with self._turn():
            if self.hw.lock is None:
                return "NotSupported"
            if self.tx is not None:
                await self._stop("UnlockCommand", None)
            ok = await self._unlock_quietly()
            if ok:
                self.faults.discard(Fault.LOCK_FAILURE)
            await self._reconcile()
            self._refresh()
            return "Unlocked" if ok else "UnlockFailed"

    async def set_availability(self, operative: bool) -> str:
        async with self._turn():
            if self.tx is not None and not operative:
                self.scheduled_operative = operative
                self.ctx.availability.set(self.id, operative)
                return "Scheduled"
            self._apply_availability(operative)
            await self._reconcile()
            self._refresh()
            return "Accepted"

    def _apply_availability(self, operative: bool) -> None:
        self.scheduled_operative = None
        self.operative = operative
        self.ctx.availability.set(self.id, operative)
        if not operative:
            self.pending = None

    def _session_changed(self) -> None:
        if self.limiter is None:
            return
        try:
            self.limit_a = self.limiter.session_changed(self.id, self.tx)
        except Exception:
            log.exception("connector %d charging limit not updated", self.id)

    async def apply_limit(self, limit_a: float | None) -> None:
        """The smart charging limit (A per phase; None: none); below 6 A the session pauses."""
        async with self._turn():
            if limit_a == self.limit_a:
                return
            log.info("connector %d charging limit %s A", self.id, limit_a)
            self.limit_a = limit_a
            await self._reconcile()
            self._refresh()

    async def hold(self, held: bool) -> None:
        """Refuse new sessions (a running one goes on) until released."""
        async with self._turn():
            self.held = held
            if held:
                self.pending = None
            await self._reconcile()
            self._refresh()

    async def refresh(self) -> None:
        """Re-evaluate after a station-wide change (availability, limit)."""
        async with self._turn():
            await self._reconcile()
            self._refresh()

    # ------------------------------------------------------------ metering

    def next_sample_due(self) -> float | None:
        """Monotonic time of the next periodic sample, None without one."""
        tx = self.tx
        if tx is None or self._sample_interval() <= 0:
            return None
        return tx.next_sample_at

    def _sample_interval(self) -> int:
        return self.ctx.settings.sample_interval_s

    async def poll(self) -> None:
        """One meter poll: readings, periodic samples, timeouts, energy caps."""
        async with self._turn():
            now_mono = self.ctx.clock.monotonic()
            await self._read()
            self._check_overcurrent(now_mono)
            if self.pending is not None and now_mono >= self.pending.expires_at:
                log.info(
                    "connector %d authorization for %s timed out", self.id, Tag(self.pending.id_tag)
                )
                self.pending = None
            tx = self.tx
            if tx is not None and tx.ev_deadline is not None and now_mono >= tx.ev_deadline:
                log.info("connector %d: no vehicle within the connection timeout", self.id)
                await self._stop("Timeout", None)
                tx = None
            if tx is not None:
                await self._poll_transaction(tx, now_mono)
            await self._reconcile()
            self._refresh()

    def _check_overcurrent(self, now_mono: float) -> None:
        reading = self.reading
        if reading is None or Fault.OVERCURRENT in self.faults:
            return
        measured = max(reading.current_a)
        if self.overcurrent.update(now_mono, measured, self.hw.evse.offered_current_a):
            log.error(
                "connector %d overcurrent: %.1f A drawn, %.1f A offered; cutting off",
                self.id,
                measured,
                self.hw.evse.offered_current_a,
            )
            self.faults.add(Fault.OVERCURRENT)
            self.overcurrent.reset()

    async def _poll_transaction(self, tx: ActiveTx, now_mono: float) -> None:
        energy = self._energy_wh()
        now = self.ctx.clock.now()
        if tx.energy_cap_wh is not None and energy >= tx.energy_cap_wh:
            await self._stop("DeAuthorized", None)
            return
        interval = self._sample_interval()
        if interval > 0 and now_mono >= tx.next_sample_at - 0.005:
            tx.next_sample_at = max(tx.next_sample_at + interval, now_mono + interval / 2)
            sample = self._sample()
            if sample is not None:
                self.sampler.periodic(tx.record, sample, now)
            self._last_persist = now_mono
        elif now_mono - self._last_persist >= METER_SNAPSHOT_S:
            with self.ctx.db.transaction(durable=False):
                self.ctx.transactions.record_meter(tx.local_id, energy, now)
            self._last_persist = now_mono

    async def current_sample(self) -> Sample | None:
        """A fresh reading of this connector (TriggerMessage MeterValues)."""
        async with self._turn():
            await self._read()
            return self._sample()

    async def aligned_sample(self, at: datetime) -> None:
        """Clock-aligned sample: queued in a transaction, sent when online otherwise."""
        async with self._turn():
            await self._read()
            sample = self._sample()
            if sample is not None:
                self.sampler.aligned(self.tx.record if self.tx else None, sample, at)
