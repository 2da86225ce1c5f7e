"""A bench PKI made at test time: CAs, server and client certificates, TLS contexts.

Nothing is stored in the repository; every test makes what it needs::

    root = Authority.root("Bench Root")
    server = root.server("127.0.0.1", "localhost")      # the CSMS's TLS certificate
    csms = BenchCsms(ssl=server_context(server, client_ca=root))
    leaf = root.sign_csr(csr_pem)                        # the station's SignCertificate

Certificates default to a validity of one day around now; ``not_before`` and
``not_after`` make expired or future ones.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Authority", "Issued", "server_context", "write_pem"]

Key = ec.EllipticCurvePrivateKey


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: Key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def write_pem(path: Path, *items: x509.Certificate | Key) -> Path:
    text = "".join(_pem(i) if isinstance(i, x509.Certificate) else _key_pem(i) for i in items)
    path.write_text(text)
    path.chmod(0o600)
    return path


def _validity(
    builder: x509.CertificateBuilder,
    not_before: datetime.datetime | None,
    not_after: datetime.datetime | None,
    days: float,
) -> x509.CertificateBuilder:
    # A day back: a test taking "now" at collection, or a clock a little behind, still
    # finds the certificate valid.
    start = not_before or _now() - datetime.timedelta(days=1)
    end = not_after or _now() + datetime.timedelta(days=days)
    return builder.not_valid_before(start).not_valid_after(end)


@dataclass
class Issued:
    """A certificate, its key (None for one signed from a request) and the chain above it."""

    cert: x509.Certificate
    key: Key | None
    chain: list[x509.Certificate] = field(default_factory=list)  # issuers, leaf's first

    @property
    def pem(self) -> str:
        return _pem(self.cert)

    def chain_pem(self) -> str:
        """Leaf first, then the sub-CAs (the root not included), as CertificateSigned wants."""
        return "".join(_pem(c) for c in [self.cert, *self.chain])

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """``<name>.pem`` (the chain) and ``<name>.key`` (0600)."""
        assert self.key is not None
        cert = write_pem(directory / f"{name}.pem", self.cert, *self.chain)
        key = write_pem(directory / f"{name}.key", self.key)
        return cert, key


@dataclass
class Authority:
    """A CA: a root, or a sub-CA under ``parent``."""

    name: str
    key: Key
    cert: x509.Certificate
    parent: Authority | None = None

    @classmethod
    def root(
        cls,
        name: str,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        days: float = 3650,
    ) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = _validity(
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number()),
            not_before,
            not_after,
            days,
        )
        cert = (
            builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, cert)

    @property
    def pem(self) -> str:
        return _pem(self.cert)

    @property
    def chain(self) -> list[x509.Certificate]:
        """This CA's certificate and its parents' up to (not including) the root."""
        if self.parent is None:
            return []
        return [self.cert, *self.parent.chain]

    def _issue(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        extensions: Sequence[tuple[x509.ExtensionType, bool]],
        not_before: datetime.datetime | None,
        not_after: datetime.datetime | None,
        days: float,
        signer: Key | None = None,
    ) -> x509.Certificate:
        builder = _validity(
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number()),
            not_before,
            not_after,
            days,
        )
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
            critical=False,
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer or self.key, hashes.SHA256())

    def sub_ca(
        self,
        name: str,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        days: float = 3650,
        path_length: int | None = None,
    ) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            key.public_key(),
            [(x509.BasicConstraints(ca=True, path_length=path_length), True), (_ca_usage(), True)],
            not_before,
            not_after,
            days,
        )
        return Authority(name, key, cert, parent=self)

    def successor(self, name: str) -> Authority:
        """A new root with its own key, signed by this one (a root change under
        AdditionalRootCertificateCheck); it issues certificates as any CA does."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            key.public_key(),
            [(x509.BasicConstraints(ca=True, path_length=None), True), (_ca_usage(), True)],
            None,
            None,
            3650,
        )
        return Authority(name, key, cert)

    def server(
        self,
        *hosts: str,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        days: float = 1,
    ) -> Issued:
        """A TLS server certificate for ``hosts`` (IP addresses or DNS names)."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        cert = self._issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]),
            key.public_key(),
            [
                (x509.SubjectAlternativeName(names), False),
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            ],
            not_before,
            not_after,
            days,
        )
        return Issued(cert, key, self.chain)

    def client(
        self,
        common_name: str,
        *,
        organization: str | None = None,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        days: float = 365,
    ) -> Issued:
        """A client certificate with a key made here (what provisioning by file gives)."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        cert = self._issue(
            x509.Name(attributes),
            key.public_key(),
            _client_extensions(),
            not_before,
            not_after,
            days,
        )
        return Issued(cert, key, self.chain)

    def sign_csr(
        self,
        csr_pem: str,
        *,
        common_name: str | None = None,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        days: float = 365,
        extensions: Sequence[tuple[x509.ExtensionType, bool]] | None = None,
    ) -> Issued:
        """Sign a station's request as a CSMS's CA would (``common_name`` overrides its CN)."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid, "the request's signature does not verify"
        public_key = csr.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        subject = csr.subject
        if common_name is not None:
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = self._issue(
            subject,
            public_key,
            _client_extensions() if extensions is None else extensions,
            not_before,
            not_after,
            days,
        )
        return Issued(cert, None, self.chain)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _client_extensions() -> list[tuple[x509.ExtensionType, bool]]:
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
    ]


def server_context(
    server: Issued,
    directory: Path,
    *,
    client_ca: Sequence[Authority] = (),
    require_client_certificate: bool = False,
    versions: tuple[ssl.TLSVersion, ssl.TLSVersion] | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """The bench CSMS's TLS: ``server``'s certificate; client certificates issued by
    ``client_ca`` are checked when given (and required if asked); ``versions``
    (min, max) and ``ciphers`` (OpenSSL names) make a server the station must refuse."""
    cert_path, key_path = server.write(directory, "csms-server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if versions is not None:
        with warnings.catch_warnings():  # TLS 1.1 is deprecated: a server the station refuses
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version, context.maximum_version = versions
        if versions[0] < ssl.TLSVersion.TLSv1_2:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.1 otherwise
    if ciphers is not None:
        context.set_ciphers(ciphers)
    context.load_cert_chain(cert_path, key_path)
    if client_ca:
        context.load_verify_locations(cadata="".join(ca.pem for ca in client_ca))
        context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_OPTIONAL
    return context
