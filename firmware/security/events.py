"""Security events: what the station can report, and the interface to report them.

The list is the OCPP 1.6 Security Whitepaper's (edition 2, section 2.6), which
OCPP 2.0.1 repeats with a few renamed entries; ``V201_NAMES`` maps those.
Every event goes into the security log; critical ones are also sent to the
CSMS with guaranteed delivery (queued while offline, in order).

Whoever detects an event calls ``SecurityEventSink.raise_event``; the sink
decides about logging, storage and sending.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Protocol

log = logging.getLogger("firmware.security.events")

TECH_INFO_MAX = 255  # SecurityEventNotification.techInfo: CiString255


class SecurityEvent(StrEnum):
    FIRMWARE_UPDATED = "FirmwareUpdated"
    FAILED_TO_AUTHENTICATE_AT_CENTRAL_SYSTEM = "FailedToAuthenticateAtCentralSystem"
    CENTRAL_SYSTEM_FAILED_TO_AUTHENTICATE = "CentralSystemFailedToAuthenticate"
    SETTING_SYSTEM_TIME = "SettingSystemTime"
    STARTUP_OF_THE_DEVICE = "StartupOfTheDevice"
    RESET_OR_REBOOT = "ResetOrReboot"
    SECURITY_LOG_WAS_CLEARED = "SecurityLogWasCleared"
    RECONFIGURATION_OF_SECURITY_PARAMETERS = "ReconfigurationOfSecurityParameters"
    MEMORY_EXHAUSTION = "MemoryExhaustion"
    INVALID_MESSAGES = "InvalidMessages"
    ATTEMPTED_REPLAY_ATTACKS = "AttemptedReplayAttacks"
    TAMPER_DETECTION_ACTIVATED = "TamperDetectionActivated"
    INVALID_FIRMWARE_SIGNATURE = "InvalidFirmwareSignature"
    INVALID_FIRMWARE_SIGNING_CERTIFICATE = "InvalidFirmwareSigningCertificate"
    INVALID_CENTRAL_SYSTEM_CERTIFICATE = "InvalidCentralSystemCertificate"
    INVALID_CHARGE_POINT_CERTIFICATE = "InvalidChargePointCertificate"
    INVALID_TLS_VERSION = "InvalidTLSVersion"
    INVALID_TLS_CIPHER_SUITE = "InvalidTLSCipherSuite"


CRITICAL = frozenset(
    {
        SecurityEvent.FIRMWARE_UPDATED,
        SecurityEvent.SETTING_SYSTEM_TIME,
        SecurityEvent.STARTUP_OF_THE_DEVICE,
        SecurityEvent.RESET_OR_REBOOT,
        SecurityEvent.SECURITY_LOG_WAS_CLEARED,
        SecurityEvent.MEMORY_EXHAUSTION,
        SecurityEvent.TAMPER_DETECTION_ACTIVATED,
    }
)

# OCPP 2.0.1 (Part 2, appendix "Security events") names the same events differently.
V201_NAMES: dict[SecurityEvent, str] = {
    SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CENTRAL_SYSTEM: "FailedToAuthenticateAtCsms",
    SecurityEvent.CENTRAL_SYSTEM_FAILED_TO_AUTHENTICATE: "CsmsFailedToAuthenticate",
    SecurityEvent.INVALID_CENTRAL_SYSTEM_CERTIFICATE: "InvalidCsmsCertificate",
    SecurityEvent.INVALID_CHARGE_POINT_CERTIFICATE: "InvalidChargingStationCertificate",
}


def is_critical(event: SecurityEvent) -> bool:
    return event in CRITICAL


class SecurityEventSink(Protocol):
    """Where detected security events go (the security log and, if critical, the CSMS)."""

    def raise_event(self, event: SecurityEvent, tech_info: str | None = None) -> None:
        """Record ``event``; never raises, never blocks (called from anywhere, also offline)."""


class LoggingSink:
    """A sink that only logs: for code paths and tests without the security log."""

    def __init__(self) -> None:
        self.raised: list[tuple[SecurityEvent, str | None]] = []

    def raise_event(self, event: SecurityEvent, tech_info: str | None = None) -> None:
        self.raised.append((event, tech_info))
        log.warning("security event %s%s", event.value, f": {tech_info}" if tech_info else "")
