"""Composition root: build everything from the config, run it in one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from firmware import __version__, stop_signals
from firmware.api import ApiServer, build_app
from firmware.auth.authorizer import Authorizer
from firmware.auth.cache import AuthCache
from firmware.auth.local_list import LocalAuthList
from firmware.clock import Clock, iso
from firmware.config import Config
from firmware.connector.availability import AvailabilityStore
from firmware.connector.context import ConnectorContext
from firmware.connector.transactions import TransactionStore
from firmware.errors import ConfigError
from firmware.logs import redact
from firmware.management.log_upload import LogUploads
from firmware.management.service import FirmwareManagement, JobReporters
from firmware.ocpp.connection import Backoff, Connection, LinkState
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.link_tracker import LinkTracker
from firmware.ocpp.registration import Registration
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.status_notifier import StatusNotifier
from firmware.ocpp.status_reporter import StatusReporter
from firmware.ocpp.v16.authorize import ask_csms
from firmware.ocpp.v16.certificates import CertificateHandlers
from firmware.ocpp.v16.configuration import ConfigurationStore
from firmware.ocpp.v16.core import CoreHandlers
from firmware.ocpp.v16.extended_trigger import ExtendedTriggerHandlers
from firmware.ocpp.v16.firmware_management import FirmwareManagementHandlers
from firmware.ocpp.v16.local_auth_list import LocalAuthListHandlers
from firmware.ocpp.v16.remote_trigger import TriggerHandlers
from firmware.ocpp.v16.reservation import ReservationHandlers
from firmware.ocpp.v16.security_log import GetLogHandlers, add_extended_senders
from firmware.ocpp.v16.settings import ConfigurationSettings
from firmware.ocpp.v16.smart_charging import SmartChargingHandlers
from firmware.ocpp.v16.transactions import V16Journal
from firmware.ocpp.versions import AUTO, FRONT_ENDS, offered
from firmware.preflight import certificate_file, station_facts
from firmware.prometheus import StationMetrics
from firmware.queue import Outbox
from firmware.reservations.service import Reservations
from firmware.reservations.store import ReservationStore
from firmware.security import provisioning
from firmware.security.certificates import valid_at
from firmware.security.detectors import SecurityWatch, report_start
from firmware.security.enrolment import Enrolment
from firmware.security.events import SecurityEvent
from firmware.security.link import LinkSecurity
from firmware.security.recorder import SecurityEvents
from firmware.security.runs import MARKER_NAME, RunRecord
from firmware.security.security_log import SecurityLog
from firmware.security.store import CertificateStore, RootKind
from firmware.service_notify import ServiceNotifier, Watchdog, link_status
from firmware.smart_charging.manager import SmartCharging
from firmware.station import Station
from firmware.storage.db import Database
from firmware.web.ui import WebUi
from hal.registry import build_backend

log = logging.getLogger("firmware.app")
frames_log = logging.getLogger("firmware.ocpp.frames")

RESET_REASONS = {"Soft": "SoftReset", "Hard": "HardReset"}


class App:
    """The running daemon. ``run()`` returns True when it should restart (Reset);
    ``hard_reset`` then tells a Reset Hard from the other restarts."""

    def __init__(self, config: Config, service: ServiceNotifier | None = None) -> None:
        self.config = config
        self.service = service if service is not None else ServiceNotifier()
        self._link_changed = asyncio.Event()
        self._status_task: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._spawned: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._stop_reason = "Reboot"
        self._restart = False
        self._reloading_sent = False
        self.hard_reset = False
        self.api_port: int | None = None
        self.started_at = time.time()
        self._started = time.monotonic()

        self.db = Database(config.state_dir / "state.db")
        self.hal = build_backend(
            config.hal.backend, config.hal.options, config.connectors, config.board
        )
        self.clock = Clock()
        self.security_log = SecurityLog(
            self.db,
            max_entries=config.security_log.max_entries,
            max_bytes=config.security_log.max_bytes,
        )
        # Every security event goes into the security log; critical ones to the CSMS too.
        self.security_events = SecurityEvents(self.db, self.security_log, self.clock.now)
        self.certificates = CertificateStore(
            config.state_dir / "security", sink=self.security_events
        )
        provisioning.apply(
            self.certificates,
            provisioning.load(config.security, config.ocpp.charge_point_id, datetime.now(UTC)),
        )
        self.link = LinkTracker(self.clock.now)
        self.ocpp_config = ConfigurationStore(
            self.db,
            config.ocpp.config,
            replace(
                station_facts(config),
                has_csms_root=lambda: bool(self.certificates.roots(RootKind.CSMS)),
                has_client_certificate=self._has_client_certificate,
            ),
            vendor_prefixes=config.ocpp.vendor_key_prefixes,
        )
        self._refuse_a_lowered_transport()
        supports = self.ocpp_config.supports
        self.rpc = Rpc(
            response_timeout_s=config.ocpp.response_timeout_s,
            max_frame_bytes=config.ocpp.max_frame_bytes,
            spawn=self.spawn,
            frame_log=self._log_frame,
            dead_link_timeouts=config.ocpp.dead_link_timeouts,
        )
        self.notifier: StatusNotifier
        self.registration = Registration(
            self.rpc,
            self.ocpp_config,
            config.identity,
            self.clock,
            boot_retry_s=config.ocpp.boot_retry_s,
            on_online=self._on_online,
        )
        self.notifier = StatusNotifier(
            self.rpc, self.ocpp_config, self.clock, self.registration.ready
        )
        self.outbox = Outbox(
            self.db,
            self.rpc,
            self.clock,
            ready=self.registration.ready,
            attempts=lambda: self.ocpp_config.get_int("TransactionMessageAttempts"),
            retry_interval_s=lambda: self.ocpp_config.get_int("TransactionMessageRetryInterval"),
            max_messages=config.queue.max_messages,
            max_bytes=config.queue.max_bytes,
            batch_max=config.queue.replay_batch_max,
            batch_bytes=config.queue.replay_batch_bytes,
        )
        self.security_events.deliver_through(self.outbox)
        self.cache = AuthCache(self.db, self.clock)
        self.local_list = LocalAuthList(
            self.db,
            enabled=lambda: (
                supports("LocalAuthListManagement")
                and self.ocpp_config.get_bool("LocalAuthListEnabled")
            ),
            max_length=lambda: self.ocpp_config.get_int("LocalAuthListMaxLength"),
            send_max_length=lambda: self.ocpp_config.get_int("SendLocalListMaxLength"),
        )
        self.settings = ConfigurationSettings(self.ocpp_config)
        self.authorizer = Authorizer(
            self.cache,
            self.settings,
            ask_csms(self.rpc),
            self.clock,
            online=self.online,
            local_list=self.local_list,
            authorize_timeout_s=config.ocpp.authorize_timeout_s,
        )
        self.transactions = TransactionStore(self.db)
        journal = V16Journal(self.outbox, self.transactions, self._send_untracked)
        ctx = ConnectorContext(
            db=self.db,
            transactions=self.transactions,
            journal=journal,
            settings=self.settings,
            availability=AvailabilityStore(self.db),
            clock=self.clock,
            board=config.board,
            spawn=self.spawn,
            online=self.online,
            offline_decision=lambda tag: self.authorizer.offline_decision(tag).accepted,
            response_timeout_s=config.ocpp.response_timeout_s,
            meter_poll_s=config.meter_poll_s,
            overcurrent_margin_a=config.safety.overcurrent_margin_a,
            overcurrent_time_s=config.safety.overcurrent_time_s,
        )
        self.station = Station(self.hal, ctx, self.authorizer, self.notifier.report)
        self.core = CoreHandlers(
            self.station, self.ocpp_config, self.cache, self.registration, reset=self.reset
        )
        self.core.register(self.rpc)
        self.reservations = Reservations(
            ReservationStore(self.db),
            self.station,
            self.settings,
            self.clock,
            supported=supports("Reservation"),
        )
        ReservationHandlers(self.reservations).register(self.rpc)
        self.smart = SmartCharging(
            self.db, self.settings, self.clock, config.board, self.station.connectors
        )
        self.core.remote_start_profile_ok = self.smart.remote_start_profile_ok
        SmartChargingHandlers(self.smart).register(self.rpc)
        LocalAuthListHandlers(self.local_list).register(self.rpc)
        self.triggers = TriggerHandlers(self.station, self.registration, self.notifier)
        # A profile left out of SupportedFeatureProfiles: its actions are NotSupported.
        if supports("RemoteTrigger"):
            self.triggers.register(self.rpc)
        # The first ManufacturerRootCertificate(s) are provisioned from the file, as
        # the first CSMS root is; later ones come from InstallCertificate.
        self.certificates.import_roots(
            RootKind.MANUFACTURER,
            certificate_file(config.security.manufacturer_root_ca, "security.manufacturer_root_ca"),
        )
        ready = self.registration.ready
        job_reporters = [
            StatusReporter(self.rpc, "FirmwareStatusNotification", ready),
            StatusReporter(self.rpc, "SignedFirmwareStatusNotification", ready),
            StatusReporter(self.rpc, "DiagnosticsStatusNotification", ready),
        ]
        self.firmware = FirmwareManagement(
            config,
            self.db,
            ready,
            self.clock,
            self.station,
            reporters=JobReporters(*job_reporters),
            state=self._diagnostics_state,
            restart=self._restart_after_install,
            events=self.security_events,
            manufacturer_roots=lambda: self.certificates.roots(RootKind.MANUFACTURER),
        )
        # Status reporters the run starts: each delivers one job kind's statuses.
        self.reporters: list[StatusReporter] = []
        if supports("FirmwareManagement"):
            FirmwareManagementHandlers(self.firmware.updater, self.firmware.diagnostics).register(
                self.rpc
            )
            self.reporters += job_reporters
        else:
            self.triggers.withdraw("DiagnosticsStatusNotification", "FirmwareStatusNotification")
        self.triggers.firmware_status = self.firmware.current_firmware_status
        self.triggers.diagnostics_status = self.firmware.current_diagnostics_status
        self._build_security_log_handlers()
        journal.answers_to(self.station)
        self.link_security = LinkSecurity(
            self.certificates,
            charge_point_id=config.ocpp.charge_point_id,
            tls=config.ocpp.csms_url.startswith("wss://"),
            profile=lambda: self.ocpp_config.get_int("SecurityProfile"),
            revert_profile=self._revert_security_profile,
            password=self._password,
            sink=self.security_events,
            now=self.clock.now,
        )
        self._build_certificate_management()
        self.core.after_change = self._after_change
        self.connection = Connection(
            self.rpc,
            csms_url=config.ocpp.csms_url,
            charge_point_id=config.ocpp.charge_point_id,
            auth=self.link_security,
            ping_interval_s=lambda: self.ocpp_config.get_int("WebSocketPingInterval"),
            backoff=Backoff(
                config.ocpp.reconnect_min_s,
                config.ocpp.reconnect_max_s,
                spread_s=config.ocpp.reconnect_spread_s,
            ),
            open_timeout_s=config.ocpp.response_timeout_s,
            on_state=self._link_state,
            stable_after_s=config.ocpp.backoff_reset_after_s,
            proof=self.registration.prove_link,
            versions=offered(config.ocpp.version),
            check_version=self._check_version,
        )
        self.ocpp_config.subscribe(self._config_changed)
        self._watch_security()
        api = build_app(self.status, self.hal.plant, token=config.api.token)
        self.web = WebUi(
            status=self.status,
            power=lambda: [c.snapshot()["power_w"] for c in self.station.connectors.values()],
            now=self.clock.now,
            has_plant=self.hal.plant is not None,
        )
        self.web.install(api)
        self.station.subscribe(lambda _cid, _status: self.web.changed())
        StationMetrics(
            status=self.status,
            calls=self.rpc.stats,
            taps=self.station.ctx.taps.histogram,
            db=self.db,
            connections=lambda: self.connection.connections,
            started_at=self.started_at,
        ).install(api)
        self.api = ApiServer(api, config.api.host, config.api.port)

    # ------------------------------------------------------------ wiring helpers

    def _build_security_log_handlers(self) -> None:
        """GetLog and LogStatusNotification; ExtendedTriggerMessage and its senders."""
        log_status = StatusReporter(self.rpc, "LogStatusNotification", self.registration.ready)
        self.reporters.append(log_status)
        self.log_uploads = LogUploads(
            self.config.diagnostics,
            self.config.ocpp.charge_point_id,
            self.config.state_dir / "logs",
            self.security_log,
            self._diagnostics_state,
            log_status,
            self.clock,
        )
        GetLogHandlers(self.log_uploads).register(self.rpc)
        self.triggers.bind(self.rpc)
        self.extended_triggers = ExtendedTriggerHandlers()
        add_extended_senders(self.extended_triggers, self.triggers, self.log_uploads, self.rpc)
        if self.triggers.sender("FirmwareStatusNotification") is not None:
            # The security extension's firmware status is the signed one (whitepaper L01).
            self.extended_triggers.add(
                "FirmwareStatusNotification", self._send_signed_firmware_status
            )
        self.extended_triggers.register(self.rpc)

    async def _send_signed_firmware_status(self, _connector_id: int | None) -> None:
        payload = self.firmware.current_signed_firmware_status()
        try:
            await self.rpc.call("SignedFirmwareStatusNotification", payload)
        except CallFailed as err:
            log.warning("triggered SignedFirmwareStatusNotification not delivered: %s", err)

    def _watch_security(self) -> None:
        """The security events the station detects itself (firmware.security.detectors)."""
        settings = self.config.security_log
        self.security_watch = SecurityWatch(
            self.security_events,
            time_change_s=settings.time_change_s,
            event_repeat_s=settings.event_repeat_s,
            rss_limit_mb=settings.rss_limit_mb,
            memory_check_s=settings.memory_check_s,
        )
        self.rpc.invalid_message = self.security_watch.invalid_messages.note
        self.clock.subscribe(self.security_watch.clock.adjusted)
        self.station.fault_observers.append(self.security_watch.tamper.fault_changed)
        self.db.on_full = self.security_watch.memory.storage_full
        self.runs = RunRecord(self.db, self.config.state_dir / MARKER_NAME)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the app's TaskGroup; its errors are logged, not fatal."""
        if self._tg is None:
            coro.close()
            raise RuntimeError("the app is not running")
        task = self._tg.create_task(self._guarded(coro))
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    @staticmethod
    async def _guarded(coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except CallFailed as err:
            log.warning("background call failed: %s", err)
        except Exception:
            log.exception("background task failed")

    def online(self) -> bool:
        return self.rpc.connected and self.registration.ready.is_set()

    def _password(self) -> str | None:
        """The Basic auth password (sent at security profiles 1 and 2 only)."""
        key = self.ocpp_config.get("AuthorizationKey")
        return key or self.config.ocpp.password

    def _build_certificate_management(self) -> None:
        self.enrolment = Enrolment(
            self.certificates,
            self.security_events,
            charge_point_id=self.config.ocpp.charge_point_id,
            organization=lambda: self.ocpp_config.get("CpoName"),
            max_chain_bytes=lambda: self.ocpp_config.get_int("CertificateSignedMaxChainSize"),
            renew_before=timedelta(days=self.config.security.renew_before_days),
            now=self.clock.now,
        )
        self.certificate_handlers = CertificateHandlers(
            self.rpc,
            self.certificates,
            self.enrolment,
            self.ocpp_config,
            self.clock,
            self.security_events,
            ready=self.registration.ready,
            root_in_use=self.link_security.root_in_use,
        )
        self.certificate_handlers.register(self.rpc)
        self.ocpp_config.subscribe(self.certificate_handlers.config_changed)
        # The table the security log's part created and registered (one handler per action).
        self.extended_triggers.add(
            "SignChargePointCertificate", self.certificate_handlers.sign_charge_point_certificate
        )

    def _refuse_a_lowered_transport(self) -> None:
        """A profile the CSMS raised to 2 or 3 never runs over ws:// (a file edited since)."""
        profile = self.ocpp_config.get_int("SecurityProfile")
        if profile >= 2 and not self.config.ocpp.csms_url.startswith("wss://"):
            raise ConfigError(
                f"ocpp.csms_url: the station is at SecurityProfile {profile} (raised by the "
                "CSMS), which needs a wss:// URL"
            )

    def _has_client_certificate(self, valid_now: bool) -> bool:
        identity = self.certificates.identity()
        if identity is None:
            return False
        return not valid_now or valid_at(identity.certificate, self.clock.now())

    def _revert_security_profile(self, profile: int) -> None:
        try:
            self.ocpp_config.revert("SecurityProfile", str(profile))
        except Exception:
            log.exception("cannot store SecurityProfile %d", profile)

    def _after_change(self, key: str) -> Callable[[], Coroutine[Any, Any, None]] | None:
        """Reconnect once the answer is out: with the new profile, or the new key in use."""
        name = key.casefold()
        if name == "securityprofile":
            log.info("SecurityProfile raised; reconnecting")
            return self.connection.close
        if name == "authorizationkey" and self.ocpp_config.get_int("SecurityProfile") in (1, 2):
            log.info("AuthorizationKey changed; reconnecting with the new key")
            return self.connection.close
        return None

    def _log_frame(self, direction: str, text: str) -> None:
        if frames_log.isEnabledFor(logging.DEBUG):
            frames_log.debug("%s %s", "→" if direction == "out" else "←", redact(text))
        self.web.frame(direction, text)

    @staticmethod
    def _check_version(version: str) -> str | None:
        """Refuse a connection in a version no front-end here speaks: nothing would half-work."""
        if version in FRONT_ENDS:
            return None
        return f"the CSMS selected OCPP {version}, and this build has no OCPP {version} front-end"

    def _ocpp_version(self) -> str | None:
        """The version in use: of the current or last connection, else the configured one."""
        if self.connection.version is not None:
            return self.connection.version
        return None if self.config.ocpp.version == AUTO else self.config.ocpp.version

    def _config_changed(self, key: str, value: str) -> None:
        if key == "WebSocketPingInterval":
            self.connection.ping_changed.set()

    async def _on_online(self) -> None:
        self._link_changed.set()
        self.outbox.wake()
        self.smart.reevaluate()  # the CSMS clock may have been adopted
        await self.notifier.resync()

    def _link_state(self, state: LinkState) -> None:
        self.link.update(state)
        self._link_changed.set()
        self.web.changed()

    def _service_status(self) -> str:
        return link_status(self.connection.state, self.registration.status, self.online())

    async def _report_service_status(self, last: str) -> None:
        """Keep systemd's STATUS= in step with the link to the CSMS."""
        while True:
            self._link_changed.clear()
            text = self._service_status()
            if text != last:
                self.service.status(text)
                last = text
            # A Pending or Rejected boot raises no event: look again each second.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._link_changed.wait()

    def _send_untracked(self, action: str, message: dict[str, Any]) -> None:
        if self.online():
            self.spawn(self._call_quietly(action, message))

    async def _call_quietly(self, action: str, payload: dict[str, Any]) -> None:
        try:
            await self.rpc.call(action, payload)
        except CallFailed as err:
            log.info("%s not delivered: %s", action, err)

    def status(self) -> dict[str, Any]:
        station = self.station.status0
        return {
            "charge_point_id": self.config.ocpp.charge_point_id,
            "firmware_version": self.config.identity.firmware_version or __version__,
            "csms_url": redact(self.config.ocpp.csms_url),
            "hal_backend": self.config.hal.backend,
            "started_at": iso(self.clock.now() - timedelta(seconds=self.uptime_s())),
            "uptime_s": round(self.uptime_s(), 1),
            "ocpp": {
                "version": self._ocpp_version(),
                "connected": self.rpc.connected,
                "registration": self.registration.status,
                "queued": self.outbox.pending(),
                "dropped": self.outbox.dropped,
                "thinned": self.outbox.thinned,
                "link": self.link.summary(),
                "reconnects": max(self.connection.connections - 1, 0),
            },
            "station": {
                "status": station.status if station else None,
                "error_code": station.error_code if station else "NoError",
                "faults": sorted(f.value for f in self.station.station_faults),
            },
            "connectors": [c.snapshot() for c in self.station.connectors.values()],
            **self.firmware.status(),
            "metrics": self.station.ctx.taps.snapshot(),
        }

    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def _diagnostics_state(self) -> dict[str, Any]:
        """The state summary of a GetDiagnostics archive (secrets scrubbed there)."""
        known, _ = self.ocpp_config.get_configuration(None)
        return {"status": self.status(), "configuration": known}

    # ------------------------------------------------------------ life cycle

    def request_stop(self, reason: str = "Reboot", restart: bool = False) -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            self._restart = restart
            self._stop.set()
        elif self._restart and not restart:
            # A stop (SIGTERM, SIGINT) during the shutdown for a restart wins: whoever
            # sent it wants the daemon gone, not back. The shutdown goes on as it is.
            log.warning("stop requested while shutting down to restart: exiting instead")
            self._restart = False
            if self._reloading_sent:
                self.service.stopping(f"stopping ({self._stop_reason})")

    def _restart_after_install(self) -> None:
        if not self._stop.is_set():
            self.security_events.raise_event(
                SecurityEvent.RESET_OR_REBOOT, "restart to run the installed firmware"
            )
        self.request_stop("Reboot", restart=True)

    async def reset(self, kind: str) -> None:
        log.warning("%s reset requested by the CSMS", kind)
        if not self._stop.is_set():
            self.hard_reset = kind == "Hard"
            self.security_events.raise_event(
                SecurityEvent.RESET_OR_REBOOT, f"Reset {kind} requested by the CSMS"
            )
        self.request_stop(RESET_REASONS.get(kind, "Other"), restart=True)

    async def run(self) -> bool:
        loop = asyncio.get_running_loop()
        stop_signals.listen(loop, lambda: self.request_stop("Reboot", restart=False))
        self.security_watch.memory.install(loop)
        try:
            await self.hal.safe_state()
            await self.api.start()
            self.api_port = self.api.port
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tasks = [tg.create_task(self.hal.run(), name="hal")]
                previous = self.runs.begin(iso(self.clock.now()))
                report_start(self.security_events, previous, self.config.identity.firmware_version)
                # With the HAL running (meters polled, emulators up), before anything is sent.
                recovered = await self.station.recover_after_power_loss()
                if recovered:
                    log.warning("%d transaction(s) ended with reason PowerLoss", recovered)
                self.reservations.drop_expired()
                tasks += [
                    tg.create_task(self.station.run_events(), name="hal-events"),
                    tg.create_task(self.connection.run(), name="connection"),
                    tg.create_task(self.registration.run(), name="registration"),
                    tg.create_task(self.notifier.run(), name="status"),
                    tg.create_task(self.outbox.run(), name="outbox"),
                    tg.create_task(self.certificate_handlers.run(), name="certificates"),
                    tg.create_task(self.security_events.run(), name="security-log"),
                    tg.create_task(self.security_watch.run(), name="security-watch"),
                ]
                tasks += [
                    tg.create_task(r.run(), name=f"{r.action}-reporter") for r in self.reporters
                ]
                if self.ocpp_config.supports("FirmwareManagement"):
                    tasks.append(tg.create_task(self.firmware.run(), name="firmware"))
                await self.station.start()
                tasks.append(tg.create_task(self.reservations.run(), name="reservations"))
                tasks += [
                    tg.create_task(self.smart.run(), name="smart-charging"),
                    tg.create_task(self.station.run_polling(), name="metering"),
                    tg.create_task(self.station.run_clock_aligned(), name="aligned"),
                ]
                tasks += self._start_service_tasks(tg)
                tasks.append(tg.create_task(self.web.run(), name="web"))
                await self._stop.wait()
                self._notify_stopping()
                await self._shutdown()
                self.runs.end(self._stop_reason)
                for task in [*tasks, *self._spawned]:
                    task.cancel()
        except BaseException as err:
            self.security_watch.memory.crashed(err)  # a MemoryError: stored for the next start
            raise
        finally:
            self.security_watch.memory.uninstall()
            self._tg = None
            await asyncio.shield(self._final_safety())
            stop_signals.stop_listening(loop)
        return self._restart

    def _start_service_tasks(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        """READY=1 (hardware up, database open), then STATUS= updates and the watchdog."""
        if not self.service.enabled:
            return []
        status = self._service_status()
        self.service.ready(status)
        self._status_task = tg.create_task(
            self._report_service_status(status), name="service-status"
        )
        started = [self._status_task]
        if self.service.watchdog_s is not None:
            watchdog = Watchdog(self.service, self.service.watchdog_s)
            started.append(tg.create_task(watchdog.run(), name="watchdog"))
        return started

    def _notify_stopping(self) -> None:
        """The watchdog keeps pinging while we drain; link changes no longer matter."""
        if self._status_task is not None:
            self._status_task.cancel()
        if self._restart:
            # Re-executed in place: same main PID, the new image sends READY=1.
            self._reloading_sent = True
            self.service.reloading(f"restarting ({self._stop_reason})")
        else:
            self.service.stopping(f"stopping ({self._stop_reason})")

    async def _shutdown(self) -> None:
        budget = self.config.shutdown_timeout_s
        log.info("shutting down (%s)", self._stop_reason)
        try:
            async with asyncio.timeout(max(1.0, budget / 2)):
                await self.station.stop_all(self._stop_reason)
        except TimeoutError:
            log.error("stopping transactions took too long")
        await self.hal.safe_state()
        if self.online():
            delivered = await self.outbox.drain(max(0.5, budget / 2 - 1))
            if not delivered:
                log.warning("%d message(s) stay queued for the next start", self.outbox.pending())
        await self.connection.close()

    async def _final_safety(self) -> None:
        try:
            async with asyncio.timeout(2):
                await self.hal.safe_state()
        except Exception:
            log.exception("could not bring the hardware to a safe state")
        try:
            await self.api.stop()
        except Exception:
            log.exception("could not stop the local API")
        self.db.close()
