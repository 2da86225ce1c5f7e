"""Firmware signing certificates and signatures: RSA and ECDSA, and every refusal."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

from firmware.security.firmware_signing import (
    SignatureRefused,
    SigningCertificateRefused,
    check_signing_certificate,
    decode_signature,
    load_certificates,
    verify_file,
)
from tests import firmware_pki as pki
from tests.firmware_pki import DAY, ManufacturerPki

IMAGE = bytes(range(256)) * 300


@pytest.fixture(scope="module")
def bench() -> ManufacturerPki:
    return ManufacturerPki()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "image.bin"
    path.write_bytes(IMAGE)
    return path


@pytest.mark.parametrize("kind", ["ec-p256", "ec-p384", "rsa-pss", "rsa-pkcs1"])
def test_good_signatures_verify(kind: str, image: Path) -> None:
    key = {
        "ec-p256": pki.ec_key(),
        "ec-p384": pki.ec_key(ec.SECP384R1()),
        "rsa-pss": pki.rsa_key(),
        "rsa-pkcs1": pki.rsa_key(),
    }[kind]
    root = pki.root(key=pki.rsa_key() if kind.startswith("rsa") else pki.ec_key())
    signer = pki.signing_cert(root, key=key)
    cert = check_signing_certificate(signer.pem, [root.cert], pki.now())
    assert cert == signer.cert
    signature = signer.sign(IMAGE, pss=kind != "rsa-pkcs1")
    verify_file(cert, image, decode_signature(signature))
    # Line breaks in the base64 text (as `base64` writes it) do not matter.
    wrapped = "\n".join(signature[i : i + 64] for i in range(0, len(signature), 64))
    verify_file(cert, image, decode_signature(wrapped + "\n"))


def test_ecdsa_raw_r_s_signatures_verify(bench: ManufacturerPki, image: Path) -> None:
    r, s = decode_dss_signature(bench.signer.sign_raw(IMAGE))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    verify_file(bench.signer.cert, image, raw)


def test_the_first_certificate_of_a_chain_is_the_signing_one(bench: ManufacturerPki) -> None:
    chain = bench.signer.pem + bench.root.pem
    assert check_signing_certificate(chain, [bench.root.cert], pki.now()) == bench.signer.cert


def test_a_root_among_several_vouches(bench: ManufacturerPki) -> None:
    roots = [bench.untrusted_root.cert, pki.root("Old Root").cert, bench.root.cert]
    assert check_signing_certificate(bench.signer.pem, roots, pki.now()) == bench.signer.cert


def _refusal(pem: str, roots: list[pki.Issued] | None, when: object = None) -> str:
    with pytest.raises(SigningCertificateRefused) as caught:
        check_signing_certificate(
            pem,
            [r.cert for r in roots] if roots is not None else [],
            when or pki.now(),  # type: ignore[arg-type]
        )
    return str(caught.value)


def test_certificate_refusals(bench: ManufacturerPki) -> None:
    roots = [bench.root]
    assert "no PEM certificate" in _refusal("garbage", roots)
    assert "not a valid PEM certificate" in _refusal(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", roots
    )
    assert "no ManufacturerRootCertificate is installed" in _refusal(bench.signer.pem, [])
    assert "not issued by an installed ManufacturerRootCertificate" in _refusal(
        bench.untrusted.pem, roots
    )
    assert "expired on" in _refusal(bench.expired.pem, roots)
    future = pki.signing_cert(bench.root, not_before=pki.now() + DAY)
    assert "is not valid before" in _refusal(future.pem, roots)
    # Same issuer name as the trusted root, other key: a forged chain.
    impostor_root = pki.root("Manufacturer Root CA")
    forged = pki.signing_cert(impostor_root)
    assert "not signed by the root" in _refusal(forged.pem, roots)


def test_root_refusals() -> None:
    expired_root = pki.root(not_before=pki.now() - 20 * DAY, not_after=pki.now() - DAY)
    signer = pki.signing_cert(expired_root, not_before=pki.now() - 10 * DAY)
    assert "the root" in _refusal(signer.pem, [expired_root]) and "expired on" in _refusal(
        signer.pem, [expired_root]
    )
    not_ca = pki.root(ca=False)
    assert "is not a CA certificate" in _refusal(pki.signing_cert(not_ca).pem, [not_ca])
    no_cert_sign = pki.root(key_cert_sign=False)
    assert "does not allow keyCertSign" in _refusal(
        pki.signing_cert(no_cert_sign).pem, [no_cert_sign]
    )


def test_signing_certificate_usage_refusals(bench: ManufacturerPki) -> None:
    roots = [bench.root]
    no_signature = pki.signing_cert(bench.root, digital_signature=False)
    assert "does not allow digitalSignature" in _refusal(no_signature.pem, roots)
    tls_only = pki.signing_cert(bench.root, extended=[ExtendedKeyUsageOID.SERVER_AUTH])
    assert "does not allow codeSigning" in _refusal(tls_only.pem, roots)
    a_ca = pki.signing_cert(bench.root, ca=True)
    assert "is a CA certificate" in _refusal(a_ca.pem, roots)
    unknown = pki.signing_cert(bench.root, unknown_critical=True)
    assert "unknown critical extension" in _refusal(unknown.pem, roots)
    # The root itself is no signing certificate.
    assert "is a CA certificate" in _refusal(bench.root.pem, roots)


def test_weak_keys_are_refused() -> None:
    rsa_root = pki.root(key=pki.rsa_key())
    weak = pki.signing_cert(rsa_root, key=pki.rsa_key(1024))
    assert "RSA key of 1024 bits, at least 2048" in _refusal(weak.pem, [rsa_root])
    ec_root = pki.root()
    small = pki.signing_cert(ec_root, key=pki.ec_key(ec.SECP192R1()))
    assert "EC key of 192 bits, at least 224" in _refusal(small.pem, [ec_root])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the signature is empty"),
        ("  \n", "the signature is empty"),
        ("not base64!", "not base64"),
        ("QUJD=X", "not base64"),
        (base64.b64encode(b"x" * 5000).decode(), "not a signature"),
    ],
)
def test_malformed_signatures(text: str, reason: str) -> None:
    with pytest.raises(SignatureRefused, match=reason):
        decode_signature(text)


def test_signatures_that_do_not_match(bench: ManufacturerPki, image: Path) -> None:
    good = decode_signature(bench.signer.sign(IMAGE))
    with pytest.raises(SignatureRefused, match="does not match the file"):
        verify_file(bench.signer.cert, image, decode_signature(bench.signer.sign(b"other")))
    with pytest.raises(SignatureRefused, match="does not match the file"):
        verify_file(bench.untrusted.cert, image, good)  # another key
    image.write_bytes(IMAGE[:-1] + b"\x00")  # one byte changed
    with pytest.raises(SignatureRefused, match="does not match the file"):
        verify_file(bench.signer.cert, image, good)
    rsa_root = pki.root(key=pki.rsa_key())
    rsa_signer = pki.signing_cert(rsa_root, key=pki.rsa_key())
    with pytest.raises(SignatureRefused, match="does not match the file"):
        verify_file(rsa_signer.cert, image, b"\x00" * 256)


def test_load_certificates_reads_a_bundle(bench: ManufacturerPki) -> None:
    bundle = bench.root.pem + bench.untrusted_root.pem
    assert load_certificates(bundle) == [bench.root.cert, bench.untrusted_root.cert]
    with pytest.raises(ValueError, match="roots: no PEM certificate"):
        load_certificates(b"\x00\x01", "roots")
