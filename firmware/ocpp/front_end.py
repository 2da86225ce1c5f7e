"""What app.py wires between the station's core and a protocol front-end.

A front-end (``ocpp/v16/front_end.py``, ``ocpp/v201/front_end.py``) speaks one
OCPP version for the whole station. It is built in two steps, because the core
needs some of it and it needs the core:

1. the constructor: the version's configuration store, the settings the core
   reads, the profiles of the registration and the status notifier; ``bind``
   takes the registration and notifier the app built over them (one pair for
   both front-ends with ``ocpp.version: auto``, ``ocpp/switchboard.py``);
2. ``attach(core)``: with the core built, every handler is registered on the
   Rpc; ``loops()`` then lists the front-end's own loops for the app to run.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from firmware.auth.authorizer import AskCsms
from firmware.auth.cache import AuthCache
from firmware.auth.local_list import LocalAuthList
from firmware.connector.journal import TransactionJournal
from firmware.connector.transactions import TransactionStore
from firmware.management.log_upload import LogUploads
from firmware.management.reporter import Reporter
from firmware.management.service import FirmwareManagement, JobReporters
from firmware.ocpp.connection import Route
from firmware.ocpp.registration import BootProfile, Registration
from firmware.ocpp.status_notifier import StatusNotifier, StatusProfile
from firmware.queue import Outbox
from firmware.reservations.service import Reservations
from firmware.security.enrolment import Enrolment
from firmware.security.recorder import SecurityEvents
from firmware.security.store import CertificateStore, InstalledRoot
from firmware.settings import StationSettings
from firmware.smart_charging.manager import SmartCharging
from firmware.station import Station

Reconnect = Callable[[], Coroutine[Any, Any, None]]
Loop = tuple[str, Callable[[], Coroutine[Any, Any, None]]]


@dataclass(frozen=True, slots=True)
class Core:
    """The station's parts a front-end speaks for."""

    station: Station
    cache: AuthCache
    local_list: LocalAuthList
    reservations: Reservations
    smart: SmartCharging
    firmware: FirmwareManagement
    log_uploads: LogUploads
    certificates: CertificateStore
    enrolment: Enrolment
    security_events: SecurityEvents
    root_in_use: Callable[[InstalledRoot], bool]


class FrontEnd(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def settings(self) -> StationSettings: ...

    @property
    def boot_profile(self) -> BootProfile: ...

    @property
    def status_profile(self) -> StatusProfile: ...

    def bind(self, registration: Registration, notifier: StatusNotifier) -> None:
        """The registration and status notifier the app built over the profiles."""

    @property
    def registration(self) -> Registration: ...

    @property
    def notifier(self) -> StatusNotifier: ...

    @property
    def ask_csms(self) -> AskCsms: ...

    @property
    def job_reporters(self) -> JobReporters: ...

    @property
    def log_status(self) -> Reporter: ...

    # What the core and the queue read
    def message_attempts(self) -> int: ...
    def message_retry_interval_s(self) -> int: ...
    def local_list_enabled(self) -> bool: ...
    def local_list_max_length(self) -> int: ...
    def send_local_list_max_length(self) -> int: ...
    def firmware_management(self) -> bool: ...
    def reservations_supported(self) -> bool: ...

    # The link
    def route(self) -> Route | None:
        """Which CSMS each connection attempt dials; None: ``ocpp.csms_url``."""

    def security_profile(self) -> int: ...
    def revert_security_profile(self, profile: int) -> None: ...
    def authorization_key(self) -> str: ...
    def watch_secrets(self, secret: Callable[[str], None]) -> None:
        """Call ``secret(value)`` with every secret the CSMS set, now and when it changes."""

    def ping_interval_s(self) -> int: ...
    def on_ping_interval_change(self, changed: Callable[[], None]) -> None: ...
    def organization(self) -> str: ...
    def max_chain_bytes(self) -> int: ...
    def configuration(self) -> dict[str, Any]: ...

    def journal(
        self,
        outbox: Outbox,
        transactions: TransactionStore,
        send_untracked: Callable[[str, dict[str, Any]], None],
    ) -> TransactionJournal: ...

    def attach(
        self,
        core: Core,
        *,
        reset: Callable[[str], Coroutine[Any, Any, None]],
        reconnect: Reconnect,
    ) -> None: ...

    def loops(self) -> list[Loop]: ...
