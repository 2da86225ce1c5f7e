"""The Firmware Management profile assembled: what the app wires in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from firmware.clock import Clock
from firmware.config import Config
from firmware.management.diagnostics import DiagnosticsUploader, StateSummary
from firmware.management.installers import build_installer
from firmware.management.jobs import FirmwareJobStore
from firmware.management.reporter import StatusReporter
from firmware.management.updater import FirmwareUpdater
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v16.firmware_management import FirmwareManagementHandlers
from firmware.station import Station
from firmware.storage.db import Database


class StationSessions:
    """Running transactions and the hold on new sessions, over every connector."""

    def __init__(self, station: Station) -> None:
        self.station = station

    def running(self) -> int:
        return sum(1 for c in self.station.connectors.values() if c.tx is not None)

    async def hold(self, held: bool) -> None:
        for controller in self.station.connectors.values():
            await controller.hold(held)


class FirmwareManagement:
    def __init__(
        self,
        config: Config,
        db: Database,
        rpc: Rpc,
        ready: asyncio.Event,
        clock: Clock,
        station: Station,
        *,
        state: StateSummary,
        restart: Callable[[], None],
    ) -> None:
        settings = config.firmware_update
        self.firmware_reporter = StatusReporter(rpc, "FirmwareStatusNotification", ready)
        self.diagnostics_reporter = StatusReporter(rpc, "DiagnosticsStatusNotification", ready)
        self.updater = FirmwareUpdater(
            FirmwareJobStore(db, clock.now),
            settings,
            settings.download_dir or config.state_dir / "firmware",
            build_installer(settings),
            StationSessions(station),
            self.firmware_reporter,
            clock,
            restart=restart,
        )
        self.diagnostics = DiagnosticsUploader(
            config.diagnostics,
            config.ocpp.charge_point_id,
            config.state_dir / "diagnostics",
            state,
            self.diagnostics_reporter,
            clock,
        )
        self.handlers = FirmwareManagementHandlers(self.updater, self.diagnostics)

    def register(self, rpc: Rpc) -> None:
        self.handlers.register(rpc)

    def current_firmware_status(self) -> str:
        """For TriggerMessage(FirmwareStatusNotification): Idle when nothing runs."""
        return self.updater.current_status()

    def current_diagnostics_status(self) -> str:
        """For TriggerMessage(DiagnosticsStatusNotification): Idle when nothing runs."""
        return self.diagnostics.current_status()

    def status(self) -> dict[str, Any]:
        """The ``firmware`` and ``diagnostics`` objects of the local API's status."""
        return {"firmware": self.updater.snapshot(), "diagnostics": self.diagnostics.snapshot()}

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.firmware_reporter.run(), name="firmware-status")
            tg.create_task(self.diagnostics_reporter.run(), name="diagnostics-status")
            tg.create_task(self.updater.run(), name="firmware-update")
