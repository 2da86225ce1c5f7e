"""Signed firmware (OCPP 1.6 Security Whitepaper L01) and signature checks on UpdateFirmware.

A manufacturer PKI is made at test time (tests/firmware_pki.py): the station trusts
its root through ``security.manufacturer_root_ca``. The images come from the local
HTTP server of the firmware tests and are "installed" by a command that copies them.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware.clock import iso, parse_iso
from tests.firmware_pki import ManufacturerPki
from tests.integration.file_servers import Http, http_server
from tests.integration.harness import Daemon, call_frames, wait_until

MakeDaemon = Callable[..., Awaitable[Daemon]]

FIRMWARE = bytes(range(256)) * 1000
SIGNED_ACTION = "SignedFirmwareStatusNotification"


@pytest.fixture(scope="module")
def pki() -> ManufacturerPki:
    return ManufacturerPki()


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[Http]:
    async with http_server(tmp_path / "www") as server:
        (server.root / "image.bin").write_bytes(FIRMWARE)
        yield server


def _now(seconds: float = 0) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=seconds))


def settings(pki: ManufacturerPki, tmp_path: Path, target: Path, **update: Any) -> dict[str, Any]:
    roots = pki.write_roots(tmp_path / "trust" / "manufacturer-roots.pem")
    return {
        "security": {"manufacturer_root_ca": str(roots)},
        "firmware_update": {
            "installer": "command",
            "command": f"cp {{file}} {target}",
            "stall_timeout_s": 5,
            "transfer_timeout_s": 60,
            **update,
        },
    }


def signed_request(
    location: str, certificate: str, signature: str, request_id: int = 7, **firmware: Any
) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "retries": 1,
        "retryInterval": 1,
        "firmware": {
            "location": location,
            # Already due: the station's clock, set from the CSMS's currentTime at boot,
            # can be a few ms behind this process's, and a retrieveDateTime ahead of
            # the station's clock is rightly reported as DownloadScheduled first.
            "retrieveDateTime": _now(-1),
            "signingCertificate": certificate,
            "signature": signature,
            **firmware,
        },
    }


def wall(monotonic: float) -> datetime:
    """The wall time of a frame stamped with ``time.monotonic()``."""
    return datetime.now(UTC) - timedelta(seconds=time.monotonic() - monotonic)


def sequence(d: Daemon) -> list[str]:
    """BootNotification and the firmware status notifications, in the order sent."""
    out = []
    actions = ("BootNotification", "FirmwareStatusNotification", SIGNED_ACTION)
    for frame in call_frames(d.log, *actions):
        action, payload = frame.message[2], frame.message[3]
        out.append("Boot" if action == "BootNotification" else payload["status"])
    return out


async def wait_signed(d: Daemon, status: str, timeout: float = 20) -> dict[str, Any]:
    return await d.log.wait_for(SIGNED_ACTION, lambda p: p["status"] == status, timeout=timeout)


async def wait_plain(d: Daemon, status: str, timeout: float = 20) -> dict[str, Any]:
    return await d.log.wait_for(
        "FirmwareStatusNotification", lambda p: p["status"] == status, timeout=timeout
    )


async def test_a_good_signature_goes_through_every_status_and_installs(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**settings(pki, tmp_path, target))
    assert d.proc is not None
    pid = d.proc.pid
    retrieve, install = _now(1.5), _now(3.5)
    request = signed_request(
        f"{http.base}/files/image.bin",
        pki.signer.pem,
        pki.signer.sign(FIRMWARE),
        retrieveDateTime=retrieve,
        installDateTime=install,
    )
    assert await d.log.call("SignedUpdateFirmware", request) == {"status": "Accepted"}
    await wait_signed(d, "Installed")
    assert sequence(d) == [
        "Boot",
        "DownloadScheduled",
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "InstallScheduled",
        "Installing",
        "InstallRebooting",
        "Boot",
        "Installed",
    ]
    signed = d.log.calls(SIGNED_ACTION)
    assert {p.get("requestId") for p in signed} == {7}
    sent = {f.message[3]["status"]: wall(f.at) for f in call_frames(d.log, SIGNED_ACTION)}
    slack = timedelta(seconds=0.1)  # the station's clock follows the CSMS's
    assert sent["Downloading"] >= parse_iso(retrieve) - slack  # downloaded at retrieveDateTime
    assert sent["Installing"] >= parse_iso(install) - slack  # installed at installDateTime
    assert target.read_bytes() == FIRMWARE
    assert d.proc.returncode is None and d.proc.pid == pid  # restarted in place
    assert d.log.calls("FirmwareStatusNotification") == []
    await d.wait_log(r"WARNING security\.events security event FirmwareUpdated: firmware ")
    assert list((d.state_dir / "firmware").iterdir()) == []


async def test_a_bad_signature_installs_nothing(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**settings(pki, tmp_path, target))
    request = signed_request(
        f"{http.base}/files/image.bin", pki.signer.pem, pki.signer.sign(FIRMWARE + b"tampered")
    )
    assert await d.log.call("SignedUpdateFirmware", request) == {"status": "Accepted"}
    await wait_signed(d, "InvalidSignature")
    await d.wait_log(r"security event InvalidFirmwareSignature: the signature does not match")
    assert sequence(d) == ["Boot", "Downloading", "Downloaded", "InvalidSignature"]
    assert not target.exists()
    assert len(d.log.calls("BootNotification")) == 1  # no restart
    assert (await d.connector())["status"] == "Available"
    assert (await d.get("/status"))["firmware"]["status"] == "InvalidSignature"
    assert list((d.state_dir / "firmware").iterdir()) == []  # the refused file is gone


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        ("untrusted", "was not issued by an installed ManufacturerRootCertificate"),
        ("expired", "expired on"),
        ("garbage", "no PEM certificate"),
    ],
)
async def test_an_untrusted_signing_certificate_is_refused_before_download(
    make_daemon: MakeDaemon,
    http: Http,
    pki: ManufacturerPki,
    tmp_path: Path,
    which: str,
    reason: str,
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**settings(pki, tmp_path, target))
    signer = {"untrusted": pki.untrusted, "expired": pki.expired, "garbage": pki.signer}[which]
    certificate = "not a certificate" if which == "garbage" else signer.pem
    request = signed_request(
        f"{http.base}/files/image.bin", certificate, signer.sign(FIRMWARE), request_id=9
    )
    answer = await d.log.call("SignedUpdateFirmware", request)
    assert answer == {"status": "InvalidCertificate"}
    await d.wait_log(f"security event InvalidFirmwareSigningCertificate: .*{reason}")
    # Nothing was fetched, nothing is going on.
    assert [p for _, p, _ in http.seen.requests] == []
    assert d.log.calls(SIGNED_ACTION) == []
    assert (await d.get("/status"))["firmware"]["status"] == "Idle"


async def test_a_new_signed_request_cancels_the_running_one(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**settings(pki, tmp_path, target))
    other = FIRMWARE[::-1]
    (http.root / "other.bin").write_bytes(other)
    slow = signed_request(
        f"{http.base}/slow/image.bin", pki.signer.pem, pki.signer.sign(FIRMWARE), request_id=1
    )
    assert await d.log.call("SignedUpdateFirmware", slow) == {"status": "Accepted"}
    await wait_signed(d, "Downloading")
    await wait_until(lambda: http.slow_sent > 0, 10, "the slow download under way")
    second = signed_request(
        f"{http.base}/files/other.bin", pki.signer.pem, pki.signer.sign(other), request_id=2
    )
    assert await d.log.call("SignedUpdateFirmware", second) == {"status": "AcceptedCanceled"}
    await wait_signed(d, "Installed")
    assert target.read_bytes() == other
    ids = [(p["status"], p["requestId"]) for p in d.log.calls(SIGNED_ACTION)]
    assert ids[0] == ("Downloading", 1)
    assert ids[1:] == [
        ("Downloading", 2),
        ("Downloaded", 2),
        ("SignatureVerified", 2),
        ("Installing", 2),
        ("InstallRebooting", 2),
        ("Installed", 2),
    ]


async def test_a_power_cut_during_a_signed_download_resumes_and_verifies(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**settings(pki, tmp_path, target))
    request = signed_request(
        f"{http.base}/slow/image.bin", pki.signer.pem, pki.signer.sign(FIRMWARE), request_id=4
    )
    assert await d.log.call("SignedUpdateFirmware", request) == {"status": "Accepted"}
    await wait_signed(d, "Downloading")
    await wait_until(lambda: http.slow_sent >= len(FIRMWARE) // 3, 15, "a third of the image")
    await d.kill()  # power cut
    http.slow_pause_s = 0.0
    await d.start()
    await wait_signed(d, "Installed")
    ranges = http.ranges("/slow/image.bin")
    assert ranges[0] is None and ranges[1] is not None  # continued, not restarted
    assert target.read_bytes() == FIRMWARE
    seen = sequence(d)
    assert seen[:3] == ["Boot", "Downloading", "Boot"]  # then the power cut
    # Until the CSMS accepts the new BootNotification only the newest status is kept:
    # the resumed download may show from any later status on, in order.
    order = ["Downloading", "Downloaded", "SignatureVerified", "Installing"]
    resumed = seen[3:-3]
    assert resumed and resumed == sorted(resumed, key=order.index), seen
    assert seen[-3:] == ["InstallRebooting", "Boot", "Installed"]
    assert {p["requestId"] for p in d.log.calls(SIGNED_ACTION)} == {4}


# ---------------------------------------------------------------- plain UpdateFirmware


async def test_require_signature_refuses_an_unsigned_image(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**settings(pki, tmp_path, target, require_signature=True))
    location = f"{http.base}/files/image.bin"
    await d.log.call("UpdateFirmware", {"location": location, "retrieveDate": _now(), "retries": 0})
    await wait_plain(d, "InstallationFailed")
    await d.wait_log(
        r"security event InvalidFirmwareSignature: unsigned: no detached signature at "
        + f"{http.base}/files/image.bin.sig"
    )
    assert sequence(d) == ["Boot", "Downloading", "Downloaded", "InstallationFailed"]
    assert not target.exists()
    assert ("GET", "/files/image.bin.sig") in [(m, p) for m, p, _ in http.seen.requests]
    assert (await d.connector())["status"] == "Available"


async def test_require_signature_refuses_a_detached_signature_that_does_not_match(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**settings(pki, tmp_path, target, require_signature=True))
    # Signed by a certificate no manufacturer root vouches for.
    (http.root / "image.bin.sig").write_text(
        pki.untrusted.pem + pki.untrusted.sign(FIRMWARE) + "\n"
    )
    location = f"{http.base}/files/image.bin"
    await d.log.call("UpdateFirmware", {"location": location, "retrieveDate": _now()})
    await wait_plain(d, "InstallationFailed")
    await d.wait_log(
        "security event InvalidFirmwareSignature: no trusted certificate for the detached "
        "signature: .*not issued by an installed ManufacturerRootCertificate"
    )
    assert not target.exists()


async def test_require_signature_installs_an_image_with_a_valid_detached_signature(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    d = await make_daemon(**settings(pki, tmp_path, target, require_signature=True))
    # The signing certificate, then the base64 signature: what the manufacturer publishes.
    (http.root / "image.bin.sig").write_text(pki.signer.pem + pki.signer.sign(FIRMWARE) + "\n")
    location = f"{http.base}/files/image.bin"
    await d.log.call("UpdateFirmware", {"location": location, "retrieveDate": _now()})
    await wait_plain(d, "Installed")
    assert sequence(d) == ["Boot", "Downloading", "Downloaded", "Installing", "Boot", "Installed"]
    assert target.read_bytes() == FIRMWARE
    await d.wait_log("detached signature of the firmware verified with 'CN=Firmware Signing")
    await d.wait_log("security event FirmwareUpdated")


async def test_a_signing_certificate_configured_on_the_board_verifies_a_bare_signature(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    target = tmp_path / "installed.bin"
    signer = tmp_path / "trust" / "signer.pem"
    signer.parent.mkdir(parents=True, exist_ok=True)
    signer.write_text(pki.signer.pem)
    d = await make_daemon(
        **settings(
            pki,
            tmp_path,
            target,
            require_signature=True,
            signing_certificate=str(signer),
            signature_suffix=".sha256.sig",
        )
    )
    (http.root / "image.bin.sha256.sig").write_bytes(
        base64.b64decode(pki.signer.sign(FIRMWARE))  # the raw signature bytes
    )
    location = f"{http.base}/files/image.bin"
    await d.log.call("UpdateFirmware", {"location": location, "retrieveDate": _now()})
    await wait_plain(d, "Installed")
    assert target.read_bytes() == FIRMWARE


async def test_a_manufacturer_root_installed_by_the_csms_vouches_for_signed_firmware(
    make_daemon: MakeDaemon, http: Http, pki: ManufacturerPki, tmp_path: Path
) -> None:
    # No root provisioned from the file: the station trusts no signer yet.
    target = tmp_path / "installed.bin"
    configured = settings(pki, tmp_path, target)
    del configured["security"]
    d = await make_daemon(**configured)
    request = signed_request(
        f"{http.base}/files/image.bin", pki.signer.pem, pki.signer.sign(FIRMWARE), request_id=11
    )
    assert await d.log.call("SignedUpdateFirmware", request) == {"status": "InvalidCertificate"}
    installed = await d.log.call(
        "InstallCertificate",
        {"certificateType": "ManufacturerRootCertificate", "certificate": pki.root.pem},
    )
    assert installed == {"status": "Accepted"}
    ids = await d.log.call(
        "GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"}
    )
    assert ids["status"] == "Accepted" and len(ids["certificateHashData"]) == 1
    request["requestId"] = 12
    assert await d.log.call("SignedUpdateFirmware", request) == {"status": "Accepted"}
    await wait_signed(d, "Installed")
    assert target.read_bytes() == FIRMWARE
