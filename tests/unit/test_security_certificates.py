"""Certificates, hash data, keys and signing requests of the security layer.

The hash data vectors were computed with ``openssl ocsp -sha256 -issuer ... -cert ...
-reqout req.der -no_nonce`` and ``openssl ocsp -reqin req.der -req_text`` (the
same fields OCPP names a certificate by), independently of the code under test.
"""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from firmware.security.certificates import (
    HashAlgorithm,
    HashData,
    describe,
    hash_data,
    is_self_signed,
    issued_by,
    load_pem_certificates,
)
from firmware.security.errors import CertificateError
from firmware.security.files import write_atomic
from firmware.security.keys import build_csr, generate_key, load_private_key, private_pem

ROOT_EC = """-----BEGIN CERTIFICATE-----
MIIBYTCCAQagAwIBAgIBATAKBggqhkjOPQQDAjAuMRcwFQYDVQQDDA5WZWN0b3Ig
Um9vdCBFQzETMBEGA1UECgwKVmVjdG9yIFBLSTAgFw0yNDAxMDEwMDAwMDBaGA8y
MDc0MDEwMTAwMDAwMFowLjEXMBUGA1UEAwwOVmVjdG9yIFJvb3QgRUMxEzARBgNV
BAoMClZlY3RvciBQS0kwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQF2RZwl9MK
QCTweHOCgUOGil7vxr+Vaa0GrKhofvbhTzN4bxviSanjx15YmLv/9TAbmAmjSPfb
jD+EfXF44uBaoxMwETAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYC
IQDTdFOh091WnZG68bm9Rjxx84Fh7wBdjsKrRcDInuZJDAIhAKyGQODjc3S7OnTD
qaIGQwvAeDsT0SyumjlRpHl8hIG2
-----END CERTIFICATE-----
"""
SUB_EC = """-----BEGIN CERTIFICATE-----
MIIBgjCCASegAwIBAgIGAKvN7wEjMAoGCCqGSM49BAMCMC4xFzAVBgNVBAMMDlZl
Y3RvciBSb290IEVDMRMwEQYDVQQKDApWZWN0b3IgUEtJMCAXDTI0MDEwMTAwMDAw
MFoYDzIwNzQwMTAxMDAwMDAwWjAtMRYwFAYDVQQDDA1WZWN0b3IgU3ViIEVDMRMw
EQYDVQQKDApWZWN0b3IgUEtJMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEP1QzdSpm
uU4AGiSXQarWlnQW8dotkNWyo6D4whp8OlMxHcVwKvhQcSQDZReZTpaCjyWSJJzO
t28E6n366xibavELg/kQ39cjiphft08ZUnHp8zbtAoFmd4cxveE6YyVWoxMwETAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQD4kXFcRMPNu8PUmS6z
HiE/TIk5d1n07lrsT/IuvsEmnAIhAJkbei5h+YO1SQLXyXUDAJXaNaedXr6DMTTl
0sou3Oq6
-----END CERTIFICATE-----
"""  # issued by ROOT_EC, on P-384
ROOT_RSA = """-----BEGIN CERTIFICATE-----
MIIC9TCCAd2gAwIBAgIIf+3LqYdlQyEwDQYJKoZIhvcNAQELBQAwLzEYMBYGA1UE
AwwPVmVjdG9yIFJvb3QgUlNBMRMwEQYDVQQKDApWZWN0b3IgUEtJMCAXDTI0MDEw
MTAwMDAwMFoYDzIwNzQwMTAxMDAwMDAwWjAvMRgwFgYDVQQDDA9WZWN0b3IgUm9v
dCBSU0ExEzARBgNVBAoMClZlY3RvciBQS0kwggEiMA0GCSqGSIb3DQEBAQUAA4IB
DwAwggEKAoIBAQCpHJxBU0+WRiSl4GRXOxLPk82s9OHFfAeW2736ZxQUnTvsDfdF
ZyoQqKuTfExWQC6t3Sxqe6H1pxmhl68yivSemTV4i6ZDehKZMCiFrbi7agvQEd2M
CCNvtwZWW/NJwZ4eWTAJ0fh5vtBEiRZMPD8THJXPIl+r59C9ZwG8qw1dwGTn80/z
tG+QASISbwfKmt+jmnt1eQyUqAvOhc9VOTDO7f4eOzhm3A4wg37EK/Ne8yZ+/qtT
ZXKG2ueessdEEHp+4/So05gcMXJovCbINe/aPo/l/2RQl/HgxulOgrUzAsdeyrFH
SeA1wIMF1vGYJ0k9o1iLUobS3J21h+YPFfYNAgMBAAGjEzARMA8GA1UdEwEB/wQF
MAMBAf8wDQYJKoZIhvcNAQELBQADggEBAAEpyLpBo6x6xK+WzpiFHm9sgHGIMoaN
1BvR4sVAKFk7p0yXmSeJDGLcIjBOELOEO8y02RB0AisjqcuWeUkke+e4VM3RkkPX
LpBGYM4EGQbszwD750tMFbwDPJqzB833tr2ExkXoqbJdopQSWFfb3YcKAZvVv3Nk
3f3HnNt6Xb1GQcRo1toMEIjnU8PTs+NB7JqRxPmZQSsP4SRYCi/ZAaBGVLA/UbdT
yYgKa6wyH4D1ohnqKNZM8fzehTHnoScEYTY7YgccgmAl7VdmfJBP1wLhm1ypmMcG
Qxg4NsaWWfUBbmiE5DM4bdMb8M1MZRXfVj3X0/20GEdiNsc55oCqKAw=
-----END CERTIFICATE-----
"""

# (issuer, certificate): (issuerNameHash, issuerKeyHash, serialNumber) as openssl printed them
VECTORS = [
    (
        ROOT_EC,
        ROOT_EC,
        "2D233D7B1756A5BECF921B6DD2509F8A490B38ECE76953FB238C1D41000373AC",
        "688F990D1827F507E2C60535FC350DEC94F056ADE48D1F49AA9EA9D801F6F969",
        "01",
    ),
    (
        ROOT_EC,
        SUB_EC,
        "2D233D7B1756A5BECF921B6DD2509F8A490B38ECE76953FB238C1D41000373AC",
        "688F990D1827F507E2C60535FC350DEC94F056ADE48D1F49AA9EA9D801F6F969",
        "ABCDEF0123",
    ),
    (
        ROOT_RSA,
        ROOT_RSA,
        "54979A0AACF00B02F00CB7A6DC9CAC6E67209DE46D3CE0B9CDFD5E12FF05970B",
        "A713CF00FCFD8DB3DAF787C8440268A24F0DC7C974C580EB7AA9BC831C2652EC",
        "7FEDCBA987654321",
    ),
]


def _one(text: str) -> x509.Certificate:
    (cert,) = load_pem_certificates(text)
    return cert


@pytest.mark.parametrize(("issuer", "cert", "name_hash", "key_hash", "serial"), VECTORS)
def test_hash_data_matches_openssl_ocsp(
    issuer: str, cert: str, name_hash: str, key_hash: str, serial: str
) -> None:
    data = hash_data(_one(cert), _one(issuer).public_key(), HashAlgorithm.SHA256)
    assert data.issuer_name_hash == name_hash.lower()
    assert data.issuer_key_hash == key_hash.lower()
    # Lowercase hexadecimal without leading zeros (openssl prints the DER octets).
    assert data.serial_number == serial.lower().lstrip("0")


def test_hash_data_match_ignores_case_and_leading_zeros() -> None:
    data = hash_data(_one(SUB_EC), _one(ROOT_EC).public_key())
    assert data.serial_number == "abcdef0123"
    asked = HashData(
        HashAlgorithm.SHA256,
        data.issuer_name_hash.upper(),
        data.issuer_key_hash.upper(),
        "00ABCDEF0123",
    )
    assert data.matches(asked)
    assert not data.matches(replace(asked, algorithm=HashAlgorithm.SHA384))
    assert not data.matches(
        HashData(HashAlgorithm.SHA256, data.issuer_name_hash, data.issuer_key_hash, "zz")
    )


def test_sha384_and_sha512_hash_data_have_their_lengths() -> None:
    root = _one(ROOT_RSA)
    assert len(hash_data(root, root.public_key(), HashAlgorithm.SHA384).issuer_key_hash) == 96
    assert len(hash_data(root, root.public_key(), HashAlgorithm.SHA512).issuer_name_hash) == 128


def test_issuers() -> None:
    root, sub, other = _one(ROOT_EC), _one(SUB_EC), _one(ROOT_RSA)
    assert is_self_signed(root) and is_self_signed(other) and not is_self_signed(sub)
    assert issued_by(sub, root) and not issued_by(sub, other) and not issued_by(root, sub)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a PEM certificate"),
        ("hello", "not a PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot be read"),
    ],
)
def test_bad_certificates_are_named(text: str, problem: str) -> None:
    with pytest.raises(CertificateError, match=problem):
        load_pem_certificates(text)


def test_a_chain_keeps_its_order() -> None:
    assert load_pem_certificates(SUB_EC + ROOT_EC) == [_one(SUB_EC), _one(ROOT_EC)]


def test_describe_names_the_certificate() -> None:
    text = describe(_one(SUB_EC))
    assert "CN=Vector Sub EC" in text and "abcdef0123" in text and "2074-01-01" in text


# ---------------------------------------------------------------- keys and requests


def test_generated_keys_are_p256_and_requests_carry_cn_and_o() -> None:
    key = generate_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    csr = x509.load_pem_x509_csr(build_csr(key, "CP-1", "ACME Charging").encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ACME Charging"
    assert csr.public_key() == key.public_key()
    # Without a CPO name the request names no organization.
    bare = x509.load_pem_x509_csr(build_csr(key, "CP-1", None).encode())
    assert bare.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == []


def test_keys_round_trip_and_bad_keys_are_refused() -> None:
    key = generate_key()
    assert load_private_key(private_pem(key)).private_numbers() == key.private_numbers()
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(CertificateError, match="at least 2048"):
        load_private_key(private_pem(weak))
    small = ec.generate_private_key(ec.SECP192R1())
    with pytest.raises(CertificateError, match="at least 224"):
        load_private_key(private_pem(small))
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(CertificateError, match="encrypted"):
        load_private_key(encrypted)
    with pytest.raises(CertificateError, match="not a PEM private key"):
        load_private_key(b"garbage")


def test_atomic_writes_are_private_and_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "client.pem"
    write_atomic(target, b"old")
    assert target.read_bytes() == b"old"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    def power_cut(_src: object, _dst: object) -> None:
        raise OSError("power cut")

    # A failure before the rename leaves the old file as it was, and no temporary file.
    monkeypatch.setattr("firmware.security.files.os.replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["client.pem"]
