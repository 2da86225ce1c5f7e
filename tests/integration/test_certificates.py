"""Certificate management end to end: the station's certificate (SignCertificate,
CertificateSigned) and the root certificates (Install, Delete, GetInstalledCertificateIds)."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from hil.csms import BenchCsms
from hil.pki import Authority
from tests.integration.harness import Daemon, wait_until
from tests.integration.tls_bench import PASSWORD, TlsBench, certificate, use

MakeDaemon = Callable[..., Awaitable[Daemon]]
NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
CS_ROOT = "CentralSystemRootCertificate"
MAKER_ROOT = "ManufacturerRootCertificate"


@pytest.fixture
def bench(tmp_path: Path) -> TlsBench:
    return TlsBench(tmp_path / "pki")


@pytest.fixture
async def csms(bench: TlsBench) -> AsyncIterator[BenchCsms]:
    async with BenchCsms(heartbeat_interval=300, tls=bench.server()) as server:
        server.passwords["CP-1"] = PASSWORD
        yield server


def station(
    bench: TlsBench, profile: int, config: dict[str, Any] | None = None, **security: Any
) -> dict[str, Any]:
    return {
        "ocpp": {
            "password": PASSWORD,
            "config": {"SecurityProfile": profile, "CpoName": "ACME Charging", **(config or {})},
        },
        "security": {"csms_root_ca": bench.root_file(), **security},
    }


def subject(csr_pem: str, oid: x509.ObjectIdentifier) -> list[str]:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    return [str(a.value) for a in csr.subject.get_attributes_for_oid(oid)]


async def test_trigger_sign_certificate_signed_and_the_next_connection_uses_it(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    old = bench.client()
    d = await make_daemon(**station(bench, 3, **bench.client_files(old)))
    assert certificate(d.log.client_certificates[-1]) == old.cert
    mark = d.log.mark()
    answer = await d.log.call(
        "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
    )
    assert answer["status"] == "Accepted"
    request = await d.log.wait_for("SignCertificate", since=mark)
    assert subject(request["csr"], NameOID.COMMON_NAME) == ["CP-1"]
    assert subject(request["csr"], NameOID.ORGANIZATION_NAME) == ["ACME Charging"]
    new = bench.root.sign_csr(request["csr"])
    answer = await d.log.call("CertificateSigned", {"certificateChain": new.chain_pem()})
    assert answer["status"] == "Accepted"
    await d.wait_log(r"security event ReconfigurationOfSecurityParameters: charge point cert")
    # Used from the next connection on.
    await csms.drop("CP-1")
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect")
    assert certificate(d.log.client_certificates[-1]) == new.cert
    assert d.log.basic_auth[-1] is None
    # The key of the new certificate was made on the station and stays there.
    key_file = d.state_dir / "security" / "client.pem"
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert key.public_key() == new.cert.public_key()
    assert "PRIVATE KEY-----\n" not in d.log_path.read_text()
    # Once the new one worked, the old key is gone (the station learns that its handshake
    # worked a moment after the CSMS has counted the connection); a restart keeps the new one.
    previous = d.state_dir / "security" / "client.previous.pem"
    await wait_until(lambda: not previous.exists(), 10, "the previous key removed")
    assert await d.stop() == 0
    await d.start()
    assert certificate(d.log.client_certificates[-1]) == new.cert


async def test_a_chain_from_another_pki_is_rejected_and_changes_nothing(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    old = bench.client()
    limit = {"CertificateSignedMaxChainSize": 2000}
    d = await make_daemon(**station(bench, 3, limit, **bench.client_files(old)))
    mark = d.log.mark()
    await d.log.call("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
    request = await d.log.wait_for("SignCertificate", since=mark)
    foreign = bench.other.sign_csr(request["csr"])
    answer = await d.log.call("CertificateSigned", {"certificateChain": foreign.chain_pem()})
    assert answer["status"] == "Rejected"
    await d.wait_log(
        r"security event InvalidChargePointCertificate: it is not issued under an installed"
    )
    # The right chain, but longer than CertificateSignedMaxChainSize: refused too.
    good = bench.root.sign_csr(request["csr"])
    padded = good.chain_pem() + "\n" * (2001 - len(good.chain_pem()))
    answer = await d.log.call("CertificateSigned", {"certificateChain": padded})
    assert answer["status"] == "Rejected"
    await d.wait_log(r"InvalidChargePointCertificate: the chain has 2001 bytes, more than the")
    await csms.drop("CP-1")
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect")
    assert certificate(d.log.client_certificates[-1]) == old.cert
    answer = await d.log.call("CertificateSigned", {"certificateChain": good.chain_pem()})
    assert answer["status"] == "Accepted"
    await csms.drop("CP-1")
    await wait_until(lambda: d.log.connections == 3 and d.log.connected, 10, "reconnect")
    assert certificate(d.log.client_certificates[-1]) == good.cert


async def test_the_station_asks_for_a_new_certificate_before_its_own_expires(
    make_daemon: MakeDaemon, bench: TlsBench
) -> None:
    ending = bench.client(not_after=NOW + 5 * DAY)
    d = await make_daemon(
        **station(bench, 3, renew_before_days=7, **bench.client_files(ending)),
    )
    request = await d.log.wait_for("SignCertificate")
    assert subject(request["csr"], NameOID.COMMON_NAME) == ["CP-1"]
    await d.wait_log(r"charge point certificate expires on .*asking for a new one")


def ocsp_hashes(cert: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """CertificateHashData computed the OCSP way, from the EC point itself."""
    point = issuer.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(point).hexdigest(),
        "serialNumber": format(cert.serial_number, "x"),
    }


async def installed(d: Daemon, kind: str) -> list[dict[str, str]]:
    answer = await d.log.call("GetInstalledCertificateIds", {"certificateType": kind})
    if answer["status"] == "NotFound":
        return []
    hashes: list[dict[str, str]] = answer["certificateHashData"]
    return hashes


async def test_install_delete_and_list_root_certificates(
    make_daemon: MakeDaemon, bench: TlsBench
) -> None:
    d = await make_daemon(**station(bench, 2, config={"CertificateStoreMaxLength": 3}))
    a = bench.root
    b, maker, extra = Authority.root("B"), Authority.root("Maker"), Authority.root("Extra")
    assert await installed(d, CS_ROOT) == [ocsp_hashes(a.cert, a.cert)]
    assert await installed(d, MAKER_ROOT) == []

    async def install(kind: str, pem: str) -> str:
        answer = await d.log.call(
            "InstallCertificate", {"certificateType": kind, "certificate": pem}
        )
        return str(answer["status"])

    async def delete(hashes: dict[str, str]) -> str:
        answer = await d.log.call("DeleteCertificate", {"certificateHashData": hashes})
        return str(answer["status"])

    assert await install(CS_ROOT, b.pem) == "Accepted"
    await d.wait_log(r"security event ReconfigurationOfSecurityParameters: csms root cert")
    assert await install(MAKER_ROOT, maker.pem) == "Accepted"
    assert await install(CS_ROOT, extra.pem) == "Rejected"  # CertificateStoreMaxLength
    assert await install(CS_ROOT, a.server("127.0.0.1").pem) == "Rejected"  # not a CA
    assert await installed(d, CS_ROOT) == [ocsp_hashes(a.cert, a.cert), ocsp_hashes(b.cert, b.cert)]
    assert await installed(d, MAKER_ROOT) == [ocsp_hashes(maker.cert, maker.cert)]
    # The root that verifies the link stays.
    assert await delete(ocsp_hashes(a.cert, a.cert)) == "Failed"
    assert await delete(ocsp_hashes(b.cert, b.cert)) == "Accepted"
    assert await delete(ocsp_hashes(b.cert, b.cert)) == "NotFound"
    # The store survives a restart.
    assert await d.stop() == 0
    await d.start()
    assert await installed(d, CS_ROOT) == [ocsp_hashes(a.cert, a.cert)]
    assert await installed(d, MAKER_ROOT) == [ocsp_hashes(maker.cert, maker.cert)]
    assert await delete(ocsp_hashes(maker.cert, maker.cert)) == "Accepted"
    assert await installed(d, MAKER_ROOT) == []
    assert d.log.connections == 2


async def test_a_new_csms_root_signed_by_the_old_one_replaces_it_once_it_works(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    d = await make_daemon(**station(bench, 2, config={"AdditionalRootCertificateCheck": True}))
    old = bench.root
    new = old.successor("CSMS Root 2")
    answer = await d.log.call(
        "InstallCertificate", {"certificateType": CS_ROOT, "certificate": Authority.root("X").pem}
    )
    assert answer["status"] == "Rejected"  # not signed by the installed root
    answer = await d.log.call(
        "InstallCertificate", {"certificateType": CS_ROOT, "certificate": new.pem}
    )
    assert answer["status"] == "Accepted"
    assert await installed(d, CS_ROOT) == [
        ocsp_hashes(old.cert, old.cert),
        ocsp_hashes(new.cert, old.cert),
    ]
    # The CSMS still presents a certificate of the old root: the old one is the fallback.
    await csms.drop("CP-1")
    await d.wait_log(r"the new CSMS root certificate does not verify the CSMS; trying the old")
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect")
    await d.wait_log(r"connected with the old CSMS root certificate; the new one is kept")
    # The CSMS moves to the new PKI: the first connection the new root verifies ends the old.
    use(csms, bench.server(new))
    await csms.drop("CP-1")
    await wait_until(lambda: d.log.connections == 3 and d.log.connected, 10, "reconnect")
    await d.wait_log(r"fallback csms root certificate removed")
    assert await installed(d, CS_ROOT) == [ocsp_hashes(new.cert, old.cert)]


async def test_over_2_0_1_a_triggered_certificate_is_used_from_the_next_connection(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    """The 2.0.1 front-end end to end (A02, M03, M04): its handlers, its trigger and the
    link's knowledge of the root in use, at security profile 3."""
    csms.versions = ["2.0.1"]
    old = bench.client()
    security = {"SecurityProfile": 3, "OrganizationName": "ACME Charging"}
    d = await make_daemon(
        ocpp={"version": "2.0.1"},
        device_model={"SecurityCtrlr": security},
        security={"csms_root_ca": bench.root_file(), **bench.client_files(old)},
    )
    assert d.log.versions == ["2.0.1"]
    assert certificate(d.log.client_certificates[-1]) == old.cert
    root = ocsp_hashes(bench.root.cert, bench.root.cert)
    answer = await d.log.call(
        "GetInstalledCertificateIds", {"certificateType": ["CSMSRootCertificate"]}
    )
    assert answer == {
        "status": "Accepted",
        "certificateHashDataChain": [
            {"certificateType": "CSMSRootCertificate", "certificateHashData": root}
        ],
    }
    answer = await d.log.call("DeleteCertificate", {"certificateHashData": root})
    assert answer["status"] == "Failed"  # it verifies the link
    mark = d.log.mark()
    trigger = {"requestedMessage": "SignChargingStationCertificate"}
    assert await d.log.call("TriggerMessage", trigger) == {"status": "Accepted"}
    request = await d.log.wait_for("SignCertificate", since=mark)
    assert request["certificateType"] == "ChargingStationCertificate"
    assert subject(request["csr"], NameOID.COMMON_NAME) == ["CP-1"]
    assert subject(request["csr"], NameOID.ORGANIZATION_NAME) == ["ACME Charging"]
    new = bench.root.sign_csr(request["csr"])
    signed = {"certificateChain": new.chain_pem(), "certificateType": "ChargingStationCertificate"}
    assert await d.log.call("CertificateSigned", signed) == {"status": "Accepted"}
    await csms.drop("CP-1")
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect")
    assert certificate(d.log.client_certificates[-1]) == new.cert
    assert d.log.versions == ["2.0.1", "2.0.1"]
