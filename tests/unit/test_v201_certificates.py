"""OCPP 2.0.1 certificates over a real 2.0.1 websocket to the bench CSMS (tests.unit.v201_rig):
the roots the station trusts (M03 GetInstalledCertificateIds, M04 DeleteCertificate,
M05 InstallCertificate) and its own certificate (A02 on TriggerMessage, with the
resends of A02.FR.17-19; A03 before it ends). The bench checks every frame against
the OCA 2.0.1 schemas."""

from __future__ import annotations

import datetime
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from firmware.security.events import V201_NAMES, SecurityEvent
from hil.pki import Authority
from tests.unit.aio import until
from tests.unit.v201_rig import CP, WAIT_UNIT_S, Rig, station_201

CSMS_ROOT = "CSMSRootCertificate"
MAKER_ROOT = "ManufacturerRootCertificate"
STATION = "ChargingStationCertificate"
SIGN = {"requestedMessage": "SignChargingStationCertificate"}
NOW = datetime.datetime.now(datetime.UTC)


def ocsp_hashes(cert: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """CertificateHashData computed the OCSP way, from the issuer's EC point itself."""
    point = issuer.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(point).hexdigest(),
        "serialNumber": format(cert.serial_number, "x"),
    }


def own(root: Authority) -> dict[str, str]:
    return ocsp_hashes(root.cert, root.cert)


async def install(rig: Rig, kind: str, pem: str) -> dict[str, Any]:
    return await rig.log.call("InstallCertificate", {"certificateType": kind, "certificate": pem})


async def delete(rig: Rig, hashes: dict[str, str]) -> dict[str, Any]:
    return await rig.log.call("DeleteCertificate", {"certificateHashData": hashes})


async def installed(rig: Rig, *kinds: str) -> dict[str, Any]:
    request = {"certificateType": list(kinds)} if kinds else {}
    return await rig.log.call("GetInstalledCertificateIds", request)


async def certificate_signed(rig: Rig, chain: str, kind: str | None = None) -> dict[str, Any]:
    request = {"certificateChain": chain}
    if kind is not None:
        request["certificateType"] = kind
    return await rig.log.call("CertificateSigned", request)


def entry(kind: str, root: Authority) -> dict[str, Any]:
    return {"certificateType": kind, "certificateHashData": own(root)}


def refused(answer: dict[str, Any], status: str, reason: str, says: str) -> bool:
    info = answer.get("statusInfo", {})
    return (
        answer["status"] == status
        and info.get("reasonCode") == reason
        and says in info.get("additionalInfo", "")
    )


def subject(csr_pem: str, oid: x509.ObjectIdentifier) -> list[str]:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    return [str(a.value) for a in csr.subject.get_attributes_for_oid(oid)]


def sign_times(rig: Rig, since: float) -> list[float]:
    """When the station sent each SignCertificate from ``since`` (monotonic) on."""
    return [
        f.at
        for f in rig.log.frames
        if f.direction == "in"
        and f.at >= since
        and f.message
        and f.message[0] == 2
        and f.message[2] == "SignCertificate"
    ]


async def certificate_entries(rig: Rig) -> str:
    answer = await rig.log.call(
        "GetVariables",
        {
            "getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "CertificateEntries"}}
            ]
        },
    )
    (result,) = answer["getVariableResult"]
    assert result["attributeStatus"] == "Accepted"
    return str(result["attributeValue"])


async def test_install_list_and_delete_root_certificates(tmp_path: Path) -> None:
    csms, maker, spare = Authority.root("CSMS"), Authority.root("Maker"), Authority.root("Spare")
    async with station_201(tmp_path) as rig:
        assert await installed(rig) == {"status": "NotFound"}
        assert await install(rig, CSMS_ROOT, csms.pem) == {"status": "Accepted"}
        assert await install(rig, MAKER_ROOT, maker.pem) == {"status": "Accepted"}
        assert await install(rig, CSMS_ROOT, csms.pem) == {"status": "Accepted"}  # already there
        assert await installed(rig) == {
            "status": "Accepted",
            "certificateHashDataChain": [entry(CSMS_ROOT, csms), entry(MAKER_ROOT, maker)],
        }
        assert await installed(rig, MAKER_ROOT, "V2GRootCertificate") == {
            "status": "Accepted",
            "certificateHashDataChain": [entry(MAKER_ROOT, maker)],
        }
        iso15118 = ("V2GRootCertificate", "MORootCertificate", "V2GCertificateChain")
        assert await installed(rig, *iso15118) == {"status": "NotFound"}
        assert await certificate_entries(rig) == "2"
        changes = [e for e, _ in rig.events.raised]
        assert changes == [SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS] * 2

        # What is not a root, or not for this station, is refused with the reason.
        answer = await install(rig, CSMS_ROOT, "not a certificate")
        assert refused(answer, "Rejected", "InvalidCertificate", "not a PEM certificate")
        answer = await install(rig, CSMS_ROOT, csms.server("127.0.0.1").pem)
        assert refused(answer, "Rejected", "InvalidCertificate", "not a CA certificate")
        expired = Authority.root("Old", not_before=NOW - datetime.timedelta(days=9), days=-1)
        answer = await install(rig, MAKER_ROOT, expired.pem)
        assert refused(answer, "Rejected", "InvalidCertificate", "expired")
        answer = await install(rig, "V2GRootCertificate", spare.pem)
        assert refused(answer, "Failed", "UnsupportedParam", "no ISO 15118")
        answer = await install(rig, "MORootCertificate", "-----BEGIN CERTIFICATE-----\nAAAA")
        assert refused(answer, "Rejected", "InvalidCertificate", "cannot be read")
        assert await certificate_entries(rig) == "2"

        # The last CSMS root verifies the link: it stays (M04); the others go.
        assert await delete(rig, own(spare)) == {"status": "NotFound"}
        answer = await delete(rig, own(csms))
        assert refused(answer, "Failed", "Unspecified", "verifies the connection to the CSMS")
        assert await install(rig, CSMS_ROOT, spare.pem) == {"status": "Accepted"}
        assert await delete(rig, own(spare)) == {"status": "Accepted"}
        upper = {k: v.upper() for k, v in own(maker).items() if k != "hashAlgorithm"}
        assert await delete(rig, {**own(maker), **upper}) == {"status": "Accepted"}
        assert await installed(rig) == {
            "status": "Accepted",
            "certificateHashDataChain": [entry(CSMS_ROOT, csms)],
        }
        assert await certificate_entries(rig) == "1"


async def test_a_full_store_refuses_another_root(tmp_path: Path) -> None:
    async with station_201(tmp_path) as rig:
        limit = rig.model.spec("SecurityCtrlr", "CertificateEntries").characteristics.max_limit
        assert limit is not None
        for n in range(int(limit)):
            assert await install(rig, MAKER_ROOT, Authority.root(f"R{n}").pem) == {
                "status": "Accepted"
            }
        answer = await install(rig, CSMS_ROOT, Authority.root("One more").pem)
        assert refused(answer, "Rejected", "OutOfStorage", f"the store is full ({int(limit)}")
        assert await certificate_entries(rig) == str(int(limit))


async def test_triggered_sign_certificate_and_the_signed_chain_become_its_identity(
    tmp_path: Path,
) -> None:
    authority = Authority.root("CSMS")
    sub_ca = authority.sub_ca("CSMS Issuing CA")
    security = {"OrganizationName": "ACME Charging"}
    async with station_201(tmp_path, SecurityCtrlr=security) as rig:
        assert await install(rig, CSMS_ROOT, authority.pem) == {"status": "Accepted"}
        mark = rig.log.mark()
        assert await rig.log.call("TriggerMessage", SIGN) == {"status": "Accepted"}
        request = await rig.log.wait_for("SignCertificate", since=mark)
        assert request["certificateType"] == STATION
        assert subject(request["csr"], NameOID.COMMON_NAME) == [CP]
        assert subject(request["csr"], NameOID.ORGANIZATION_NAME) == ["ACME Charging"]
        signed = sub_ca.sign_csr(request["csr"])  # leaf, then the sub-CA
        assert await certificate_signed(rig, signed.chain_pem(), STATION) == {"status": "Accepted"}
        identity = rig.certificates.identity()
        assert identity is not None
        assert list(identity.chain) == [signed.cert, sub_ca.cert]
        assert identity.key.public_key() == signed.cert.public_key()
        assert rig.certificates.pending_key() is None
        # The station's own certificate cannot be deleted (M04.FR.06), nor is it a root.
        answer = await delete(rig, ocsp_hashes(signed.cert, sub_ca.cert))
        assert refused(answer, "Failed", "UnsupportedRequest", "cannot be deleted")
        assert rig.certificates.identity() is not None
        # No ISO 15118 here: its certificate requests are not implemented.
        for other in ("SignV2GCertificate", "SignCombinedCertificate"):
            answer = await rig.log.call("TriggerMessage", {"requestedMessage": other})
            assert answer == {"status": "NotImplemented"}
        assert len(rig.log.calls("SignCertificate")) == 1


async def test_a_chain_that_does_not_fit_is_rejected_with_a_security_event(
    tmp_path: Path,
) -> None:
    authority, other = Authority.root("CSMS"), Authority.root("Another PKI")
    async with station_201(tmp_path) as rig:
        assert await install(rig, CSMS_ROOT, authority.pem) == {"status": "Accepted"}
        answer = await certificate_signed(rig, authority.client(CP).chain_pem())
        assert refused(answer, "Rejected", "InvalidCertificate", "no signing request is pending")
        mark = rig.log.mark()
        assert await rig.log.call("TriggerMessage", SIGN) == {"status": "Accepted"}
        request = await rig.log.wait_for("SignCertificate", since=mark)
        good = authority.sign_csr(request["csr"])
        for chain, says in (
            (other.sign_csr(request["csr"]).chain_pem(), "not issued under an installed CSMS"),
            (authority.client(CP).chain_pem(), "not for the key of the pending signing request"),
            (authority.sign_csr(request["csr"], common_name="CP-X").chain_pem(), "'CP-X'"),
            ("garbage", "not a PEM certificate"),
        ):
            answer = await certificate_signed(rig, chain)
            assert refused(answer, "Rejected", "InvalidCertificate", says), (says, answer)
        answer = await certificate_signed(rig, good.chain_pem(), "V2GCertificate")
        assert refused(answer, "Rejected", "UnsupportedParam", "no ISO 15118")
        invalid = [
            info
            for event, info in rig.events.raised
            if event is SecurityEvent.INVALID_CHARGE_POINT_CERTIFICATE
        ]
        assert len(invalid) == 5 and "no signing request is pending" in str(invalid[0])
        assert V201_NAMES[SecurityEvent.INVALID_CHARGE_POINT_CERTIFICATE] == (
            "InvalidChargingStationCertificate"
        )
        assert rig.certificates.identity() is None
        # Nothing changed: the chain for the pending request is still taken.
        assert await certificate_signed(rig, good.chain_pem()) == {"status": "Accepted"}
        identity = rig.certificates.identity()
        assert identity is not None and identity.certificate == good.cert


async def test_an_unanswered_sign_certificate_is_sent_again_with_doubling_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="firmware.ocpp.certificates")
    authority = Authority.root("CSMS")
    security = {"CertSigningWaitMinimum": 2, "CertSigningRepeatTimes": 2}
    async with station_201(tmp_path, SecurityCtrlr=security) as rig:
        assert await install(rig, CSMS_ROOT, authority.pem) == {"status": "Accepted"}
        start = rig.log.frames[-1].at
        assert await rig.log.call("TriggerMessage", SIGN) == {"status": "Accepted"}
        await until(lambda: "after 2 SignCertificate resends" in caplog.text, timeout_s=10)
        requests = rig.log.calls("SignCertificate")
        assert len(requests) == 3  # the request and CertSigningRepeatTimes resends
        assert len({r["csr"] for r in requests}) == 1  # the same request each time
        first, second, third = sign_times(rig, start)
        assert second - first >= 2 * WAIT_UNIT_S  # CertSigningWaitMinimum ...
        assert third - second >= 4 * WAIT_UNIT_S  # ... doubled (A02.FR.18)
        # A late chain for that request still fits.
        late = authority.sign_csr(requests[0]["csr"])
        assert await certificate_signed(rig, late.chain_pem()) == {"status": "Accepted"}

        # A new request (a new key) starts over, with as many resends as the CSMS set now;
        # a CertificateSigned ends them.
        answer = await rig.log.call(
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "CertSigningRepeatTimes"},
                        "attributeValue": "50",
                    }
                ]
            },
        )
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        assert await rig.log.call("TriggerMessage", SIGN) == {"status": "Accepted"}
        await until(lambda: len(rig.log.calls("SignCertificate")) >= 5, timeout_s=10)
        again = rig.log.calls("SignCertificate")[3:]
        assert len({r["csr"] for r in again}) == 1 and again[0]["csr"] != requests[0]["csr"]
        renewed = authority.sign_csr(again[0]["csr"])
        assert await certificate_signed(rig, renewed.chain_pem()) == {"status": "Accepted"}
        assert "CertificateSigned came: no more SignCertificate resends" in caplog.text
        identity = rig.certificates.identity()
        assert identity is not None and identity.certificate == renewed.cert


async def test_the_station_asks_for_a_new_certificate_before_its_own_ends(
    tmp_path: Path,
) -> None:
    authority = Authority.root("CSMS")
    async with station_201(tmp_path) as rig:
        assert await install(rig, CSMS_ROOT, authority.pem) == {"status": "Accepted"}
        assert rig.log.calls("SignCertificate") == []  # no certificate yet: nothing to renew
        ending = authority.client(CP, not_after=NOW + datetime.timedelta(days=5))
        assert ending.key is not None
        mark = rig.log.mark()
        rig.certificates.install_identity(ending.key, [ending.cert], announce=False)
        request = await rig.log.wait_for("SignCertificate", since=mark)  # A03
        assert request["certificateType"] == STATION
        assert subject(request["csr"], NameOID.COMMON_NAME) == [CP]
        renewed = authority.sign_csr(request["csr"])
        assert await certificate_signed(rig, renewed.chain_pem(), STATION) == {"status": "Accepted"}
        identity = rig.certificates.identity()
        assert identity is not None and identity.certificate == renewed.cert
        previous = rig.certificates.previous_identity()
        assert previous is not None and previous.certificate == ending.cert
        assert len(rig.log.calls("SignCertificate")) == 1
