"""CertificateSigned chains: what is accepted, and every reason one is refused."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from firmware.security.chain import ChainRefused, validate
from firmware.security.keys import build_csr, generate_key
from hil.pki import Authority

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
CP = "CP-1"


@pytest.fixture(scope="module")
def root() -> Authority:
    return Authority.root("CSMS Root")


Key = ec.EllipticCurvePrivateKey


@pytest.fixture(scope="module")
def key() -> Key:
    return generate_key()


def csr(key: Key) -> str:
    return build_csr(key, CP, "ACME")


def check(
    text: str, key: Key | None, anchors: list[x509.Certificate], *, max_bytes: int = 10000
) -> list[x509.Certificate]:
    return validate(
        text,
        key=key.public_key() if key is not None else None,
        identity=CP,
        anchors=anchors,
        now=NOW,
        max_bytes=max_bytes,
    )


def test_a_leaf_issued_by_the_root_is_accepted(root: Authority, key: Key) -> None:
    leaf = root.sign_csr(csr(key))
    assert check(leaf.chain_pem(), key, [root.cert]) == [leaf.cert]


def test_a_chain_through_sub_cas_is_accepted_also_with_the_root_in_it(
    root: Authority, key: Key
) -> None:
    sub = root.sub_ca("Sub 1").sub_ca("Sub 2")
    leaf = sub.sign_csr(csr(key))
    assert len(check(leaf.chain_pem(), key, [root.cert])) == 3
    assert len(check(leaf.chain_pem() + root.pem, key, [root.cert])) == 4


def test_a_leaf_that_starts_later_is_accepted(root: Authority, key: Key) -> None:
    leaf = root.sign_csr(csr(key), not_before=NOW + DAY, not_after=NOW + 30 * DAY)
    assert check(leaf.chain_pem(), key, [root.cert]) == [leaf.cert]


def _signed_by_a_server_certificate(root: Authority, key: Key) -> str:
    server = root.server("csms.example")
    assert server.key is not None
    fake_ca = Authority("server as CA", server.key, server.cert, parent=root)
    return fake_ca.sign_csr(csr(key)).chain_pem()


NO_CLIENT_AUTH = [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)]
NO_SIGNATURE = [
    (
        x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=True,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        True,
    )
]
A_CA = [(x509.BasicConstraints(ca=True, path_length=None), True)]


def _case(root: Authority, key: Key, name: str) -> tuple[str, Key | None, list[x509.Certificate]]:
    good = root.sign_csr(csr(key))
    other = Authority.root("Another Root")
    if name == "too long":
        return good.chain_pem() + " " * 10000, key, [root.cert]
    if name == "not PEM":
        return (
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
            key,
            [root.cert],
        )
    if name == "no pending request":
        return good.chain_pem(), None, [root.cert]
    if name == "another key":
        return root.sign_csr(csr(generate_key())).chain_pem(), key, [root.cert]
    if name == "another name":
        return root.sign_csr(csr(key), common_name="CP-2").chain_pem(), key, [root.cert]
    if name == "a CA":
        return root.sign_csr(csr(key), extensions=A_CA).chain_pem(), key, [root.cert]
    if name == "no digital signature":
        return root.sign_csr(csr(key), extensions=NO_SIGNATURE).chain_pem(), key, [root.cert]
    if name == "no client authentication":
        return root.sign_csr(csr(key), extensions=NO_CLIENT_AUTH).chain_pem(), key, [root.cert]
    if name == "expired":
        leaf = root.sign_csr(csr(key), not_before=NOW - 3 * DAY, not_after=NOW - DAY)
        return leaf.chain_pem(), key, [root.cert]
    if name == "sub-CA expired":
        sub = root.sub_ca("Old Sub", not_before=NOW - 3 * DAY, not_after=NOW - DAY)
        return sub.sign_csr(csr(key)).chain_pem(), key, [root.cert]
    if name == "sub-CA not yet valid":
        sub = root.sub_ca("Future Sub", not_before=NOW + DAY, not_after=NOW + 9 * DAY)
        return sub.sign_csr(csr(key)).chain_pem(), key, [root.cert]
    if name == "broken link":
        leaf = root.sub_ca("Sub A").sign_csr(csr(key))
        return leaf.pem + root.sub_ca("Sub B").pem, key, [root.cert]
    if name == "signed by a server certificate":
        return _signed_by_a_server_certificate(root, key), key, [root.cert]
    if name == "path length":
        sub = root.sub_ca("Sub 0", path_length=0).sub_ca("Sub 1")
        return sub.sign_csr(csr(key)).chain_pem(), key, [root.cert]
    if name == "no root installed":
        return good.chain_pem(), key, []
    if name == "another PKI":
        return other.sign_csr(csr(key)).chain_pem(), key, [root.cert]
    if name == "root expired":
        old = Authority.root("Old Root", not_before=NOW - 9 * DAY, not_after=NOW - DAY)
        return old.sign_csr(csr(key), not_after=NOW + DAY).chain_pem(), key, [old.cert]
    raise AssertionError(name)


REFUSALS = [
    ("too long", "more than the limit of 10000"),
    ("not PEM", "cannot be read"),
    ("no pending request", "no signing request is pending"),
    ("another key", "not for the key of the pending signing request"),
    ("another name", "names 'CP-2', not this charge point"),
    ("a CA", "is a CA certificate"),
    ("no digital signature", "does not allow digital signatures"),
    ("no client authentication", "does not allow TLS client authentication"),
    ("expired", "the certificate expired"),
    ("sub-CA expired", "sub-CA certificate 1 expired"),
    ("sub-CA not yet valid", "sub-CA certificate 1 is valid only from"),
    ("broken link", "certificate 0 of the chain is not signed by the next one"),
    ("signed by a server certificate", "certificate 1 of the chain signs but is no CA"),
    ("path length", "exceeds its path length"),
    ("no root installed", "no CSMS root certificate is installed"),
    ("another PKI", "not issued under an installed CSMS root"),
    ("root expired", "root certificate it chains to has expired"),
]


@pytest.mark.parametrize(("name", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(root: Authority, key: Key, name: str, reason: str) -> None:
    text, pending, anchors = _case(root, key, name)
    with pytest.raises(ChainRefused, match=reason):
        check(text, pending, anchors)
