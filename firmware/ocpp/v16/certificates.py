"""Certificate management of the OCPP 1.6 Security Whitepaper, on the security layer.

CSMS → station: InstallCertificate, DeleteCertificate, GetInstalledCertificateIds,
CertificateSigned. Station → CSMS: SignCertificate, on ExtendedTriggerMessage
(SignChargePointCertificate, see ``sign_charge_point_certificate``) and on its
own when its certificate nears its end (``run``).

The rules are the security layer's (``firmware.security``), the exchange for
the station's certificate is shared with 2.0.1 (``firmware.ocpp.certificates``);
this module maps 1.6 names and configuration keys onto them:
CertificateStoreMaxLength, AdditionalRootCertificateCheck,
CertificateSignedMaxChainSize, CpoName. 1.6 does not send a SignCertificate
again (its CertSigningWaitMinimum and CertSigningRepeatTimes are the ISO 15118
application note's, which this station does not implement).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from firmware.clock import Clock
from firmware.ocpp.certificates import CertificateSigning, hash_data_of, hash_data_payload
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v16.configuration import ConfigurationStore
from firmware.ocpp.versions import V16
from firmware.security.certificates import HashAlgorithm
from firmware.security.enrolment import Enrolment
from firmware.security.events import SecurityEvent, SecurityEventSink
from firmware.security.store import CertificateStore, InstalledRoot, RootKind

log = logging.getLogger("firmware.ocpp.certificates")

KINDS = {
    "CentralSystemRootCertificate": RootKind.CSMS,
    "ManufacturerRootCertificate": RootKind.MANUFACTURER,
}
# Changes of these keys are security events (the AuthorizationKey's value never shows).
SECURITY_KEYS = frozenset({"SecurityProfile", "AuthorizationKey"})


class CertificateHandlers:
    def __init__(
        self,
        rpc: Rpc,
        store: CertificateStore,
        enrolment: Enrolment,
        config: ConfigurationStore,
        clock: Clock,
        sink: SecurityEventSink,
        *,
        ready: asyncio.Event,
        root_in_use: Callable[[InstalledRoot], bool],
        check_interval_s: float = 3600.0,
        retry_after_s: float = 86400.0,
    ) -> None:
        self.rpc = rpc
        self.store = store
        self.enrolment = enrolment
        self.config = config
        self.clock = clock
        self._sink = sink
        self._root_in_use = root_in_use
        self.signing = CertificateSigning(
            rpc,
            store,
            enrolment,
            ready=ready,
            version=V16,
            payload=lambda csr: {"csr": csr},
            check_interval_s=check_interval_s,
            retry_after_s=retry_after_s,
        )

    def register(self, rpc: Rpc) -> None:
        rpc.on("InstallCertificate", self.install_certificate)
        rpc.on("DeleteCertificate", self.delete_certificate)
        rpc.on("GetInstalledCertificateIds", self.get_installed_certificate_ids)
        rpc.on("CertificateSigned", self.certificate_signed)

    # ------------------------------------------------------------ CSMS requests

    async def install_certificate(self, req: dict[str, Any]) -> Reply:
        kind = KINDS[str(req["certificateType"])]
        outcome = self.store.install(
            kind,
            str(req["certificate"]),
            now=self.clock.now,
            max_count=self.config.get_int("CertificateStoreMaxLength"),
            replace_signed=self.config.get_bool("AdditionalRootCertificateCheck"),
        )
        return Reply({"status": outcome.status})

    async def delete_certificate(self, req: dict[str, Any]) -> Reply:
        wanted = hash_data_of(req["certificateHashData"])
        outcome = self.store.delete(wanted, in_use=self._root_in_use)
        return Reply({"status": outcome.status})

    async def get_installed_certificate_ids(self, req: dict[str, Any]) -> Reply:
        roots = self.store.installed(KINDS[str(req["certificateType"])])
        if not roots:
            return Reply({"status": "NotFound"})
        hashes = [hash_data_payload(root.hash_data(HashAlgorithm.SHA256)) for root in roots]
        return Reply({"status": "Accepted", "certificateHashData": hashes})

    async def certificate_signed(self, req: dict[str, Any]) -> Reply:
        refused = self.signing.signed(str(req["certificateChain"]))
        return Reply({"status": "Rejected" if refused else "Accepted"})

    # ------------------------------------------------------------ station requests

    async def sign_charge_point_certificate(self, _connector_id: int | None = None) -> None:
        """ExtendedTriggerMessage(SignChargePointCertificate): ask for a new certificate."""
        await self.request_certificate()

    async def request_certificate(self) -> None:
        await self.signing.request()

    async def run(self) -> None:
        """Ask for a new certificate when the station's nears its end (once a day at most)."""
        await self.signing.run()

    # ------------------------------------------------------------ configuration

    def config_changed(self, key: str, value: str) -> None:
        """SecurityProfile and AuthorizationKey changes are security events."""
        if key not in SECURITY_KEYS:
            return
        shown = f" set to {value}" if key == "SecurityProfile" else " changed"
        self._sink.raise_event(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS, key + shown)
