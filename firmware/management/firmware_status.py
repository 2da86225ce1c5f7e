"""What a firmware job tells the CSMS, and what a trigger reports of it.

A job speaks the Security Whitepaper's statuses (FirmwareStatusEnumType). A
SignedUpdateFirmware job sends each as SignedFirmwareStatusNotification with its
requestId; a plain UpdateFirmware job sends the OCPP 1.6 FirmwareStatus of each
(InvalidSignature → InstallationFailed), and nothing for those 1.6 lacks
(DownloadScheduled, SignatureVerified, InstallScheduled, InstallRebooting).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firmware.management.jobs import PLAIN, REBOOTING, SCHEDULED, SIGNED, FirmwareJob
from firmware.management.reporter import Reporter

# The FirmwareStatus values of OCPP 1.6 a job reaches (Idle is a trigger's only).
PLAIN_STATUSES = frozenset(
    {"Downloaded", "DownloadFailed", "Downloading", "InstallationFailed", "Installed", "Installing"}
)
# What a signed job last reported, by the state it was left in.
_SIGNED_STATE = {SCHEDULED: "DownloadScheduled", REBOOTING: "InstallRebooting"}


def plain_status(status: str) -> str | None:
    """The 1.6 FirmwareStatus reporting ``status``, None when 1.6 has none."""
    if status == "InvalidSignature":
        return "InstallationFailed"
    return status if status in PLAIN_STATUSES else None


def final_result(job: FirmwareJob, status: str) -> str:
    """The final status as the job's kind reports it (kept until delivered)."""
    return status if job.signed else (plain_status(status) or status)


class FirmwareStatuses:
    def __init__(
        self,
        plain: Reporter,
        signed: Reporter,
        delivered: Callable[[str, str], None],
    ) -> None:
        self.plain = plain
        self.signed = signed
        self._signed_last: tuple[str, int | None] | None = None
        plain.on_delivered = lambda status: delivered(PLAIN, status)
        signed.on_delivered = lambda status: delivered(SIGNED, status)

    def report(self, job: FirmwareJob, status: str) -> str | None:
        """Send ``status`` of ``job``; the status shown for it, None when it has none."""
        if job.signed:
            self._signed_last = (status, job.request_id)
            self.signed.report(status, job.request_id)
            return status
        plain = plain_status(status)
        if plain is not None:
            self.plain.report(plain)
        return plain

    def resend(self, job: FirmwareJob, result: str) -> None:
        """A final status kept from before a restart, not yet delivered."""
        self.reporter(job).report(result, job.request_id)

    def reporter(self, job: FirmwareJob) -> Reporter:
        return self.signed if job.signed else self.plain

    def recovered(self, job: FirmwareJob) -> None:
        """After a restart: what the job last reported, for ExtendedTriggerMessage."""
        if job.signed:
            shown = _SIGNED_STATE.get(job.state, job.state)
            self._signed_last = (job.result or shown, job.request_id)

    def signed_payload(self) -> dict[str, Any]:
        """The last SignedFirmwareStatusNotification sent, with its requestId; Idle when
        there was none or it was Installed (Whitepaper L01.FR.28/29)."""
        last = self._signed_last
        if last is None or last[0] == "Installed" or last[1] is None:
            return {"status": "Idle"}
        return {"status": last[0], "requestId": last[1]}
