"""The OCPP 1.6 front-end: the station as a 1.6 CSMS sees it.

It owns what is 1.6 and nothing else: the configuration keys (and the station
settings, link settings and queue settings read from them), the registration
(BootNotification, Heartbeat), StatusNotification, the transaction messages,
the status reporters of firmware, diagnostics and log jobs, and the handlers of
every CSMS→station action of the six feature profiles and the Security
Whitepaper. It is built in two steps, because the core needs some of it and it
needs the core:

1. ``V16FrontEnd(...)``: the configuration, the settings the core reads and the
   registration's and status notifier's profiles; ``bind()`` then takes the
   registration and notifier the app built and makes the reporters the core's
   jobs report through;
2. ``attach(core)``: with the core built, the handlers are registered on the
   Rpc; ``reporters`` then lists the reporter loops the app runs.

The app wires the core to this object only through what it hands over; an OCPP
2.0.1 front-end offers the same members over the device model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from firmware.clock import Clock
from firmware.config import Config
from firmware.connector.journal import TransactionJournal
from firmware.connector.transactions import TransactionStore
from firmware.management.service import JobReporters
from firmware.ocpp.connection import Route
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.front_end import Core, Loop, Reconnect
from firmware.ocpp.registration import Registration
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.status_notifier import StatusNotifier
from firmware.ocpp.status_reporter import StatusReporter
from firmware.ocpp.v16.authorize import ask_csms
from firmware.ocpp.v16.boot import V16Boot
from firmware.ocpp.v16.certificates import CertificateHandlers
from firmware.ocpp.v16.configuration import ConfigurationStore, StationFacts
from firmware.ocpp.v16.core import CoreHandlers
from firmware.ocpp.v16.extended_trigger import ExtendedTriggerHandlers
from firmware.ocpp.v16.firmware_management import FirmwareManagementHandlers
from firmware.ocpp.v16.local_auth_list import LocalAuthListHandlers
from firmware.ocpp.v16.remote_trigger import TriggerHandlers
from firmware.ocpp.v16.reservation import ReservationHandlers
from firmware.ocpp.v16.security_log import GetLogHandlers, add_extended_senders
from firmware.ocpp.v16.settings import ConfigurationSettings
from firmware.ocpp.v16.smart_charging import SmartChargingHandlers
from firmware.ocpp.v16.status import V16Status
from firmware.ocpp.v16.transactions import V16Journal
from firmware.queue import Outbox
from firmware.storage.db import Database

log = logging.getLogger("firmware.ocpp.front_end")

VERSION = "1.6"


class V16FrontEnd:
    version = VERSION

    def __init__(
        self, db: Database, config: Config, facts: StationFacts, rpc: Rpc, clock: Clock
    ) -> None:
        self.rpc = rpc
        self.clock = clock
        self.config = ConfigurationStore(
            db, config.ocpp.config, facts, vendor_prefixes=config.ocpp.vendor_key_prefixes
        )
        self.supports = self.config.supports
        self.settings = ConfigurationSettings(self.config)
        self.boot_profile = V16Boot(self.config, config.identity)
        self.status_profile = V16Status(self.config)
        self.ask_csms = ask_csms(rpc)
        self._journal: V16Journal | None = None
        self._core: Core | None = None
        self.certificate_handlers: CertificateHandlers | None = None

    def bind(self, registration: Registration, notifier: StatusNotifier) -> None:
        """The registration and status notifier the app built over this front-end's
        profiles (and, with ``ocpp.version: auto``, the other version's)."""
        self.registration = registration
        self.ready = registration.ready
        self.notifier = notifier
        self._job_reporters = [
            StatusReporter(self.rpc, "FirmwareStatusNotification", self.ready),
            StatusReporter(self.rpc, "SignedFirmwareStatusNotification", self.ready),
            StatusReporter(self.rpc, "DiagnosticsStatusNotification", self.ready),
        ]
        self.job_reporters = JobReporters(*self._job_reporters)
        self.log_status = StatusReporter(self.rpc, "LogStatusNotification", self.ready)
        # The reporter loops the app runs: each delivers one job kind's statuses.
        self.reporters: list[StatusReporter] = [self.log_status]

    # ------------------------------------------------------------ what the core reads

    def message_attempts(self) -> int:
        return self.config.get_int("TransactionMessageAttempts")

    def message_retry_interval_s(self) -> int:
        return self.config.get_int("TransactionMessageRetryInterval")

    def local_list_enabled(self) -> bool:
        return self.supports("LocalAuthListManagement") and self.config.get_bool(
            "LocalAuthListEnabled"
        )

    def local_list_max_length(self) -> int:
        return self.config.get_int("LocalAuthListMaxLength")

    def send_local_list_max_length(self) -> int:
        return self.config.get_int("SendLocalListMaxLength")

    def firmware_management(self) -> bool:
        return self.supports("FirmwareManagement")

    def reservations_supported(self) -> bool:
        return self.supports("Reservation")

    # ------------------------------------------------------------ the link

    def route(self) -> Route | None:
        return None  # 1.6 dials ocpp.csms_url

    def security_profile(self) -> int:
        return self.config.get_int("SecurityProfile")

    def revert_security_profile(self, profile: int) -> None:
        try:
            self.config.revert("SecurityProfile", str(profile))
        except Exception:
            log.exception("cannot store SecurityProfile %d", profile)

    def authorization_key(self) -> str:
        """The Basic auth password the CSMS set (empty: none)."""
        return self.config.get("AuthorizationKey")

    def watch_secrets(self, secret: Callable[[str], None]) -> None:
        secret(self.authorization_key())

        def config_changed(key: str, value: str) -> None:
            if key == "AuthorizationKey":
                secret(value)

        self.config.subscribe(config_changed)

    def ping_interval_s(self) -> int:
        return self.config.get_int("WebSocketPingInterval")

    def on_ping_interval_change(self, changed: Callable[[], None]) -> None:
        def config_changed(key: str, _value: str) -> None:
            if key == "WebSocketPingInterval":
                changed()

        self.config.subscribe(config_changed)

    def organization(self) -> str:
        """The O= of the station's CSR."""
        return self.config.get("CpoName")

    def max_chain_bytes(self) -> int:
        return self.config.get_int("CertificateSignedMaxChainSize")

    def configuration(self) -> dict[str, Any]:
        """The known configuration, for a diagnostics archive."""
        known, _ = self.config.get_configuration(None)
        return {"configuration": known}

    # ------------------------------------------------------------ the core's events

    def journal(
        self,
        outbox: Outbox,
        transactions: TransactionStore,
        send_untracked: Callable[[str, dict[str, Any]], None],
    ) -> TransactionJournal:
        """The transaction messages, queued durably in 1.6."""
        self._journal = V16Journal(outbox, transactions, send_untracked)
        return self._journal

    # ------------------------------------------------------------ CSMS → station

    def attach(
        self,
        core: Core,
        *,
        reset: Callable[[str], Coroutine[Any, Any, None]],
        reconnect: Reconnect,
    ) -> None:
        """Register every 1.6 handler over ``core`` on the Rpc."""
        rpc = self.rpc
        self._core = core
        self._reconnect = reconnect
        handlers = CoreHandlers(
            core.station, self.config, core.cache, self.registration, reset=reset
        )
        handlers.remote_start_profile_ok = core.smart.remote_start_profile_ok
        handlers.after_change = self._after_change
        handlers.register(rpc)
        self.core_handlers = handlers
        ReservationHandlers(core.reservations).register(rpc)
        SmartChargingHandlers(core.smart).register(rpc)
        LocalAuthListHandlers(core.local_list).register(rpc)
        self.triggers = TriggerHandlers(core.station, self.registration, self.notifier)
        # A profile left out of SupportedFeatureProfiles: its actions are NotSupported.
        if self.supports("RemoteTrigger"):
            self.triggers.register(rpc)
        if self.firmware_management():
            updater, diagnostics = core.firmware.updater, core.firmware.diagnostics
            FirmwareManagementHandlers(updater, diagnostics).register(rpc)
            self.reporters += self._job_reporters
        else:
            self.triggers.withdraw("DiagnosticsStatusNotification", "FirmwareStatusNotification")
        self.triggers.firmware_status = core.firmware.current_firmware_status
        self.triggers.diagnostics_status = core.firmware.current_diagnostics_status
        self._attach_security_log(core)
        self._attach_certificates(core)
        if self._journal is not None:
            self._journal.answers_to(core.station)

    def _attach_security_log(self, core: Core) -> None:
        """GetLog; ExtendedTriggerMessage and its senders."""
        rpc = self.rpc
        GetLogHandlers(core.log_uploads).register(rpc)
        self.triggers.bind(rpc)
        self.extended_triggers = ExtendedTriggerHandlers()
        add_extended_senders(self.extended_triggers, self.triggers, core.log_uploads, rpc)
        if self.triggers.sender("FirmwareStatusNotification") is not None:
            # The security extension's firmware status is the signed one (whitepaper L01).
            self.extended_triggers.add(
                "FirmwareStatusNotification", self._send_signed_firmware_status
            )
        self.extended_triggers.register(rpc)

    def _attach_certificates(self, core: Core) -> None:
        handlers = CertificateHandlers(
            self.rpc,
            core.certificates,
            core.enrolment,
            self.config,
            self.clock,
            core.security_events,
            ready=self.ready,
            root_in_use=core.root_in_use,
        )
        handlers.register(self.rpc)
        self.config.subscribe(handlers.config_changed)
        self.extended_triggers.add(
            "SignChargePointCertificate", handlers.sign_charge_point_certificate
        )
        self.certificate_handlers = handlers

    async def _send_signed_firmware_status(self, _connector_id: int | None) -> None:
        assert self._core is not None
        payload = self._core.firmware.current_signed_firmware_status()
        try:
            await self.rpc.call("SignedFirmwareStatusNotification", payload)
        except CallFailed as err:
            log.warning("triggered SignedFirmwareStatusNotification not delivered: %s", err)

    def _after_change(self, key: str) -> Reconnect | None:
        """Reconnect once the answer is out: with the new profile, or the new key in use."""
        name = key.casefold()
        if name == "securityprofile":
            log.info("SecurityProfile raised; reconnecting")
            return self._reconnect
        if name == "authorizationkey" and self.security_profile() in (1, 2):
            log.info("AuthorizationKey changed; reconnecting with the new key")
            return self._reconnect
        return None

    def loops(self) -> list[Loop]:
        """The certificate handlers' loop (renewal, pending CSRs) and the reporters'."""
        assert self.certificate_handlers is not None
        loops: list[Loop] = [("certificates", self.certificate_handlers.run)]
        return loops + [(f"{r.action}-reporter", r.run) for r in self.reporters]
