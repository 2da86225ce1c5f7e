"""Firmware updates and diagnostics assembled: what the app wires in.

The protocol front-end supplies the reporters that deliver the jobs' statuses
and turns the CSMS's requests into ``updater`` and ``diagnostics`` calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.clock import Clock
from firmware.config import Config
from firmware.management.diagnostics import DiagnosticsUploader, StateSummary
from firmware.management.installers import build_installer
from firmware.management.jobs import FirmwareJobStore
from firmware.management.reporter import Reporter
from firmware.management.updater import FirmwareUpdater
from firmware.management.verification import ImageVerifier, ManufacturerRoots
from firmware.preflight import certificate_file
from firmware.security.events import SecurityEventSink
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


@dataclass(frozen=True, slots=True)
class JobReporters:
    firmware: Reporter  # FirmwareStatusNotification
    signed_firmware: Reporter  # SignedFirmwareStatusNotification
    diagnostics: Reporter  # DiagnosticsStatusNotification


class FirmwareManagement:
    def __init__(
        self,
        config: Config,
        db: Database,
        ready: asyncio.Event,
        clock: Clock,
        station: Station,
        *,
        reporters: JobReporters,
        state: StateSummary,
        restart: Callable[[], None],
        events: SecurityEventSink,
        manufacturer_roots: ManufacturerRoots,
    ) -> None:
        settings = config.firmware_update
        signers = certificate_file(
            settings.signing_certificate, "firmware_update.signing_certificate"
        )
        self.updater = FirmwareUpdater(
            FirmwareJobStore(db, clock.now),
            settings,
            settings.download_dir or config.state_dir / "firmware",
            build_installer(settings, config.state_dir, ready),
            StationSessions(station),
            reporters.firmware,
            clock,
            signed_reporter=reporters.signed_firmware,
            verifier=ImageVerifier(manufacturer_roots, signers, clock),
            events=events,
            restart=restart,
        )
        self.diagnostics = DiagnosticsUploader(
            config.diagnostics,
            config.ocpp.charge_point_id,
            config.state_dir / "diagnostics",
            state,
            reporters.diagnostics,
            clock,
        )

    def current_firmware_status(self) -> str:
        """For TriggerMessage(FirmwareStatusNotification): Idle when nothing runs."""
        return self.updater.current_status()

    def current_signed_firmware_status(self) -> dict[str, Any]:
        """For ExtendedTriggerMessage(FirmwareStatusNotification): the payload of the
        SignedFirmwareStatusNotification to send (the last status and its requestId,
        ``{"status": "Idle"}`` when none or after Installed)."""
        return self.updater.current_signed_status()

    def current_diagnostics_status(self) -> str:
        """For TriggerMessage(DiagnosticsStatusNotification): Idle when nothing runs."""
        return self.diagnostics.current_status()

    def status(self) -> dict[str, Any]:
        """The ``firmware`` and ``diagnostics`` objects of the local API's status."""
        return {"firmware": self.updater.snapshot(), "diagnostics": self.diagnostics.snapshot()}

    async def run(self) -> None:
        await self.updater.run()
