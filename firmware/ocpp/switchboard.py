"""``ocpp.version: auto``: both front-ends on one station, the connection's version speaking.

Each front-end keeps its own configuration (the 1.6 keys, the 2.0.1 device model)
and registers its handlers on the Rpc's table of its version, so a CSMS request
is always answered by the front-end of the connection it came on. What the
station reads follows the version in use (``Rpc.version``: the current
connection's, else the last one's; 1.6 before the first connection):

- the station settings, the queue's attempts, the local list's limits, the
  link's settings (security profile, password, ping interval) and the CSR's
  organisation come from the configuration of that version;
- a transaction's messages are written in the version its start was written in,
  to its end (a session that began over 1.6 ends with a StopTransaction even if
  the next connection speaks 2.0.1); a clock-aligned sample outside a
  transaction, in the version in use;
- jobs only 1.6 offers here (firmware update, diagnostics, GetLog, reservations)
  report through the 1.6 front-end and wait for a 1.6 connection;
- both front-ends manage certificates on the one store; a SignCertificate (a
  renewal, a resend) goes out only over a connection of the version that asks.

The queue delivers each message in the version it was written in
(``firmware.queue``), so a backlog of one version waits for a connection of it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any, cast

from firmware.auth.authorizer import AskCsms
from firmware.auth.cache import IdTagInfo
from firmware.connector.journal import TransactionJournal, TxChange
from firmware.connector.transactions import TransactionStore, TxRecord
from firmware.management.reporter import Reporter
from firmware.management.service import JobReporters
from firmware.metering import Sample
from firmware.ocpp.connection import Route
from firmware.ocpp.front_end import Core, FrontEnd, Loop, Reconnect
from firmware.ocpp.registration import BootProfile, Registration
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.status_notifier import StatusNotifier, StatusProfile
from firmware.ocpp.v201.front_end import V201FrontEnd
from firmware.ocpp.versions import V16, V201
from firmware.queue import Outbox
from firmware.settings import StationSettings


class SwitchingSettings:
    """The station settings of the version in use."""

    def __init__(self, choose: Callable[[], StationSettings], every: list[StationSettings]):
        self._choose = choose
        self._every = every

    def __getattr__(self, name: str) -> Any:
        return getattr(self._choose(), name)

    def subscribe(self, callback: Callable[[str], None]) -> None:
        for settings in self._every:
            settings.subscribe(callback)


class RoutingJournal:
    """Each transaction's messages in the version its start was written in."""

    def __init__(
        self,
        journals: Mapping[str, TransactionJournal],
        version: Callable[[], str],
        started_in_201: Callable[[int], bool],
    ) -> None:
        self.journals = journals
        self.version = version
        self._started_in_201 = started_in_201  # after a restart: the 2.0.1 journal's record
        self._of_tx: dict[int, str] = {}
        self._of_handle: dict[int, str] = {}

    def _journal(self, local_id: int) -> TransactionJournal:
        version = self._of_tx.get(local_id)
        if version is None:
            version = V201 if self._started_in_201(local_id) else V16
            self._of_tx[local_id] = version
        return self.journals[version]

    def started(self, record: TxRecord) -> int:
        version = self.version()
        self._of_tx[record.local_id] = version
        handle = self.journals[version].started(record)
        self._of_handle[handle] = version
        return handle

    async def answered(self, handle: int) -> bool:
        return await self.journals[self._of_handle.get(handle, V16)].answered(handle)

    def sampled(
        self, record: TxRecord, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        self._journal(record.local_id).sampled(record, sample, measurands, context, at)

    def kept(
        self, local_id: int, sample: Sample, measurands: list[str], context: str, at: datetime
    ) -> None:
        self._journal(local_id).kept(local_id, sample, measurands, context, at)

    def ended(
        self, record: TxRecord, meter_stop_wh: int, at: datetime, reason: str, id_tag: str | None
    ) -> None:
        self._journal(record.local_id).ended(record, meter_stop_wh, at, reason, id_tag)
        self._of_tx.pop(record.local_id, None)

    def authorized(self, record: TxRecord, at: datetime) -> int:
        journal = self._journal(record.local_id)
        handle = journal.authorized(record, at)
        self._of_handle[handle] = V201 if journal is self.journals.get(V201) else V16
        return handle

    def changed(
        self,
        record: TxRecord,
        change: TxChange,
        at: datetime,
        reason: str | None = None,
        id_tag: str | None = None,
    ) -> None:
        self._journal(record.local_id).changed(record, change, at, reason, id_tag)

    def outside(
        self, connector_id: int, sample: Sample, measurands: list[str], at: datetime
    ) -> None:
        self.journals[self.version()].outside(connector_id, sample, measurands, at)


class Switchboard:
    """``firmware.ocpp.front_end.FrontEnd`` over the 1.6 and the 2.0.1 front-end."""

    def __init__(self, v16: FrontEnd, v201: V201FrontEnd, rpc: Rpc) -> None:
        self.v201 = v201
        self.fronts: dict[str, FrontEnd] = {V16: v16, V201: v201}
        self.v16 = v16
        self.rpc = rpc
        self.settings = cast(
            StationSettings,
            SwitchingSettings(lambda: self.current.settings, [v16.settings, v201.settings]),
        )

    @property
    def current(self) -> FrontEnd:
        return self.fronts.get(self.rpc.version, self.v16)

    @property
    def version(self) -> str:
        return self.current.version

    # The profiles the app builds the one registration and status notifier from.
    @property
    def boot_profile(self) -> BootProfile:
        return self.v16.boot_profile

    @property
    def status_profile(self) -> StatusProfile:
        return self.v16.status_profile

    def bind(self, registration: Registration, notifier: StatusNotifier) -> None:
        for front in self.fronts.values():
            front.bind(registration, notifier)

    @property
    def registration(self) -> Registration:
        return self.v16.registration

    @property
    def notifier(self) -> StatusNotifier:
        return self.v16.notifier

    @property
    def ask_csms(self) -> AskCsms:
        async def ask(id_tag: str, timeout: float) -> IdTagInfo | None:
            return await self.current.ask_csms(id_tag, timeout)

        return ask

    @property
    def job_reporters(self) -> JobReporters:
        return self.v16.job_reporters

    @property
    def log_status(self) -> Reporter:
        return self.v16.log_status

    def message_attempts(self) -> int:
        return self.current.message_attempts()

    def message_retry_interval_s(self) -> int:
        return self.current.message_retry_interval_s()

    def local_list_enabled(self) -> bool:
        return self.current.local_list_enabled()

    def local_list_max_length(self) -> int:
        return self.current.local_list_max_length()

    def send_local_list_max_length(self) -> int:
        return self.current.send_local_list_max_length()

    def firmware_management(self) -> bool:
        return self.v16.firmware_management()

    def reservations_supported(self) -> bool:
        return self.v16.reservations_supported()

    def route(self) -> Route | None:
        return None  # auto dials ocpp.csms_url: network profiles need ocpp.version 2.0.1

    def security_profile(self) -> int:
        return self.current.security_profile()

    def revert_security_profile(self, profile: int) -> None:
        self.current.revert_security_profile(profile)

    def authorization_key(self) -> str:
        return self.current.authorization_key()

    def watch_secrets(self, secret: Callable[[str], None]) -> None:
        for front in self.fronts.values():
            front.watch_secrets(secret)

    def ping_interval_s(self) -> int:
        return self.current.ping_interval_s()

    def on_ping_interval_change(self, changed: Callable[[], None]) -> None:
        for front in self.fronts.values():
            front.on_ping_interval_change(changed)

    def organization(self) -> str:
        return self.current.organization()

    def max_chain_bytes(self) -> int:
        return self.current.max_chain_bytes()

    def configuration(self) -> dict[str, Any]:
        return {**self.fronts[V201].configuration(), **self.v16.configuration()}

    def journal(
        self,
        outbox: Outbox,
        transactions: TransactionStore,
        send_untracked: Callable[[str, dict[str, Any]], None],
    ) -> TransactionJournal:
        journals = {
            v: f.journal(outbox, transactions, send_untracked) for v, f in self.fronts.items()
        }
        return RoutingJournal(journals, lambda: self.version, self.v201.numbers.started)

    def attach(
        self,
        core: Core,
        *,
        reset: Callable[[str], Coroutine[Any, Any, None]],
        reconnect: Reconnect,
    ) -> None:
        for front in self.fronts.values():
            front.attach(core, reset=reset, reconnect=reconnect)

    def loops(self) -> list[Loop]:
        return [loop for front in self.fronts.values() for loop in front.loops()]
