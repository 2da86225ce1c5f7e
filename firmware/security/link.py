"""How the station authenticates its link to the CSMS, attempt by attempt.

The connection asks ``attempt()`` before every connection attempt and reports
the outcome (``failed`` / ``connected``). What this decides:

- the security profile's credentials: Basic auth at profiles 1 and 2, the
  station's certificate at 3; TLS contexts (see ``firmware.security.tls``);
- a raised profile is on trial until a connection with it works. If its first
  attempt fails for a security reason (TLS handshake, certificate, HTTP
  401/403) the station goes back to the profile that worked, keeps it (the
  stored value goes back too) and reports it. A network failure (refused,
  timeout, DNS) says nothing about the profile: it is tried again;
- a new CSMS root that does not verify the CSMS yet: the old one (the
  fallback) is tried at once; the first connection the new one verifies
  removes the fallback. The same for a new client certificate and the
  previous one;
- security events for failed attempts: one per kind of failure until a
  connection works (a CSMS with an expired certificate must not fill the
  security log with one event per reconnect).

The trial survives a restart (``profile-trial.json`` in the store's directory),
so a power cut in the middle of a switch can still fall back. OCPP 2.0.1 has no
trials here (``trials=False``): its network profiles fall back to another profile
(``firmware/ocpp/v201/network.py``).
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cryptography import x509

from firmware.security import files
from firmware.security.certificates import der
from firmware.security.events import SecurityEvent, SecurityEventSink
from firmware.security.store import CertificateStore, Identity, InstalledRoot, RootKind
from firmware.security.tls import Failure, classify, client_context

log = logging.getLogger("firmware.security.link")

TRIAL_FILE = "profile-trial.json"
PINNED_FROM = 2  # profiles from here on trust the installed CSMS roots only
CERTIFICATE_PROFILE = 3


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One connection attempt's security: what to present and what to trust."""

    profile: int
    ssl: ssl.SSLContext | None = None  # None: ws://
    headers: Mapping[str, str] = field(default_factory=dict)
    trial_from: int | None = None  # a raised profile on trial: the profile to go back to
    roots: Literal["primary", "fallback", "all"] | None = None
    identity: Identity | None = None
    newest_identity: bool = True


class LinkSecurity:
    def __init__(
        self,
        store: CertificateStore,
        *,
        charge_point_id: str,
        tls: bool | Callable[[], bool],
        profile: Callable[[], int],
        revert_profile: Callable[[int], None],
        password: Callable[[], str | None],
        sink: SecurityEventSink,
        now: Callable[[], datetime],
        trials: bool = True,
    ) -> None:
        self._store = store
        self._cp_id = charge_point_id
        # Whether the next attempt runs over TLS (a wss:// URL): OCPP 2.0.1's network
        # profiles may move the station from ws:// to wss://.
        if callable(tls):
            self._tls = tls
        else:
            fixed = tls
            self._tls = lambda: fixed
        # Profile trials (1.6): a raised SecurityProfile falls back by itself. Off where
        # the route falls back to another network profile instead (2.0.1).
        self._trials = trials
        self._profile = profile
        self._revert_profile = revert_profile
        self._password = password
        self._sink = sink
        self._now = now
        self._active: int | None = None  # the profile of the last connection that worked
        self._trial: tuple[int, int] | None = self._load_trial()
        self._fallback_roots_next = False
        self._previous_identity_next = False
        self._reported: set[SecurityEvent] = set()
        self._anchor: bytes | None = None  # DER of the root that verified the link, if known

    # ------------------------------------------------------------ attempts

    def attempt(self) -> Attempt:
        profile = self._profile()
        if self._trials:
            self._follow_trial(profile)
        trial_from = self._trial[0] if self._trial is not None else None
        headers: dict[str, str] = {}
        if profile in (1, 2):
            password = self._password()
            if password:
                headers["Authorization"] = basic_auth(self._cp_id, password)
            else:
                log.error("security profile %d without a password: no Basic auth sent", profile)
        if not self._tls():
            return Attempt(profile, None, headers, trial_from)
        pinned = profile >= PINNED_FROM
        roots, anchors = self._anchors(pinned)
        identity, newest = self._identity(profile)
        try:
            context = client_context(
                anchors, pinned=pinned, identity=identity.path if identity else None
            )
        except (ssl.SSLError, OSError, ValueError) as err:
            log.error("cannot use the charge point certificate %s: %s", identity, err)
            identity = None
            context = client_context(anchors, pinned=pinned)
        return Attempt(profile, context, headers, trial_from, roots, identity, newest)

    def _anchors(
        self, pinned: bool
    ) -> tuple[Literal["primary", "fallback", "all"], list[x509.Certificate]]:
        if not pinned:
            return "all", self._store.roots(RootKind.CSMS)
        primary = self._store.roots(RootKind.CSMS, fallback=False)
        fallback = self._store.roots(RootKind.CSMS, fallback=True)
        if (self._fallback_roots_next and fallback) or not primary:
            if not fallback:
                log.error("no CSMS root certificate is installed: the CSMS cannot be verified")
            return "fallback", fallback
        return "primary", primary

    def _identity(self, profile: int) -> tuple[Identity | None, bool]:
        if profile < CERTIFICATE_PROFILE:
            return None, True
        if self._previous_identity_next:
            previous = self._store.previous_identity()
            if previous is not None:
                return previous, False
        identity = self._store.identity_for(self._now)
        if identity is None:
            log.error("security profile 3 without a charge point certificate")
            return None, True
        newest = self._store.identity()
        return identity, newest is not None and newest.path == identity.path

    # ------------------------------------------------------------ outcomes

    def failed(self, attempt: Attempt, err: BaseException) -> bool:
        """Take note of a failed attempt; True: try again at once (a fallback is ready)."""
        failure = classify(err)
        if failure is None or not failure.security:
            return False  # the network's doing: the same attempt again after the backoff
        self._report(failure)
        retry_now = False
        if attempt.trial_from is not None:
            self._fall_back(attempt.profile, attempt.trial_from, failure)
            retry_now = True
        elif (
            failure.event is SecurityEvent.INVALID_CENTRAL_SYSTEM_CERTIFICATE
            and attempt.roots == "primary"
            and self._store.roots(RootKind.CSMS, fallback=True)
        ):
            log.warning(
                "the new CSMS root certificate does not verify the CSMS; trying the old one"
            )
            self._fallback_roots_next = True
            return True
        elif (
            failure.event is SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CENTRAL_SYSTEM
            and attempt.identity is not None
            and attempt.newest_identity
            and self._store.previous_identity() is not None
        ):
            log.warning(
                "the CSMS refused the new charge point certificate; trying the previous one"
            )
            self._previous_identity_next = True
            return True
        self._fallback_roots_next = False
        self._previous_identity_next = False
        return retry_now

    def connected(self, attempt: Attempt, transport: Any = None) -> None:
        """The link is up with ``attempt``; ``transport`` is the connection's asyncio transport."""
        if self._trial is not None:
            log.info("security profile %d works: kept", attempt.profile)
            self._end_trial()
        self._active = attempt.profile
        self._reported.clear()
        self._anchor = verified_anchor(transport) if attempt.ssl is not None else None
        if attempt.roots == "primary":
            self._store.drop_fallback(RootKind.CSMS)
        elif attempt.roots == "fallback" and self._store.roots(RootKind.CSMS, fallback=False):
            log.warning("connected with the old CSMS root certificate; the new one is kept")
        if attempt.identity is not None and attempt.newest_identity:
            self._store.drop_previous_identity()
        self._fallback_roots_next = False
        self._previous_identity_next = False

    def root_in_use(self, root: InstalledRoot) -> bool:
        """Whether deleting ``root`` would cut the station off the CSMS."""
        if root.kind is not RootKind.CSMS or not self._tls():
            return False
        if self._anchor is not None:
            return der(root.certificate) == self._anchor
        # Which root verified the link is not known here: the last one is in use.
        return all(other is root for other in self._store.installed(RootKind.CSMS))

    def _report(self, failure: Failure) -> None:
        if failure.event is None or failure.event in self._reported:
            return
        self._reported.add(failure.event)
        self._sink.raise_event(failure.event, failure.detail)

    # ------------------------------------------------------------ profile trials

    def _follow_trial(self, profile: int) -> None:
        if self._trial is not None and self._trial[1] != profile:
            self._end_trial()  # changed again since: that profile is what counts now
        if self._trial is None and self._active is not None and profile > self._active:
            self._trial = (self._active, profile)
            self._save_trial()
            log.info("trying security profile %d (back to %d if it fails)", profile, self._active)

    def _fall_back(self, profile: int, previous: int, failure: Failure) -> None:
        self._end_trial()
        self._revert_profile(previous)
        what = (
            f"security profile {profile} failed ({failure.detail}); "
            f"back to security profile {previous}"
        )
        log.error("%s", what)
        self._sink.raise_event(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS, what)

    def _load_trial(self) -> tuple[int, int] | None:
        try:
            data = json.loads((self._store.directory / TRIAL_FILE).read_text())
            return int(data["from"]), int(data["to"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("ignoring an unreadable %s: %s", TRIAL_FILE, err)
            return None

    def _save_trial(self) -> None:
        assert self._trial is not None
        data = json.dumps({"from": self._trial[0], "to": self._trial[1]}).encode()
        try:
            files.write_atomic(self._store.directory / TRIAL_FILE, data)
        except OSError as err:
            log.error("cannot record the security profile trial: %s", err)

    def _end_trial(self) -> None:
        self._trial = None
        try:
            files.remove(self._store.directory / TRIAL_FILE)
        except OSError as err:
            log.error("cannot remove %s: %s", TRIAL_FILE, err)


def verified_anchor(transport: Any) -> bytes | None:
    """DER of the trust anchor that ended the server's verified chain, where Python tells.

    ``get_verified_chain`` is public from Python 3.13 on and private before.
    """
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    chain_of = getattr(ssl_object, "get_verified_chain", None) or getattr(
        getattr(ssl_object, "_sslobj", None), "get_verified_chain", None
    )
    if chain_of is None:
        return None
    try:
        chain = chain_of()
        anchor: bytes = chain[-1].public_bytes(2)  # _ssl.ENCODING_DER
    except Exception as err:  # a private API: never let it break a connection
        log.debug("the verified chain is not available: %s", err)
        return None
    return anchor
