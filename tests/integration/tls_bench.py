"""The bench PKI on files, for stations started with ``make_daemon``.

``TlsBench`` holds the CSMS's root (``root``), a foreign one (``other``) and the
directory their files go to; ``server(...)`` makes the bench CSMS's TLS
context for any kind of CSMS, good or bad.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from hil.csms import BenchCsms
from hil.pki import Authority, Issued, server_context, write_pem

HOST = "127.0.0.1"
PASSWORD = "0123456789abcdef0123"


@dataclass
class TlsBench:
    directory: Path
    root: Authority = field(default_factory=lambda: Authority.root("CSMS Root"))
    other: Authority = field(default_factory=lambda: Authority.root("Another Root"))

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def root_file(self, authority: Authority | None = None) -> str:
        authority = authority or self.root
        return str(write_pem(self.directory / f"{authority.name}.pem", authority.cert))

    def server(
        self,
        issuer: Authority | None = None,
        *,
        hosts: tuple[str, ...] = (HOST,),
        **options: Any,
    ) -> ssl.SSLContext:
        """A CSMS TLS context; client certificates of ``root`` are checked when sent."""
        issued = (issuer or self.root).server(*hosts, **_validity(options))
        return server_context(issued, self.directory, client_ca=[self.root], **options)

    def client(self, issuer: Authority | None = None, **validity: Any) -> Issued:
        return (issuer or self.root).client("CP-1", **validity)

    def client_files(self, client: Issued) -> dict[str, str]:
        """``security:`` settings provisioning ``client`` as the station's certificate."""
        cert, key = client.write(self.directory, f"client-{client.cert.serial_number:x}")
        return {"charge_point_certificate": str(cert), "charge_point_key": str(key)}


def _validity(options: dict[str, Any]) -> dict[str, Any]:
    return {k: options.pop(k) for k in ("not_before", "not_after") if k in options}


def use(csms: BenchCsms, context: ssl.SSLContext) -> None:
    """The bench CSMS uses ``context`` from its next handshake on."""
    assert csms.tls_front is not None
    csms.tls_front.context = context


def certificate(der: bytes | None) -> x509.Certificate:
    assert der is not None, "no client certificate was presented"
    return x509.load_der_x509_certificate(der)
