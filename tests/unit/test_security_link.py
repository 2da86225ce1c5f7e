"""The link's security, attempt by attempt: credentials, trust, fallbacks, events."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.http11 import Response

from firmware.security.events import LoggingSink, SecurityEvent
from firmware.security.link import TRIAL_FILE, Attempt, LinkSecurity
from firmware.security.store import CertificateStore, RootKind
from firmware.security.tls import WHITEPAPER_TLS12_CIPHERS, classify
from hil.csms import BenchCsms
from hil.pki import Authority, server_context

NOW = datetime.datetime.now(datetime.UTC)
RECONFIGURED = SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS
BAD_CERTIFICATE = SecurityEvent.INVALID_CENTRAL_SYSTEM_CERTIFICATE


class Station:
    """The parts of a station the link security reads and writes."""

    def __init__(self, directory: Path, *, tls: bool = True, profile: int = 1) -> None:
        self.sink = LoggingSink()
        self.store = CertificateStore(directory, sink=self.sink)
        self.profile = profile
        self.reverted: list[int] = []
        self.tls = tls

    def link(self) -> LinkSecurity:
        return LinkSecurity(
            self.store,
            charge_point_id="CP-1",
            tls=self.tls,
            profile=lambda: self.profile,
            revert_profile=self._revert,
            password=lambda: "0123456789abcdef",
            sink=self.sink,
            now=lambda: NOW,
        )

    def _revert(self, profile: int) -> None:
        self.reverted.append(profile)
        self.profile = profile

    def events(self) -> list[SecurityEvent]:
        return [event for event, _ in self.sink.raised]


def verify_failed() -> ssl.SSLCertVerificationError:
    return ssl.SSLCertVerificationError(1, "certificate verify failed")


@pytest.fixture
def root() -> Authority:
    return Authority.root("CSMS Root")


@pytest.fixture
def station(tmp_path: Path, root: Authority) -> Station:
    station = Station(tmp_path / "security")
    station.store.import_roots(RootKind.CSMS, [root.cert])
    return station


def test_credentials_of_each_profile(tmp_path: Path, station: Station, root: Authority) -> None:
    client = root.client("CP-1")
    assert client.key is not None
    station.store.install_identity(client.key, [client.cert])
    link = station.link()
    for profile, basic in ((0, False), (1, True), (2, True), (3, False)):
        station.profile = profile
        attempt = link.attempt()
        assert ("Authorization" in attempt.headers) is basic
        assert attempt.ssl is not None and attempt.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
        assert (attempt.identity is not None) is (profile == 3)
        tls12 = {c["name"] for c in attempt.ssl.get_ciphers() if c["protocol"] == "TLSv1.2"}
        if profile >= 2:
            assert tls12 == set(WHITEPAPER_TLS12_CIPHERS)
            assert attempt.roots == "primary"
        else:  # not pinned: the system store as well, Python's default suites
            assert "ECDHE-RSA-AES128-GCM-SHA256" in tls12 and attempt.roots == "all"
    plain = Station(tmp_path / "plain", tls=False)
    assert plain.link().attempt().ssl is None


def test_a_raised_profile_that_fails_falls_back(station: Station) -> None:
    link = station.link()
    link.connected(link.attempt())  # profile 1 works
    station.profile = 2
    attempt = link.attempt()
    assert attempt.trial_from == 1
    assert (station.store.directory / TRIAL_FILE).exists()
    assert link.failed(attempt, verify_failed()) is True  # at once, with profile 1
    assert station.reverted == [1]
    assert station.events() == [BAD_CERTIFICATE, RECONFIGURED]
    assert "back to security profile 1" in str(station.sink.raised[-1][1])
    again = link.attempt()
    assert again.profile == 1 and again.trial_from is None
    assert not (station.store.directory / TRIAL_FILE).exists()


def test_a_network_failure_says_nothing_about_the_profile(station: Station) -> None:
    link = station.link()
    link.connected(link.attempt())
    station.profile = 2
    attempt = link.attempt()
    assert link.failed(attempt, ConnectionRefusedError(111, "refused")) is False
    assert link.failed(attempt, TimeoutError()) is False
    assert station.reverted == [] and station.events() == []
    # The trial survives a restart: a power cut in the middle can still fall back.
    restarted = station.link()
    attempt = restarted.attempt()
    assert attempt.trial_from == 1
    response = Response(401, "Unauthorized", Headers())
    assert restarted.failed(attempt, InvalidStatus(response)) is True
    assert station.reverted == [1]
    assert station.events()[0] is SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CENTRAL_SYSTEM


def test_a_raised_profile_that_works_is_kept(station: Station) -> None:
    link = station.link()
    link.connected(link.attempt())
    station.profile = 2
    link.connected(link.attempt())
    assert not (station.store.directory / TRIAL_FILE).exists()
    station.profile = 2
    assert link.attempt().trial_from is None


def test_one_event_per_kind_of_failure_until_a_connection_works(station: Station) -> None:
    link = station.link()
    for _ in range(3):
        assert link.failed(link.attempt(), verify_failed()) is False
    assert station.events() == [BAD_CERTIFICATE]
    alert = ssl.SSLError(1, "alert")
    alert.reason = "TLSV1_ALERT_PROTOCOL_VERSION"
    link.failed(link.attempt(), alert)
    assert station.events() == [BAD_CERTIFICATE, SecurityEvent.INVALID_TLS_VERSION]
    link.connected(link.attempt())
    link.failed(link.attempt(), verify_failed())
    assert station.events()[-1] is BAD_CERTIFICATE and len(station.events()) == 3


def test_the_old_root_is_tried_when_the_new_one_fails(station: Station, root: Authority) -> None:
    station.profile = 2
    new = root.successor("New Root")
    outcome = station.store.install(
        RootKind.CSMS, new.pem, now=lambda: NOW, max_count=5, replace_signed=True
    )
    assert outcome.status == "Accepted"
    link = station.link()
    first = link.attempt()
    assert first.roots == "primary"
    assert link.failed(first, verify_failed()) is True
    second = link.attempt()
    assert second.roots == "fallback"
    link.connected(second)  # the CSMS still uses the old PKI: both stay
    assert station.store.roots(RootKind.CSMS, fallback=True) == [root.cert]
    third = link.attempt()
    assert third.roots == "primary"
    link.connected(third)  # the new root verified the CSMS: the old one goes
    assert station.store.roots(RootKind.CSMS) == [new.cert]


def test_the_previous_certificate_is_tried_when_the_new_one_is_refused(
    station: Station, root: Authority
) -> None:
    station.profile = 3
    old, new = root.client("CP-1"), root.client("CP-1")
    assert old.key is not None and new.key is not None
    station.store.install_identity(old.key, [old.cert])
    station.store.install_identity(new.key, [new.cert])
    link = station.link()
    first = link.attempt()
    assert first.identity is not None and first.identity.certificate == new.cert
    refused = ssl.SSLError(1, "alert")
    refused.reason = "TLSV1_ALERT_UNKNOWN_CA"
    assert link.failed(first, refused) is True
    second = link.attempt()
    assert second.identity is not None and second.identity.certificate == old.cert
    link.connected(second)
    assert station.store.previous_identity() is not None  # the new one has not worked yet
    third = link.attempt()
    link.connected(third)
    assert station.store.previous_identity() is None


def test_without_knowing_the_anchor_the_last_root_is_in_use(
    station: Station, root: Authority
) -> None:
    link = station.link()
    (only,) = station.store.installed(RootKind.CSMS)
    assert link.root_in_use(only)
    station.store.import_roots(RootKind.MANUFACTURER, [Authority.root("Maker").cert])
    other = Authority.root("Other")
    station.store.install(RootKind.CSMS, other.pem, now=lambda: NOW, max_count=5)
    assert not any(link.root_in_use(r) for r in station.store.installed())


@pytest.mark.parametrize(
    ("err", "event"),
    [
        (
            InvalidStatus(Response(403, "Forbidden", Headers())),
            "FailedToAuthenticateAtCentralSystem",
        ),
        (InvalidStatus(Response(503, "Unavailable", Headers())), None),
        (OSError(113, "No route to host"), None),
        (InvalidMessage("did not receive a valid HTTP response"), None),
    ],
)
def test_classify(err: BaseException, event: str | None) -> None:
    failure = classify(err)
    assert (failure.event.value if failure and failure.event else None) == event


# ---------------------------------------------------------------- over real TLS


@pytest.fixture
async def csms(tmp_path: Path, root: Authority) -> AsyncIterator[BenchCsms]:
    context = server_context(root.server("127.0.0.1"), tmp_path, client_ca=[root])
    async with BenchCsms(tls=context) as server:
        yield server


async def open_link(csms: BenchCsms, link: LinkSecurity) -> Attempt:
    attempt = link.attempt()
    async with connect(
        f"{csms.url}/CP-1",
        ssl=attempt.ssl,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=dict(attempt.headers),
    ) as ws:
        link.connected(attempt, ws.transport)
    return attempt


async def test_the_root_that_verified_the_link_is_the_one_in_use(
    csms: BenchCsms, station: Station, root: Authority
) -> None:
    station.profile = 2
    other = Authority.root("Other")
    station.store.install(RootKind.CSMS, other.pem, now=lambda: NOW, max_count=5)
    link = station.link()
    await open_link(csms, link)
    in_use = {
        r.certificate.subject.rfc4514_string()
        for r in station.store.installed()
        if link.root_in_use(r)
    }
    assert in_use == {"CN=CSMS Root"}


async def test_profile_3_presents_the_certificate_and_no_password(
    csms: BenchCsms, station: Station, root: Authority
) -> None:
    client = root.client("CP-1")
    assert client.key is not None
    station.store.install_identity(client.key, [client.cert])
    station.profile = 3
    await open_link(csms, station.link())
    log = csms.station("CP-1")
    assert log.client_certificate_names == ["CP-1"] and log.basic_auth == [None]
    assert log.tls_versions == ["TLSv1.3"]
