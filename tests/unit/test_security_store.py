"""The certificate store: install and delete rules, fallbacks, identities, persistence."""

from __future__ import annotations

import datetime
import json
import stat
from pathlib import Path

import pytest

from firmware.security.certificates import HashAlgorithm, hash_data
from firmware.security.events import LoggingSink, SecurityEvent
from firmware.security.keys import generate_key
from firmware.security.store import CertificateStore, InstalledRoot, RootKind
from hil.pki import Authority

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
CSMS, MANUFACTURER = RootKind.CSMS, RootKind.MANUFACTURER


def never(_root: InstalledRoot) -> bool:
    return False


@pytest.fixture
def sink() -> LoggingSink:
    return LoggingSink()


@pytest.fixture
def store(tmp_path: Path, sink: LoggingSink) -> CertificateStore:
    return CertificateStore(tmp_path / "security", sink=sink)


def install(
    store: CertificateStore,
    kind: RootKind,
    pem: str,
    *,
    max_count: int = 10,
    replace_signed: bool = False,
) -> str:
    outcome = store.install(
        kind, pem, now=lambda: NOW, max_count=max_count, replace_signed=replace_signed
    )
    return outcome.status


def test_the_store_is_private(store: CertificateStore) -> None:
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    install(store, CSMS, Authority.root("A").pem)
    assert stat.S_IMODE((store.directory / "roots.json").stat().st_mode) == 0o600


def test_install_list_and_reload(
    tmp_path: Path, store: CertificateStore, sink: LoggingSink
) -> None:
    a, m = Authority.root("A"), Authority.root("Maker")
    assert install(store, CSMS, a.pem) == "Accepted"
    assert install(store, MANUFACTURER, m.pem) == "Accepted"
    assert install(store, CSMS, a.pem) == "Accepted"  # again: nothing changes
    assert store.roots(CSMS) == [a.cert] and store.roots(MANUFACTURER) == [m.cert]
    assert [e for e, _ in sink.raised] == [SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS] * 2
    again = CertificateStore(tmp_path / "security", sink=sink)
    assert again.roots(CSMS) == [a.cert] and again.roots(MANUFACTURER) == [m.cert]


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: "not a certificate", "not a PEM certificate"),
        (lambda: Authority.root("A").pem + Authority.root("B").pem, "one certificate expected"),
        (lambda: Authority.root("A").server("h.example").pem, "not a CA certificate"),
        (
            lambda: Authority.root("Old", not_before=NOW - 9 * DAY, not_after=NOW - DAY).pem,
            "expired",
        ),
        (
            lambda: Authority.root("New", not_before=NOW + DAY, not_after=NOW + 9 * DAY).pem,
            "valid only from",
        ),
        (lambda: Authority.root("A").sub_ca("Sub").pem, "neither self-signed nor issued by"),
    ],
    ids=["garbage", "two", "not a CA", "expired", "not yet valid", "unknown issuer"],
)
def test_unacceptable_roots_are_rejected(
    store: CertificateStore, caplog: pytest.LogCaptureFixture, make: object, why: str
) -> None:
    assert install(store, CSMS, make()) == "Rejected"  # type: ignore[operator]
    assert why in caplog.text
    assert store.installed() == []


def test_a_sub_ca_of_an_installed_root_is_accepted(store: CertificateStore) -> None:
    root = Authority.root("A")
    sub = root.sub_ca("Sub")
    assert install(store, CSMS, root.pem) == "Accepted"
    assert install(store, CSMS, sub.pem) == "Accepted"
    (entry,) = [r for r in store.installed(CSMS) if r.certificate == sub.cert]
    assert entry.hash_data() == hash_data(sub.cert, root.cert.public_key())


def test_the_store_limit_counts_every_root(store: CertificateStore) -> None:
    assert install(store, CSMS, Authority.root("A").pem, max_count=2) == "Accepted"
    assert install(store, MANUFACTURER, Authority.root("M").pem, max_count=2) == "Accepted"
    assert install(store, CSMS, Authority.root("B").pem, max_count=2) == "Rejected"
    assert len(store.installed()) == 2


def test_delete_by_hash_data_with_any_algorithm(store: CertificateStore) -> None:
    a, b = Authority.root("A"), Authority.root("B")
    install(store, CSMS, a.pem)
    install(store, CSMS, b.pem)
    wanted = hash_data(b.cert, b.cert.public_key(), HashAlgorithm.SHA384)
    assert store.delete(wanted, in_use=never).status == "Accepted"
    assert store.roots(CSMS) == [a.cert]
    assert store.delete(wanted, in_use=never).status == "NotFound"


def test_a_root_in_use_is_not_deleted(store: CertificateStore) -> None:
    a = Authority.root("A")
    install(store, CSMS, a.pem)
    wanted = hash_data(a.cert, a.cert.public_key())
    assert store.delete(wanted, in_use=lambda root: root.certificate == a.cert).status == "Failed"
    assert store.roots(CSMS) == [a.cert]


def test_additional_root_certificate_check_replaces_with_a_fallback(
    tmp_path: Path, store: CertificateStore, sink: LoggingSink
) -> None:
    old = Authority.root("Old")
    new = old.successor("New")
    stranger = Authority.root("Stranger")
    assert install(store, CSMS, old.pem, replace_signed=True) == "Accepted"  # the first one
    assert install(store, CSMS, stranger.pem, replace_signed=True) == "Rejected"
    assert install(store, CSMS, new.pem, replace_signed=True) == "Accepted"
    assert store.roots(CSMS, fallback=False) == [new.cert]
    assert store.roots(CSMS, fallback=True) == [old.cert]
    # Named by its issuer, the old root, also once that one is gone.
    (entry,) = [r for r in store.installed(CSMS) if not r.fallback]
    expected = hash_data(new.cert, old.cert.public_key())
    assert entry.hash_data() == expected
    store.drop_fallback(CSMS)
    again = CertificateStore(tmp_path / "security", sink=sink)
    assert again.roots(CSMS) == [new.cert]
    assert again.installed(CSMS)[0].hash_data() == expected
    # The next replacement must be signed by the new root.
    newer = new.successor("Newer")
    assert install(again, CSMS, old.successor("Other").pem, replace_signed=True) == "Rejected"
    assert install(again, CSMS, newer.pem, replace_signed=True) == "Accepted"


def test_an_unreadable_root_file_is_set_aside(tmp_path: Path, sink: LoggingSink) -> None:
    directory = tmp_path / "security"
    directory.mkdir()
    (directory / "roots.json").write_text("{not json")
    store = CertificateStore(directory, sink=sink)
    assert store.installed() == []
    assert (directory / "roots.json.unreadable").read_text() == "{not json"


def test_import_only_into_an_empty_kind(store: CertificateStore) -> None:
    a, b = Authority.root("A"), Authority.root("B")
    assert store.import_roots(CSMS, [a.cert]) == 1
    assert store.import_roots(CSMS, [b.cert]) == 0
    assert store.roots(CSMS) == [a.cert]


# ---------------------------------------------------------------- the station's identity


def test_identities_keep_the_previous_until_dropped(
    store: CertificateStore, sink: LoggingSink
) -> None:
    root = Authority.root("A")
    first, second = root.client("CP-1"), root.client("CP-1")
    assert first.key is not None and second.key is not None
    assert store.identity() is None
    store.install_identity(first.key, [first.cert], announce=False)
    store.install_identity(second.key, [second.cert])
    identity, previous = store.identity(), store.previous_identity()
    assert identity is not None and identity.certificate == second.cert
    assert previous is not None and previous.certificate == first.cert
    assert stat.S_IMODE(identity.path.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in identity.path.read_text()
    assert "key=" not in repr(identity)  # never in a repr, so never in a log line
    assert len(sink.raised) == 1
    store.drop_previous_identity()
    assert store.previous_identity() is None


def test_a_certificate_that_starts_later_waits(store: CertificateStore) -> None:
    root = Authority.root("A")
    current = root.client("CP-1")
    later = root.client("CP-1", not_before=NOW + DAY, not_after=NOW + 90 * DAY)
    assert current.key is not None and later.key is not None
    store.install_identity(current.key, [current.cert])
    store.install_identity(later.key, [later.cert])
    chosen = store.identity_for(lambda: NOW)
    assert chosen is not None and chosen.certificate == current.cert
    chosen = store.identity_for(lambda: NOW + 2 * DAY)
    assert chosen is not None and chosen.certificate == later.cert


def test_the_pending_key(store: CertificateStore) -> None:
    assert store.pending_key() is None
    key = generate_key()
    store.save_pending_key(key)
    pending = store.pending_key()
    assert pending is not None and pending.private_numbers() == key.private_numbers()
    assert stat.S_IMODE((store.directory / "pending-key.pem").stat().st_mode) == 0o600
    store.clear_pending_key()
    assert store.pending_key() is None


def test_the_roots_file_names_no_private_key(store: CertificateStore) -> None:
    install(store, CSMS, Authority.root("A").pem)
    document = json.loads((store.directory / "roots.json").read_text())
    assert "PRIVATE" not in json.dumps(document)
