"""Parse a transfer location and make it safe to log.

``ftp://user:pass@host:port/path``: the path is relative to the login
directory (RFC 1738; ``%2F`` at its start makes it absolute). ``ftps://`` is
explicit FTPS (AUTH TLS, RFC 4217) on port 21 unless the port is 990, the
port of implicit FTPS. Percent-encoded user names and passwords are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from yarl import URL

from firmware.logs import redact
from firmware.transfer.errors import InvalidUrl, UnsupportedScheme

Scheme = Literal["http", "https", "ftp", "ftps"]
SCHEMES: tuple[Scheme, ...] = ("http", "https", "ftp", "ftps")
IMPLICIT_FTPS_PORT = 990
_DEFAULT_PORTS: dict[Scheme, int] = {"http": 80, "https": 443, "ftp": 21, "ftps": 21}


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed transfer URL. ``repr`` and ``safe`` never show the password."""

    url: URL
    scheme: Scheme
    host: str
    port: int
    user: str | None
    password: str | None
    path: str
    safe: str

    def __repr__(self) -> str:
        return f"Location({self.safe!r})"

    @property
    def implicit_tls(self) -> bool:
        return self.scheme == "ftps" and self.port == IMPLICIT_FTPS_PORT

    @property
    def ftp_path(self) -> str:
        """The path for RETR/STOR: one leading slash removed (relative to the login dir)."""
        return self.path.removeprefix("/")


def redact_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``; never raises."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        if parsed.password is not None:
            parsed = parsed.with_password("***")
        return str(parsed)
    except (ValueError, TypeError):
        return redact(str(url))


def parse(url: str) -> Location:
    """Parse and check a location; raises UnsupportedScheme or InvalidUrl."""
    try:
        parsed = URL(url)
        explicit_port = parsed.explicit_port
    except (ValueError, TypeError) as err:
        raise InvalidUrl(f"invalid URL {redact_url(url)}: {err}") from None
    safe = redact_url(parsed)
    scheme = parsed.scheme.lower()
    if scheme not in SCHEMES:
        shown = scheme or "(none)"
        raise UnsupportedScheme(f"unsupported scheme {shown} in {safe}: use http, https, ftp, ftps")
    if not parsed.host:
        raise InvalidUrl(f"no host in {safe}")
    path = parsed.path
    if scheme.startswith("ftp") and path.strip("/") == "":
        raise InvalidUrl(f"no file path in {safe}")
    return Location(
        url=parsed,
        scheme=scheme,
        host=parsed.host,
        port=explicit_port or _DEFAULT_PORTS[scheme],
        user=parsed.user,
        password=parsed.password,
        path=path,
        safe=safe,
    )
