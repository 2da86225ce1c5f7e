"""Composition root: build everything from the config, run it in one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

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
from firmware.management.service import FirmwareManagement
from firmware.ocpp.connection import Backoff, Connection, LinkState
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.front_end import Core, FrontEnd
from firmware.ocpp.link_tracker import LinkTracker
from firmware.ocpp.registration import Registration
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.status_notifier import StatusNotifier
from firmware.ocpp.v16.front_end import V16FrontEnd
from firmware.ocpp.versions import AUTO, V201, offered
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
from firmware.security.recorder import (
    SecurityEvents,
    event_payload,
    notification_16,
    notification_201,
)
from firmware.security.runs import MARKER_NAME, PreviousRun, RunRecord
from firmware.security.security_log import SecurityLog
from firmware.security.store import CertificateStore, RootKind
from firmware.service_notify import ServiceNotifier, Watchdog, link_status
from firmware.smart_charging.manager import SmartCharging
from firmware.station import Station
from firmware.storage.db import Database
from firmware.web.ui import WebUi
from hal.registry import build_backend

if TYPE_CHECKING:
    from firmware.ocpp.v201.front_end import V201FrontEnd

log = logging.getLogger("firmware.app")
RECANCEL_S = 0.5
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
        # How this run ends in the run record (the next start's boot reason), when it is
        # not the stop reason: FirmwareUpdate for a restart into installed firmware.
        self._run_end: str | None = None
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
        self.security_events = SecurityEvents(
            self.db,
            self.security_log,
            self.clock.now,
            message=self._security_event_message,
        )
        self.certificates = CertificateStore(
            config.state_dir / "security", sink=self.security_events
        )
        provisioning.apply(
            self.certificates,
            provisioning.load(config.security, config.ocpp.charge_point_id, datetime.now(UTC)),
        )
        self.link = LinkTracker(self.clock.now)
        self.rpc = Rpc(
            response_timeout_s=config.ocpp.response_timeout_s,
            max_frame_bytes=config.ocpp.max_frame_bytes,
            spawn=self.spawn,
            frame_log=self._log_frame,
            dead_link_timeouts=config.ocpp.dead_link_timeouts,
        )
        self._previous_run: PreviousRun | None = None
        self._v201: V201FrontEnd | None = None  # the 2.0.1 front-end, if one runs
        self.front = self._front_end()
        # Which CSMS the next connection attempt dials: ocpp.csms_url, or in 2.0.1 the
        # network profile the dialer is on.
        self._route = self.front.route()
        self._csms_url = (
            self._route.csms_url if self._route is not None else lambda: config.ocpp.csms_url
        )
        self._refuse_a_lowered_transport()
        self.registration = self.front.registration
        self.notifier = self.front.notifier
        self.outbox = Outbox(
            self.db,
            self.rpc,
            self.clock,
            ready=self.registration.ready,
            attempts=self.front.message_attempts,
            retry_interval_s=self.front.message_retry_interval_s,
            max_messages=config.queue.max_messages,
            max_bytes=config.queue.max_bytes,
            batch_max=config.queue.replay_batch_max,
            batch_bytes=config.queue.replay_batch_bytes,
        )
        self.security_events.deliver_through(self.outbox.in_version(lambda: self.front.version))
        self.cache = AuthCache(self.db, self.clock)
        self.local_list = LocalAuthList(
            self.db,
            enabled=self.front.local_list_enabled,
            max_length=self.front.local_list_max_length,
            send_max_length=self.front.send_local_list_max_length,
        )
        self.settings = self.front.settings
        self.authorizer = Authorizer(
            self.cache,
            self.settings,
            self.front.ask_csms,
            self.clock,
            online=self.online,
            local_list=self.local_list,
            authorize_timeout_s=config.ocpp.authorize_timeout_s,
        )
        self.transactions = TransactionStore(self.db)
        ctx = ConnectorContext(
            db=self.db,
            transactions=self.transactions,
            journal=self.front.journal(self.outbox, self.transactions, self._send_untracked),
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
        self.reservations = Reservations(
            ReservationStore(self.db),
            self.station,
            self.settings,
            self.clock,
            supported=self.front.reservations_supported(),
        )
        self.smart = SmartCharging(
            self.db, self.settings, self.clock, config.board, self.station.connectors
        )
        # The first ManufacturerRootCertificate(s) are provisioned from the file, as
        # the first CSMS root is; later ones come from InstallCertificate.
        self.certificates.import_roots(
            RootKind.MANUFACTURER,
            certificate_file(config.security.manufacturer_root_ca, "security.manufacturer_root_ca"),
        )
        self.firmware = FirmwareManagement(
            config,
            self.db,
            self.registration.ready,
            self.clock,
            self.station,
            reporters=self.front.job_reporters,
            state=self._diagnostics_state,
            restart=self._restart_after_install,
            events=self.security_events,
            manufacturer_roots=lambda: self.certificates.roots(RootKind.MANUFACTURER),
        )
        self.log_uploads = LogUploads(
            config.diagnostics,
            config.ocpp.charge_point_id,
            config.state_dir / "logs",
            self.security_log,
            self._diagnostics_state,
            self.front.log_status,
            self.clock,
        )
        self.link_security = LinkSecurity(
            self.certificates,
            charge_point_id=config.ocpp.charge_point_id,
            tls=lambda: self._csms_url().startswith("wss://"),
            trials=self._route is None,
            profile=self.front.security_profile,
            revert_profile=self.front.revert_security_profile,
            password=self._password,
            sink=self.security_events,
            now=self.clock.now,
        )
        self.enrolment = Enrolment(
            self.certificates,
            self.security_events,
            charge_point_id=config.ocpp.charge_point_id,
            organization=self.front.organization,
            max_chain_bytes=self.front.max_chain_bytes,
            renew_before=timedelta(days=config.security.renew_before_days),
            now=self.clock.now,
        )
        self.front.attach(
            Core(
                station=self.station,
                cache=self.cache,
                local_list=self.local_list,
                reservations=self.reservations,
                smart=self.smart,
                firmware=self.firmware,
                log_uploads=self.log_uploads,
                certificates=self.certificates,
                enrolment=self.enrolment,
                security_events=self.security_events,
                root_in_use=self.link_security.root_in_use,
            ),
            reset=self.reset,
            reconnect=self._reconnect,
        )
        self.connection = Connection(
            self.rpc,
            csms_url=config.ocpp.csms_url,
            charge_point_id=config.ocpp.charge_point_id,
            auth=self.link_security,
            ping_interval_s=self.front.ping_interval_s,
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
            route=self._route,
        )
        self.front.on_ping_interval_change(self.connection.ping_changed.set)
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

    def _front_end(self) -> FrontEnd:
        """The front-end ``ocpp.version`` runs: 1.6, 2.0.1, or both (``auto``), with the
        registration and status notifier built over its profiles."""
        setting = self.config.ocpp.version
        fronts: list[FrontEnd] = []
        if setting != V201:
            facts = replace(
                station_facts(self.config),
                has_csms_root=lambda: bool(self.certificates.roots(RootKind.CSMS)),
                has_client_certificate=self._has_client_certificate,
            )
            fronts.append(V16FrontEnd(self.db, self.config, facts, self.rpc, self.clock))
        if setting in (V201, AUTO):
            # Imported here: the 2.0.1 catalog and schemas cost a 1.6 station time and memory.
            from firmware.ocpp.v201.front_end import V201FrontEnd

            v201 = V201FrontEnd(
                self.db,
                self.config,
                self.rpc,
                self.clock,
                previous_run=lambda: self._previous_run,
                network_profiles=setting == V201,
            )
            fronts.append(v201)
            self._v201 = v201
        front: FrontEnd = fronts[0]
        if len(fronts) == 2:
            from firmware.ocpp.switchboard import Switchboard

            front = Switchboard(fronts[0], v201, self.rpc)
        registration = Registration(
            self.rpc,
            fronts[0].boot_profile,
            self.clock,
            boot_retry_s=self.config.ocpp.boot_retry_s,
            on_online=self._on_online,
            alternatives=[f.boot_profile for f in fronts[1:]],
        )
        notifier = StatusNotifier(
            self.rpc,
            fronts[0].status_profile,
            self.clock,
            registration.ready,
            alternatives=[f.status_profile for f in fronts[1:]],
        )
        front.bind(registration, notifier)
        return front

    def _security_event_message(
        self, event: SecurityEvent, at: datetime, tech_info: str | None
    ) -> tuple[str, dict[str, Any]]:
        """SecurityEventNotification in the words of the version in use."""
        if self.front.version == V201:
            return notification_201(event, at, tech_info)
        return notification_16(event, at, tech_info)

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
        return self.front.authorization_key() or self.config.ocpp.password

    def _refuse_a_lowered_transport(self) -> None:
        """A profile the CSMS raised to 2 or 3 never runs over ws:// (a file edited since)."""
        profile = self.front.security_profile()
        if profile >= 2 and not self._csms_url().startswith("wss://"):
            raise ConfigError(
                f"ocpp.csms_url: the station is at SecurityProfile {profile} (raised by the "
                "CSMS), which needs a wss:// URL"
            )

    def _has_client_certificate(self, valid_now: bool) -> bool:
        identity = self.certificates.identity()
        if identity is None:
            return False
        return not valid_now or valid_at(identity.certificate, self.clock.now())

    async def _reconnect(self) -> None:
        await self.connection.close()

    def _log_frame(self, direction: str, text: str) -> None:
        if frames_log.isEnabledFor(logging.DEBUG):
            frames_log.debug("%s %s", "→" if direction == "out" else "←", redact(text))
        self.web.frame(direction, text)

    def _check_version(self, version: str) -> str | None:
        """Refuse a connection in a version no front-end here speaks: nothing would
        half-work."""
        if version in offered(self.config.ocpp.version):
            return None
        return (
            f"the CSMS selected OCPP {version}, and ocpp.version {self.config.ocpp.version} "
            f"runs the OCPP {self.front.version} front-end"
        )

    def _ocpp_version(self) -> str | None:
        """The version in use: of the current or last connection, else the configured one."""
        if self.connection.version is not None:
            return self.connection.version
        return None if self.config.ocpp.version == AUTO else self.config.ocpp.version

    async def _on_online(self) -> None:
        self._link_changed.set()
        if self.config.ocpp.version == AUTO:
            # A security event means the same in both versions: the ones queued for the
            # other version (before the first connection, say) go out over this one.
            version = self.front.version
            self.outbox.convert(
                "SecurityEventNotification", version, functools.partial(event_payload, version)
            )
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
            await self.rpc.call(action, payload, version=self.front.version)
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
            "connectors": self._connectors(),
            **self.firmware.status(),
            "metrics": self.station.ctx.taps.snapshot(),
        }

    def _connectors(self) -> list[dict[str, Any]]:
        """Each connector's snapshot with its contactor's auxiliary contact (None: no
        feedback) and, where a 2.0.1 front-end runs, how 2.0.1 names it: its EVSE and
        connector there, the connectorStatus it reports, and the transactionId (the
        station's own string) of a transaction written in 2.0.1."""
        found = []
        v201 = self._v201
        for controller in self.station.connectors.values():
            c = controller.snapshot()
            c["relay_feedback"] = controller.hw.relay.feedback_closed
            evse_id = evse_connector = connector_status = None
            if v201 is not None:
                evse_id, evse_connector = v201.topology.address(controller.id)
                if controller.status is not None:
                    connector_status = str(v201.status_profile.reported(controller.status))
                local_id = c["local_transaction_id"]
                if local_id is not None and v201.numbers.started(local_id):
                    c["transaction_id"] = v201.numbers.transaction_id(local_id)
            c.update(
                evse_id=evse_id, evse_connector_id=evse_connector, connector_status=connector_status
            )
            found.append(c)
        return found

    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def _diagnostics_state(self) -> dict[str, Any]:
        """The state summary of a GetDiagnostics archive (secrets scrubbed there)."""
        return {"status": self.status(), **self.front.configuration()}

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
            self._run_end = "FirmwareUpdate"
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
                self._previous_run = previous  # the 2.0.1 boot reason
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
                    tg.create_task(self.security_events.run(), name="security-log"),
                    tg.create_task(self.security_watch.run(), name="security-watch"),
                ]
                tasks += [tg.create_task(run(), name=name) for name, run in self.front.loops()]
                if self.front.firmware_management():
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
                self.runs.end(self._run_end or self._stop_reason)
                ending = [*tasks, *self._spawned]
                for task in ending:
                    task.cancel()
                tg.create_task(cancel_until_done(ending), name="cancel-until-done")
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


async def cancel_until_done(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` again until each has ended.

    A cancellation can be lost: Python 3.11's ``asyncio.wait_for`` (pymodbus opens
    its serial port with it) returns the inner result when a cancellation races it,
    so a meter poll that failed to open its port at that moment swallowed the
    shutdown's cancel and kept polling, and the daemon never exited.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        _done, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
        for task in pending:
            log.warning("task %s still runs after its cancel: cancelling again", task.get_name())
            task.cancel()
