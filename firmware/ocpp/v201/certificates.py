"""OCPP 2.0.1 certificates: the station's own (A02, A03) and the roots it trusts (M03-M05).

CSMS → station: InstallCertificate, DeleteCertificate, GetInstalledCertificateIds,
CertificateSigned. Station → CSMS: SignCertificate (certificateType
ChargingStationCertificate), on TriggerMessage SignChargingStationCertificate
(A02, ``sign_charging_station_certificate``) and on its own when its certificate
nears its end (A03, ``run``); an accepted one is sent again after
SecurityCtrlr.CertSigningWaitMinimum seconds, then twice as long each time, at
most CertSigningRepeatTimes times, while no CertificateSigned comes
(A02.FR.17-19).

The rules are the security layer's, as in 1.6 (``firmware.ocpp.certificates``
holds what the versions share); the device model gives them their settings:
CertificateEntries (its maxLimit: how many roots the store keeps; its value:
how many it holds), AdditionalRootCertificateCheck, MaxCertificateChainSize and
OrganizationName (read by the enrolment through the front-end).

This station has no ISO 15118: a V2GRootCertificate or MORootCertificate is not
installed (Failed; Rejected if the certificate itself is not acceptable), none
is ever listed, and a CertificateSigned of a V2GCertificate is Rejected. Every
refusal carries a statusInfo saying why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ocpp.v201.enums import StatusInfoReasonType

from firmware.clock import Clock
from firmware.ocpp.certificates import (
    CertificateSigning,
    Resends,
    hash_data_of,
    hash_data_payload,
)
from firmware.ocpp.rpc import Reply, Rpc
from firmware.ocpp.v201.device_model import Component, DeviceModel
from firmware.ocpp.versions import V201
from firmware.security.certificates import HashData, hash_data
from firmware.security.enrolment import Enrolment
from firmware.security.errors import CertificateError
from firmware.security.store import (
    CertificateStore,
    InstalledRoot,
    InstallStatus,
    RootKind,
    root_certificate,
)

log = logging.getLogger("firmware.ocpp.certificates")

SECURITY = Component("SecurityCtrlr")
STATION_CERTIFICATE = "ChargingStationCertificate"
ROOT_KINDS = {
    "CSMSRootCertificate": RootKind.CSMS,
    "ManufacturerRootCertificate": RootKind.MANUFACTURER,
}
TYPE_OF = {kind: name for name, kind in ROOT_KINDS.items()}
NO_ISO15118 = "this station has no ISO 15118"
REASON_MAX = 20  # StatusInfoType.reasonCode: string[20]
INFO_MAX = 512  # StatusInfoType.additionalInfo: string[512]


def answer(status: str, reason: StatusInfoReasonType | None = None, info: str = "") -> Reply:
    """``status``, with a statusInfo when there is a reason to give."""
    payload: dict[str, Any] = {"status": status}
    if reason is not None:
        status_info = {"reasonCode": reason.value[:REASON_MAX]}
        if info:
            status_info["additionalInfo"] = info[:INFO_MAX]
        payload["statusInfo"] = status_info
    return Reply(payload)


class CertificateHandlers:
    def __init__(
        self,
        rpc: Rpc,
        model: DeviceModel,
        store: CertificateStore,
        enrolment: Enrolment,
        clock: Clock,
        *,
        ready: asyncio.Event,
        root_in_use: Callable[[InstalledRoot], bool],
        check_interval_s: float = 3600.0,
        retry_after_s: float = 86400.0,
        wait_unit_s: float = 1.0,
    ) -> None:
        """``wait_unit_s``: the length of CertSigningWaitMinimum's unit, a second (tests
        shorten it)."""
        self.model = model
        self.store = store
        self.clock = clock
        self._root_in_use = root_in_use
        self._wait_unit_s = wait_unit_s
        self.signing = CertificateSigning(
            rpc,
            store,
            enrolment,
            ready=ready,
            version=V201,
            payload=lambda csr: {"csr": csr, "certificateType": STATION_CERTIFICATE},
            resends=self._resends,
            check_interval_s=check_interval_s,
            retry_after_s=retry_after_s,
        )
        model.provide(SECURITY, "CertificateEntries", lambda: str(len(store.installed())))

    def register(self, rpc: Rpc) -> None:
        rpc.on("InstallCertificate", self.install_certificate, version=V201)
        rpc.on("DeleteCertificate", self.delete_certificate, version=V201)
        rpc.on("GetInstalledCertificateIds", self.get_installed_certificate_ids, version=V201)
        rpc.on("CertificateSigned", self.certificate_signed, version=V201)

    def _resends(self) -> Resends:
        wait = self.model.get_int(SECURITY, "CertSigningWaitMinimum")
        times = self.model.get_int(SECURITY, "CertSigningRepeatTimes")
        return Resends(wait * self._wait_unit_s, times)

    def _max_entries(self) -> int:
        limit = self.model.spec(SECURITY, "CertificateEntries").characteristics.max_limit
        return int(limit) if limit is not None else 20

    # ------------------------------------------------------------ M05

    async def install_certificate(self, req: dict[str, Any]) -> Reply:
        name, text = str(req["certificateType"]), str(req["certificate"])
        kind = ROOT_KINDS.get(name)
        if kind is None:
            return self._not_kept(name, text)
        outcome = self.store.install(
            kind,
            text,
            now=self.clock.now,
            max_count=self._max_entries(),
            replace_signed=self.model.get_bool(SECURITY, "AdditionalRootCertificateCheck"),
        )
        if outcome.status == InstallStatus.ACCEPTED:
            return answer(outcome.status)
        if outcome.full:
            reason = StatusInfoReasonType.out_of_storage
        elif outcome.status == InstallStatus.FAILED:
            reason = StatusInfoReasonType.internal_error
        else:
            reason = StatusInfoReasonType.invalid_certificate
        return answer(outcome.status, reason, outcome.reason)

    def _not_kept(self, name: str, text: str) -> Reply:
        """An ISO 15118 root: Rejected if it is no acceptable root anyway, else Failed (it
        may well be right; the station has no use for it)."""
        try:
            root_certificate(text, self.clock.now())
        except CertificateError as err:
            log.warning("%s refused: %s", name, err)
            return answer(
                InstallStatus.REJECTED, StatusInfoReasonType.invalid_certificate, str(err)
            )
        log.warning("%s not installed: %s", name, NO_ISO15118)
        return answer(
            InstallStatus.FAILED,
            StatusInfoReasonType.unsupported_param,
            f"{NO_ISO15118}: it keeps no {name}",
        )

    # ------------------------------------------------------------ M04

    async def delete_certificate(self, req: dict[str, Any]) -> Reply:
        wanted = hash_data_of(req["certificateHashData"])
        if self._names_own_certificate(wanted):
            log.warning("not deleting the charging station certificate (M04.FR.06)")
            return answer(
                "Failed",
                StatusInfoReasonType.unsupported_request,
                "the charging station certificate cannot be deleted",
            )
        outcome = self.store.delete(wanted, in_use=self._root_in_use)
        if outcome.status == "Failed":
            return answer(outcome.status, StatusInfoReasonType.unspecified, outcome.reason)
        return answer(outcome.status)

    def _names_own_certificate(self, wanted: HashData) -> bool:
        """Whether ``wanted`` is the station's certificate (issuer and serial number name a
        certificate; the issuer's key may not be at hand)."""
        identity = self.store.identity()
        if identity is None:
            return False
        leaf = identity.certificate
        mine = hash_data(leaf, leaf.public_key(), wanted.algorithm)
        named = HashData(
            wanted.algorithm, mine.issuer_name_hash, wanted.issuer_key_hash, mine.serial_number
        )
        return named.matches(wanted)

    # ------------------------------------------------------------ M03

    async def get_installed_certificate_ids(self, req: dict[str, Any]) -> Reply:
        wanted = req.get("certificateType")
        types = set(wanted) if wanted else set(ROOT_KINDS)
        chains = [
            {
                "certificateType": TYPE_OF[root.kind],
                "certificateHashData": hash_data_payload(root.hash_data()),
            }
            for root in self.store.installed()
            if TYPE_OF[root.kind] in types
        ]
        if not chains:
            return Reply({"status": "NotFound"})
        return Reply({"status": "Accepted", "certificateHashDataChain": chains})

    # ------------------------------------------------------------ A02, A03

    async def certificate_signed(self, req: dict[str, Any]) -> Reply:
        kind = str(req.get("certificateType", STATION_CERTIFICATE))
        if kind != STATION_CERTIFICATE:
            log.warning("CertificateSigned of a %s refused: %s", kind, NO_ISO15118)
            return answer(
                "Rejected",
                StatusInfoReasonType.unsupported_param,
                f"{NO_ISO15118}: it takes no {kind}",
            )
        refused = self.signing.signed(str(req["certificateChain"]))
        if refused is not None:
            return answer("Rejected", StatusInfoReasonType.invalid_certificate, refused)
        return answer("Accepted")

    async def sign_charging_station_certificate(self) -> None:
        """TriggerMessage(SignChargingStationCertificate): a new key and SignCertificate."""
        await self.signing.request()

    async def run(self) -> None:
        """A03 (renewal before the certificate ends) and the resends of A02.FR.17-19."""
        await self.signing.run()
