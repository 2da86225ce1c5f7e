"""The station's core on the simulated hardware, speaking OCPP 2.0.1 to the bench CSMS
over a real websocket: the 2.0.1 pieces (registration, status, journal, Authorize,
provisioning, control, trigger and certificate handlers) composed the way a 2.0.1
front-end does.

The certificate store lives in ``tmp_path/security``; the link's rule for the CSMS
root in use is a TLS station's that cannot tell which root verified it (the last
CSMS root is in use). CertSigningWaitMinimum counts in units of ``WAIT_UNIT_S``
and the renewal check runs every ``CHECK_INTERVAL_S``, so tests need not wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from firmware.auth.authorizer import Authorizer
from firmware.auth.cache import AuthCache
from firmware.auth.local_list import LocalAuthList
from firmware.clock import Clock
from firmware.config import Identity
from firmware.connector.availability import AvailabilityStore
from firmware.connector.context import ConnectorContext
from firmware.connector.transactions import TransactionStore
from firmware.ocpp.registration import Registration
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.status_notifier import StatusNotifier
from firmware.ocpp.v201.authorize import ask_csms
from firmware.ocpp.v201.boot import V201Boot
from firmware.ocpp.v201.certificates import CertificateHandlers
from firmware.ocpp.v201.control import ControlHandlers, RemoteStarts
from firmware.ocpp.v201.device_model import DeviceModel
from firmware.ocpp.v201.device_model.topology import layout
from firmware.ocpp.v201.provisioning import ProvisioningHandlers
from firmware.ocpp.v201.settings import station_settings
from firmware.ocpp.v201.status import V201Status
from firmware.ocpp.v201.transactions import TransactionNumbers, V201Journal
from firmware.ocpp.v201.trigger import TriggerHandlers
from firmware.queue import Outbox
from firmware.security.enrolment import Enrolment
from firmware.security.events import LoggingSink
from firmware.security.link import LinkSecurity
from firmware.security.store import CertificateStore
from firmware.station import Station
from hal.interfaces import BoardSettings, PilotState
from hal.sim.backend import SimBackend, SimOptions
from hil.csms import BenchCsms, StationLog
from tests.unit.aio import until
from tests.unit.device_model_fixtures import open_model

CP = "CP-201"
CONNECTORS = 2
WAIT_UNIT_S = 0.02  # one "second" of CertSigningWaitMinimum
CHECK_INTERVAL_S = 0.05  # how often the station looks whether its certificate nears its end
RENEW_BEFORE = timedelta(days=7)
SECURITY = "SecurityCtrlr"


@dataclass
class Rig:
    csms: BenchCsms
    log: StationLog
    station: Station
    backend: SimBackend
    outbox: Outbox
    numbers: TransactionNumbers
    control: ControlHandlers
    model: DeviceModel
    certificates: CertificateStore
    events: LoggingSink

    def plug(self, connector: int, state: PilotState = PilotState.C) -> None:
        self.backend.plant.set_ev(connector, cp_state=state)

    def relay(self, connector: int) -> bool:
        return self.backend.world.connector(connector).contact

    async def wait_relay(self, connector: int, closed: bool) -> None:
        await until(lambda: self.relay(connector) is closed, timeout_s=10)

    async def event(self, event_type: str, since: int = 0) -> dict[str, Any]:
        return await self.log.wait_for(
            "TransactionEvent", lambda p: p["eventType"] == event_type, since=since
        )


def _spawner(tg: asyncio.TaskGroup) -> Callable[[Coroutine[Any, Any, None]], None]:
    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        tg.create_task(coro)

    return spawn


@contextlib.asynccontextmanager
async def station_201(tmp_path: Path, **device_model: Any) -> AsyncIterator[Rig]:
    model, db = open_model(tmp_path, device_model=device_model)
    topology = layout(CONNECTORS)
    clock = Clock()
    backend = SimBackend(CONNECTORS, BoardSettings(), SimOptions(tick_s=0.02))
    async with BenchCsms(versions=["2.0.1"]) as csms, asyncio.TaskGroup() as tg:
        csms.heartbeat_interval = 300
        spawn = _spawner(tg)
        rpc = Rpc(response_timeout_s=3, max_frame_bytes=65536, spawn=spawn)

        async def online_hook() -> None:
            outbox.wake()
            await notifier.resync()

        registration = Registration(
            rpc,
            V201Boot(model, Identity(), lambda: "PowerUp"),
            clock,
            boot_retry_s=0.5,
            on_online=online_hook,
        )
        ready = registration.ready
        notifier = StatusNotifier(rpc, V201Status(topology), clock, ready)
        outbox = Outbox(db, rpc, clock, ready=ready, attempts=lambda: 3, retry_interval_s=lambda: 1)
        settings = station_settings(model)
        cache = AuthCache(db, clock)

        def online() -> bool:
            return rpc.connected and ready.is_set()

        local_list = LocalAuthList(
            db, enabled=lambda: False, max_length=lambda: 100, send_max_length=lambda: 10
        )
        authorizer = Authorizer(
            cache, settings, ask_csms(rpc), clock, online=online, local_list=local_list
        )
        transactions = TransactionStore(db)
        numbers = TransactionNumbers(db)
        remote_starts = RemoteStarts()

        def send(action: str, payload: dict[str, Any]) -> None:
            if online():
                spawn(_quietly(rpc.call(action, payload, version="2.0.1")))

        journal = V201Journal(
            outbox,
            transactions,
            numbers,
            topology,
            online=online,
            send=send,
            remote_start=remote_starts.take,
        )
        ctx = ConnectorContext(
            db=db,
            transactions=transactions,
            journal=journal,
            settings=settings,
            availability=AvailabilityStore(db),
            clock=clock,
            board=BoardSettings(),
            spawn=spawn,
            online=online,
            offline_decision=lambda tag: authorizer.offline_decision(tag).accepted,
            response_timeout_s=3,
            meter_poll_s=0.1,
        )
        station = Station(backend, ctx, authorizer, notifier.report)
        journal.answers_to(station)
        journal.follow_charging(station)
        control = ControlHandlers(
            station,
            topology,
            numbers,
            outbox,
            cache,
            remote_starts,
            accepted=lambda: registration.accepted,
            profile_ok=lambda _profile, _connector: True,
        )
        control.register(rpc)
        ProvisioningHandlers(model, rpc, clock).register(rpc)
        events = LoggingSink()
        store = CertificateStore(tmp_path / "security", sink=events)
        enrolment = Enrolment(
            store,
            events,
            charge_point_id=CP,
            organization=lambda: model.get_str(SECURITY, "OrganizationName"),
            max_chain_bytes=lambda: model.get_int(SECURITY, "MaxCertificateChainSize"),
            renew_before=RENEW_BEFORE,
            now=clock.now,
        )
        link = LinkSecurity(
            store,
            charge_point_id=CP,
            tls=True,
            profile=lambda: model.get_int(SECURITY, "SecurityProfile"),
            revert_profile=lambda _profile: None,
            password=lambda: None,
            sink=events,
            now=clock.now,
        )
        certificates = CertificateHandlers(
            rpc,
            model,
            store,
            enrolment,
            clock,
            ready=ready,
            root_in_use=link.root_in_use,
            check_interval_s=CHECK_INTERVAL_S,
            wait_unit_s=WAIT_UNIT_S,
        )
        certificates.register(rpc)
        TriggerHandlers(
            station,
            topology,
            registration,
            notifier,
            journal,
            rpc,
            sign_certificate=certificates.sign_charging_station_certificate,
        ).register(rpc)
        jobs = [
            tg.create_task(backend.run()),
            tg.create_task(station.run_events()),
            tg.create_task(registration.run()),
            tg.create_task(notifier.run()),
            tg.create_task(outbox.run()),
            tg.create_task(station.run_polling()),
            tg.create_task(certificates.run()),
        ]
        await station.start()
        async with connect(f"{csms.url}/{CP}", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
            jobs.append(tg.create_task(rpc.serve(ws, "2.0.1")))
            log = await csms.wait_connected(CP)
            await until(ready.is_set, timeout_s=10)
            try:
                yield Rig(
                    csms, log, station, backend, outbox, numbers, control, model, store, events
                )
            finally:
                for job in jobs:
                    job.cancel()
                await station.safe_state()
        assert log.violations == []
    db.close()


async def _quietly(call: Coroutine[Any, Any, Any]) -> None:
    with contextlib.suppress(Exception):
        await call
