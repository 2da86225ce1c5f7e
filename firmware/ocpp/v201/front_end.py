"""The OCPP 2.0.1 front-end: the station as a 2.0.1 CSMS sees it.

The device model (``device_model``) is its configuration: the station settings
(``settings``), the link's (SecurityCtrlr.SecurityProfile and BasicAuthPassword,
OCPPCommCtrlr.WebSocketPingInterval) and the queue's
(OCPPCommCtrlr.MessageAttempts[TransactionEvent],
MessageAttemptInterval[TransactionEvent]) are read from it. Registration
(``boot``), StatusNotification (``status``), TransactionEvent (``transactions``),
Authorize (``authorize``) and the handlers of provisioning, control, reset,
TriggerMessage, the local list and the certificates (A02, A03 and M03-M05 on
the shared security layer, ``certificates``; no ISO 15118 certificate types)
are this module's, and the network profiles (``network``: which CSMS each
connection attempt dials, SetNetworkProfile, the security profile only ever
raised); see the README's OCPP 2.0.1 section for the use cases. Firmware
management, diagnostics, GetLog, reservations and smart-charging requests are
not offered in 2.0.1 (their requests are NotSupported), so their jobs never
start and report nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from firmware.auth.authorizer import AskCsms
from firmware.clock import Clock
from firmware.config import Config
from firmware.connector.journal import TransactionJournal
from firmware.connector.transactions import TransactionStore
from firmware.management.service import JobReporters
from firmware.ocpp.connection import Route
from firmware.ocpp.front_end import Core, Loop, Reconnect
from firmware.ocpp.registration import Registration
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.status_notifier import StatusNotifier
from firmware.ocpp.v201.authorize import ask_csms
from firmware.ocpp.v201.boot import V201Boot, boot_reason
from firmware.ocpp.v201.certificates import CertificateHandlers
from firmware.ocpp.v201.control import ControlHandlers, RemoteStarts
from firmware.ocpp.v201.device_model import ACTUAL, Change, Component, DeviceModel, Variable
from firmware.ocpp.v201.device_model.startup import Resolved, resolve
from firmware.ocpp.v201.local_list import LocalListHandlers
from firmware.ocpp.v201.network import (
    Dialer,
    NetworkHandlers,
    NetworkProfile,
    NetworkProfiles,
)
from firmware.ocpp.v201.provisioning import ProvisioningHandlers
from firmware.ocpp.v201.reset import ResetHandlers
from firmware.ocpp.v201.settings import station_settings
from firmware.ocpp.v201.states import StateMirror
from firmware.ocpp.v201.status import V201Status
from firmware.ocpp.v201.transactions import TransactionNumbers, V201Journal
from firmware.ocpp.v201.trigger import TriggerHandlers
from firmware.ocpp.versions import V201
from firmware.queue import Outbox
from firmware.security.events import SecurityEvent
from firmware.security.runs import PreviousRun
from firmware.security.store import RootKind
from firmware.storage.db import Database

log = logging.getLogger("firmware.ocpp.front_end")

COMM = Component("OCPPCommCtrlr")
SECURITY = Component("SecurityCtrlr")
LOCAL_LIST = Component("LocalAuthListCtrlr")
TX_EVENT = "TransactionEvent"


class Unoffered:
    """A job reporter of a job 2.0.1 does not offer here: nothing starts such a job, and
    a status that came anyway is logged, not sent."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.on_delivered: Callable[[str], None] | None = None

    def report(self, status: str, request_id: int | None = None) -> None:
        log.warning("%s %s not reported: OCPP 2.0.1 does not offer it here", self.what, status)

    async def flush(self, timeout: float) -> bool:
        return True  # nothing is ever waiting


class V201FrontEnd:
    version = V201

    def __init__(
        self,
        db: Database,
        config: Config,
        rpc: Rpc,
        clock: Clock,
        *,
        previous_run: Callable[[], PreviousRun | None],
        network_profiles: bool = True,
    ) -> None:
        self.db = db
        self.rpc = rpc
        self.clock = clock
        resolved = resolve(config)
        self.topology = resolved.station.topology
        self.model = DeviceModel(resolved.catalog, db, resolved.overrides, clock=clock.now)
        self.settings = station_settings(self.model)
        # ``network_profiles`` False (``ocpp.version: auto``): ocpp.csms_url is dialled and
        # SetNetworkProfile is refused.
        self._network_profiles = network_profiles
        self.network = NetworkProfiles(db, self.model, _configured_profile(config, resolved))
        self.dialer = Dialer(self.network, self.model)
        self._previous_run = previous_run
        self.boot_profile = V201Boot(self.model, config.identity, self._boot_reason)
        self.status_profile = V201Status(self.topology)
        self.ask_csms: AskCsms = ask_csms(rpc)
        self.job_reporters = JobReporters(
            Unoffered("firmware status"),
            Unoffered("signed firmware status"),
            Unoffered("diagnostics status"),
        )
        self.log_status = Unoffered("log upload status")
        self.numbers = TransactionNumbers(db)
        self.remote_starts = RemoteStarts()
        self._journal: V201Journal | None = None
        self._outbox: Outbox | None = None
        self._certificates: CertificateHandlers | None = None

    def bind(self, registration: Registration, notifier: StatusNotifier) -> None:
        """The registration and status notifier the app built over this front-end's
        profiles (and, with ``ocpp.version: auto``, the other version's)."""
        self.registration = registration
        self.ready = registration.ready
        self.notifier = notifier
        self.dialer.on_switch = registration.register_again

    def _boot_reason(self) -> str:
        previous = self._previous_run()
        return "PowerUp" if previous is None else boot_reason(previous)

    # ------------------------------------------------------------ what the core reads

    def message_attempts(self) -> int:
        return self.model.get_int(COMM, Variable("MessageAttempts", TX_EVENT))

    def message_retry_interval_s(self) -> int:
        return self.model.get_int(COMM, Variable("MessageAttemptInterval", TX_EVENT))

    def local_list_enabled(self) -> bool:
        return self.model.get_bool(LOCAL_LIST, "Enabled")

    def local_list_max_length(self) -> int:
        spec = self.model.spec(LOCAL_LIST, "Entries")
        limit = spec.characteristics.max_limit
        return int(limit) if limit is not None else 10000

    def send_local_list_max_length(self) -> int:
        return self.model.get_int(LOCAL_LIST, "ItemsPerMessage")

    def firmware_management(self) -> bool:
        return False

    def reservations_supported(self) -> bool:
        return False

    # ------------------------------------------------------------ the link

    def route(self) -> Route | None:
        return self.dialer if self._network_profiles else None

    def security_profile(self) -> int:
        """The security profile of the next connection attempt: its network profile's."""
        if self._network_profiles:
            return self.dialer.security_profile()
        return self.model.get_int(SECURITY, "SecurityProfile")

    def revert_security_profile(self, profile: int) -> None:
        """Not called: 2.0.1 has no profile trials (the dialer falls back instead)."""
        log.error("SecurityProfile %d did not work", profile)

    def authorization_key(self) -> str:
        return self.model.get_str(SECURITY, "BasicAuthPassword")

    def watch_secrets(self, secret: Callable[[str], None]) -> None:
        secret(self.authorization_key())

        def changed(change: Change) -> None:
            if change.component == SECURITY and change.variable.name == "BasicAuthPassword":
                secret(change.value)

        self.model.subscribe(changed)

    def ping_interval_s(self) -> int:
        return self.model.get_int(COMM, "WebSocketPingInterval")

    def on_ping_interval_change(self, changed: Callable[[], None]) -> None:
        def model_changed(change: Change) -> None:
            if change.component == COMM and change.variable.name == "WebSocketPingInterval":
                changed()

        self.model.subscribe(model_changed)

    def organization(self) -> str:
        return self.model.get_str(SECURITY, "OrganizationName")

    def max_chain_bytes(self) -> int:
        return self.model.get_int(SECURITY, "MaxCertificateChainSize")

    def configuration(self) -> dict[str, Any]:
        return {"ocpp_version": V201}

    # ------------------------------------------------------------ the core's events

    def journal(
        self,
        outbox: Outbox,
        transactions: TransactionStore,
        send_untracked: Callable[[str, dict[str, Any]], None],
    ) -> TransactionJournal:
        self._outbox = outbox
        self._send_untracked = send_untracked
        self._journal = V201Journal(
            outbox,
            transactions,
            self.numbers,
            self.topology,
            online=lambda: self.rpc.connected and self.ready.is_set(),
            send=send_untracked,
            remote_start=self.remote_starts.take,
            clock=self.clock.now,
        )
        return self._journal

    # ------------------------------------------------------------ CSMS → station

    def attach(
        self,
        core: Core,
        *,
        reset: Callable[[str], Coroutine[Any, Any, None]],
        reconnect: Reconnect,
    ) -> None:
        assert self._journal is not None and self._outbox is not None
        rpc = self.rpc
        self._reconnect = reconnect
        ProvisioningHandlers(self.model, rpc, self.clock, after_set=self._after_set).register(rpc)
        ControlHandlers(
            core.station,
            self.topology,
            self.numbers,
            self._outbox,
            core.cache,
            self.remote_starts,
            accepted=lambda: self.registration.accepted,
            profile_ok=core.smart.remote_start_profile_ok,
        ).register(rpc)
        ResetHandlers(core.station, self.topology, reset, core.station.ctx.spawn).register(rpc)
        certificates = CertificateHandlers(
            rpc,
            self.model,
            core.certificates,
            core.enrolment,
            self.clock,
            ready=self.ready,
            root_in_use=core.root_in_use,
        )
        certificates.register(rpc)
        self._certificates = certificates
        TriggerHandlers(
            core.station,
            self.topology,
            self.registration,
            self.notifier,
            self._journal,
            rpc,
            sign_certificate=certificates.sign_charging_station_certificate,
        ).register(rpc)
        LocalListHandlers(core.local_list).register(rpc)
        self._attach_network(core)
        self._journal.answers_to(core.station)
        self._journal.follow_charging(core.station)
        mirror = StateMirror(self.model, self.topology, self.db, self.clock, notify=self._notify)
        core.station.subscribe(mirror.status_changed)

    def _attach_network(self, core: Core) -> None:
        certificates = core.certificates
        self.network.has_csms_root = lambda: bool(certificates.roots(RootKind.CSMS))
        self.network.has_client_certificate = lambda: certificates.identity() is not None
        self.model.guard(COMM, "NetworkConfigurationPriority", self.network.check_priority)
        if not self._network_profiles:
            self.rpc.on("SetNetworkProfile", _refuse_network_profile, version=V201)
            return
        NetworkHandlers(self.network).register(self.rpc)

        def timeout(seconds: float) -> None:
            self.rpc.response_timeout_s = seconds

        self.model.provide(
            COMM,
            Variable("MessageTimeout", "Default"),
            lambda: str(max(1, math.ceil(self.rpc.response_timeout_s))),
        )

        def raised(old: int, new: int, slot: int) -> None:
            core.security_events.raise_event(
                SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                f"SecurityProfile raised from {old} to {new} on network profile {slot}",
            )

        self.dialer.on_timeout = timeout
        self.dialer.on_raise = raised

    def _notify(self, payload: dict[str, Any]) -> None:
        """A NotifyEvent, sent while online (a Problem is in the device model anyway)."""
        if self.rpc.version == V201:
            self._send_untracked("NotifyEvent", payload)

    def _after_set(self, component: str, variable: str) -> Reconnect | None:
        """A new Basic auth password is used on a new connection (A01): reconnect once
        the SetVariables answer is out."""
        password = (component, variable) == (SECURITY.name, "BasicAuthPassword")
        if password and self.security_profile() in (1, 2):
            log.info("BasicAuthPassword changed; reconnecting with the new password")
            return self._reconnect
        return None

    def loops(self) -> list[Loop]:
        """The certificates' loop: renewal (A03) and SignCertificate resends."""
        assert self._certificates is not None
        return [("certificates-2.0.1", self._certificates.run)]


def _configured_profile(config: Config, resolved: Resolved) -> NetworkProfile:
    """Slot 1: the configuration file's CSMS, at the file's (or the built-in) security
    profile, not the one stored since (a raised profile is another slot's)."""
    spec = resolved.catalog.get(SECURITY, Variable("SecurityProfile"))
    profile = spec.attributes[ACTUAL].default
    for override in resolved.overrides:
        if override.spec.key == spec.key and override.attribute is ACTUAL:
            profile = override.value
    return NetworkProfile(
        url=config.ocpp.csms_url,
        security_profile=int(profile),
        message_timeout_s=config.ocpp.response_timeout_s,
    )


async def _refuse_network_profile(_req: dict[str, Any]) -> Reply:
    return Reply(
        {
            "status": "Rejected",
            "statusInfo": {
                "reasonCode": "UnsupportedRequest",
                "additionalInfo": "network profiles need ocpp.version 2.0.1 (this is auto)",
            },
        }
    )
