"""Security profiles 2 and 3 end to end: real daemon, real TLS, the bench PKI.

Profiles 0 and 1 over ws:// are in test_transport.py and test_standard_keys.py.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hil.csms import BenchCsms
from tests.integration.harness import ROOT, Daemon, wait_until
from tests.integration.tls_bench import PASSWORD, TlsBench, certificate, use

MakeDaemon = Callable[..., Awaitable[Daemon]]
NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@pytest.fixture
def bench(tmp_path: Path) -> TlsBench:
    return TlsBench(tmp_path / "pki")


@pytest.fixture
async def csms(bench: TlsBench) -> AsyncIterator[BenchCsms]:
    async with BenchCsms(heartbeat_interval=300, tls=bench.server()) as server:
        server.passwords["CP-1"] = PASSWORD
        yield server


def station(bench: TlsBench, profile: int, **security: Any) -> dict[str, Any]:
    return {
        "ocpp": {"password": PASSWORD, "config": {"SecurityProfile": profile, "CpoName": "ACME"}},
        "security": {"csms_root_ca": bench.root_file(), **security},
    }


async def security_profile(d: Daemon) -> str:
    answer = await d.log.call("GetConfiguration", {"key": ["SecurityProfile"]})
    return str(answer["configurationKey"][0]["value"])


async def test_profile_2_is_basic_auth_over_tls_verified_by_the_installed_root(
    make_daemon: MakeDaemon, bench: TlsBench
) -> None:
    d = await make_daemon(**station(bench, 2))
    assert d.log.basic_auth == [("CP-1", PASSWORD)]
    assert d.log.client_certificates == [None]
    assert d.log.tls_versions[0] in ("TLSv1.2", "TLSv1.3")
    assert PASSWORD not in d.log_path.read_text()


async def test_profile_2_with_tls_1_2_uses_a_whitepaper_cipher_suite(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    tls12 = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    use(csms, bench.server(versions=tls12))
    d = await make_daemon(**station(bench, 2))
    assert d.log.tls_versions == ["TLSv1.2"]


async def test_profile_3_presents_its_certificate_and_no_password(
    make_daemon: MakeDaemon, bench: TlsBench
) -> None:
    client = bench.client()
    d = await make_daemon(**station(bench, 3, **bench.client_files(client)))
    assert d.log.basic_auth == [None]
    assert certificate(d.log.client_certificates[0]) == client.cert
    # The key was copied into the station's store: 0600, and never in the log.
    stored = d.state_dir / "security" / "client.pem"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert "PRIVATE KEY-----\n" not in d.log_path.read_text()


REFUSED = [
    ("another root", "InvalidCentralSystemCertificate", {"issuer": "other"}),
    (
        "expired",
        "InvalidCentralSystemCertificate",
        {"not_before": NOW - 3 * DAY, "not_after": NOW - DAY},
    ),
    ("another host", "InvalidCentralSystemCertificate", {"hosts": ("csms.example",)}),
    (
        "TLS 1.1 only",
        "InvalidTLSVersion",
        {"versions": (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)},
    ),
    (
        "no common cipher suite",
        "InvalidTLSCipherSuite",
        {
            "versions": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2),
            "ciphers": "ECDHE-ECDSA-AES128-SHA256",
        },
    ),
]


@pytest.mark.parametrize(("case", "event", "server"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_a_csms_the_station_cannot_trust_is_refused(
    make_daemon: MakeDaemon,
    bench: TlsBench,
    csms: BenchCsms,
    case: str,
    event: str,
    server: dict[str, Any],
) -> None:
    options = dict(server)
    issuer = bench.other if options.pop("issuer", None) == "other" else bench.root
    use(csms, bench.server(issuer, **options))
    d = await make_daemon(wait_boot=False, **station(bench, 2))
    await d.wait_log(rf"security event {event}: ")
    first = await d.wait_log(r"cannot connect to wss://")
    assert d.log.connections == 0
    assert (await d.get("/status"))["ocpp"]["connected"] is False
    # One event for a kind of failure, however often the station tries again.
    await d.wait_log(r"cannot connect to wss://", since=first + 1)
    assert len([x for x in d.log_lines() if f"security event {event}" in x]) == 1


async def test_raising_the_profile_1_to_2_to_3_reconnects_each_time(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    client = bench.client()
    d = await make_daemon(**station(bench, 1, **bench.client_files(client)))
    assert d.log.basic_auth == [("CP-1", PASSWORD)]
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    assert answer["status"] == "Accepted"
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect at 2")
    assert d.log.basic_auth[-1] == ("CP-1", PASSWORD) and d.log.client_certificates[-1] is None
    await d.wait_log(
        r"security event ReconfigurationOfSecurityParameters: SecurityProfile set to 2"
    )
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "3"})
    assert answer["status"] == "Accepted"
    await wait_until(lambda: d.log.connections == 3 and d.log.connected, 10, "reconnect at 3")
    assert d.log.basic_auth[-1] is None
    assert certificate(d.log.client_certificates[-1]) == client.cert
    assert await security_profile(d) == "3"
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    assert answer["status"] == "Rejected"  # never lowered
    # A restart keeps it, although the file says 1.
    assert await d.stop() == 0
    await d.start()
    assert d.log.basic_auth[-1] is None and await security_profile(d) == "3"
    assert len(d.log.calls("BootNotification")) == 2


async def test_a_raised_profile_the_csms_refuses_falls_back_and_stays_there(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    # A certificate of another PKI: valid, so profile 3 may be tried; the CSMS refuses it.
    foreign = bench.client(bench.other)
    d = await make_daemon(**station(bench, 2, **bench.client_files(foreign)))
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "3"})
    assert answer["status"] == "Accepted"
    await d.wait_log(r"security event FailedToAuthenticateAtCentralSystem: ")
    await d.wait_log(r"security profile 3 failed .*back to security profile 2")
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect at 2")
    assert d.log.basic_auth[-1] == ("CP-1", PASSWORD) and d.log.client_certificates[-1] is None
    assert await security_profile(d) == "2"
    assert await d.stop() == 0
    await d.start()
    assert await security_profile(d) == "2" and d.log.basic_auth[-1] == ("CP-1", PASSWORD)


async def test_a_raise_to_2_with_a_csms_the_installed_root_does_not_verify_falls_back(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    # The CSMS's certificate comes from a PKI the system store trusts (a public CA, say),
    # not from the root installed for profile 2.
    use(csms, bench.server(bench.other))
    system_store = {"SSL_CERT_FILE": bench.root_file(bench.other)}
    d = await make_daemon(env=system_store, **station(bench, 1))
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    assert answer["status"] == "Accepted"
    await d.wait_log(r"security event InvalidCentralSystemCertificate: ")
    await d.wait_log(r"back to security profile 1")
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect at 1")
    assert await security_profile(d) == "1"


async def test_profile_3_is_refused_without_a_certificate(
    make_daemon: MakeDaemon, bench: TlsBench
) -> None:
    d = await make_daemon(**station(bench, 2))
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "3"})
    assert answer["status"] == "Rejected"
    await d.wait_log(r"SecurityProfile rejected: .*needs a valid charge point certificate")
    assert d.log.connections == 1


async def test_a_raised_profile_never_runs_over_ws(
    make_daemon: MakeDaemon, bench: TlsBench, csms: BenchCsms
) -> None:
    d = await make_daemon(**station(bench, 1))
    answer = await d.log.call("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    assert answer["status"] == "Accepted"
    await wait_until(lambda: d.log.connections == 2 and d.log.connected, 10, "reconnect at 2")
    assert await d.stop() == 0
    # The file is edited to a plain ws:// URL: the stored profile 2 refuses to start.
    d.write_config({"ocpp": {"csms_url": "ws://127.0.0.1:9/ocpp"}})
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "firmware", "run", "--config", str(d.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert ran.returncode == 2
    assert "ocpp.csms_url: the station is at SecurityProfile 2" in ran.stderr
