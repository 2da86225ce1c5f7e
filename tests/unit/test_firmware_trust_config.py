"""The signed-firmware settings: security.manufacturer_root_ca, firmware_update.require_signature,
signature_suffix and signing_certificate, in the loader and the start-up check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware import preflight
from firmware.config import parse_config
from firmware.errors import ConfigError
from tests import firmware_pki as pki
from tests.firmware_pki import DAY

MINIMAL = {"ocpp": {"csms_url": "ws://127.0.0.1:9000/ocpp", "charge_point_id": "CP-1"}}


def parsed(tmp_path: Path, **sections: Any) -> Any:
    return parse_config({**MINIMAL, **sections}, "cp.yaml", base_dir=tmp_path)


def test_defaults_require_a_signature_on_the_hardware_backend_only(tmp_path: Path) -> None:
    simulated = parsed(tmp_path).firmware_update
    assert (simulated.require_signature, simulated.signature_suffix) == (False, ".sig")
    assert simulated.installer == "release" and simulated.signing_certificate is None
    assert parsed(tmp_path).security.manufacturer_root_ca is None
    hardware = parsed(tmp_path, hal={"backend": "hardware"}).firmware_update
    assert hardware.require_signature is True
    relaxed = parsed(
        tmp_path, hal={"backend": "hardware"}, firmware_update={"require_signature": False}
    )
    assert relaxed.firmware_update.require_signature is False


def test_paths_are_taken_from_the_files_directory(tmp_path: Path) -> None:
    config = parsed(
        tmp_path,
        security={"manufacturer_root_ca": "pki/roots.pem"},
        firmware_update={"signing_certificate": "/etc/cp/signer.pem", "signature_suffix": ".p7s"},
    )
    assert config.security.manufacturer_root_ca == tmp_path / "pki" / "roots.pem"
    assert config.firmware_update.signing_certificate == Path("/etc/cp/signer.pem")
    assert config.firmware_update.signature_suffix == ".p7s"


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {"firmware_update": {"require_signature": "yes"}},
            "cp.yaml: firmware_update.require_signature: must be true or false, got 'yes'",
        ),
        (
            {"firmware_update": {"signature_suffix": "/../x"}},
            "cp.yaml: firmware_update.signature_suffix: must be 1 to 32 characters",
        ),
        (
            {"firmware_update": {"signature_suffix": ""}},
            "cp.yaml: firmware_update.signature_suffix: must be a non-empty string",
        ),
        (
            {"firmware_update": {"signing_certificate": 5}},
            "cp.yaml: firmware_update.signing_certificate: must be a non-empty string",
        ),
        (
            {"security": {"manufacturer_root_ca": ""}},
            "cp.yaml: security.manufacturer_root_ca: must be a non-empty string",
        ),
        (
            {"security": {"manufacturer_root": "x.pem"}},
            "cp.yaml: security.manufacturer_root: unknown key, did you mean "
            "'manufacturer_root_ca'?",
        ),
        ({"security": ["x"]}, "cp.yaml: security: must be a mapping"),
        (
            {"firmware_update": {"installer": "rpm"}},
            "cp.yaml: firmware_update.installer: must be one of release, wheel, command, got 'rpm'",
        ),
    ],
)
def test_config_errors_name_the_key(sections: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**MINIMAL, **sections}, "cp.yaml")
    assert str(caught.value).startswith(message), caught.value


def test_the_start_up_check_reads_the_certificate_files(tmp_path: Path) -> None:
    root = pki.root()
    (tmp_path / "roots.pem").write_text(root.pem + pki.root("Second Root").pem)
    config = parsed(
        tmp_path,
        state_dir=str(tmp_path / "state"),
        security={"manufacturer_root_ca": "roots.pem"},
    )
    assert preflight.check(config) == ()
    assert len(preflight.certificate_file(tmp_path / "roots.pem", "k")) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "security.manufacturer_root_ca: cannot read {path}: No such file or directory"),
        (b"not a certificate", "security.manufacturer_root_ca: {path}: no PEM certificate"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "security.manufacturer_root_ca: {path}: not a valid PEM certificate",
        ),
        (b"x" * (1024 * 1024 + 1), "security.manufacturer_root_ca: {path} is larger than"),
    ],
)
def test_unusable_root_files_stop_the_start(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "roots.pem"
    if content is not None:
        path.write_bytes(content)
    config = parsed(tmp_path, security={"manufacturer_root_ca": str(path)})
    with pytest.raises(ConfigError) as caught:
        preflight.check(config)
    assert str(caught.value).startswith(message.format(path=path)), caught.value


def test_a_bad_signing_certificate_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "signer.pem").write_text("garbage")
    config = parsed(tmp_path, firmware_update={"signing_certificate": "signer.pem"})
    with pytest.raises(ConfigError, match=r"firmware_update\.signing_certificate: .*no PEM"):
        preflight.check(config)


def test_notices_about_trust_that_cannot_work(tmp_path: Path) -> None:
    hardware = parsed(
        tmp_path,
        hal={"backend": "hardware", "gpio": {"factory": "mock"}, "relay": {"driver": "none"}},
    )
    notices = preflight._signing_notices(hardware)
    assert notices == [
        "firmware_update.require_signature: no manufacturer root (security.manufacturer_root_ca) "
        "and no firmware_update.signing_certificate: firmware updates are refused until the CSMS "
        "installs a ManufacturerRootCertificate"
    ]
    expired = pki.root(not_before=pki.now() - 20 * DAY, not_after=pki.now() - DAY)
    (tmp_path / "old.pem").write_text(expired.pem)
    config = parsed(tmp_path, security={"manufacturer_root_ca": "old.pem"})
    (notice,) = preflight._signing_notices(config)
    assert notice.startswith(
        "security.manufacturer_root_ca: 'CN=Manufacturer Root CA,O=OpenChargeFW"
    )
    assert "is outside its validity dates" in notice
