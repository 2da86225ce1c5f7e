"""Getting the station a (new) certificate: key pair, signing request, signed chain.

``request`` makes a new key pair on the station (kept as the pending key, 0600)
and the PEM request the CSMS's CA signs: CN = the charge point's identity,
O = the CPO's name (1.6 ``CpoName``, 2.0.1 ``SecurityCtrlr.OrganizationName``).
``accept`` checks the chain the CSMS sends back (``firmware.security.chain``)
and makes it, with the pending key, the station's identity, used from the next
connection on; a refused chain raises InvalidChargePointCertificate and
changes nothing. A newer request replaces
the pending key, so only the chain for the latest request fits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from firmware.security import chain as chains
from firmware.security.certificates import describe
from firmware.security.errors import StoreError
from firmware.security.events import SecurityEvent, SecurityEventSink
from firmware.security.keys import build_csr, generate_key
from firmware.security.store import CertificateStore, RootKind

log = logging.getLogger("firmware.security.enrolment")


class Enrolment:
    def __init__(
        self,
        store: CertificateStore,
        sink: SecurityEventSink,
        *,
        charge_point_id: str,
        organization: Callable[[], str],
        max_chain_bytes: Callable[[], int],
        renew_before: timedelta,
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._sink = sink
        self._cp_id = charge_point_id
        self._organization = organization
        self._max_chain_bytes = max_chain_bytes
        self.renew_before = renew_before
        self._now = now

    def request(self) -> str:
        """A new key pair and its PEM signing request; raises ``StoreError``."""
        key = generate_key()
        try:
            self._store.save_pending_key(key)
        except OSError as err:
            raise StoreError(f"cannot store the new key: {err}") from err
        organization = self._organization()
        if not organization:
            log.warning(
                "no organization is set (1.6 CpoName, 2.0.1 OrganizationName): "
                "the signing request names none (O)"
            )
        log.info("new key pair made; signing request for CN=%s", self._cp_id)
        return build_csr(key, self._cp_id, organization or None)

    def accept(self, text: str) -> str | None:
        """Install the signed chain ``text``; None when accepted, else why it was refused."""
        key = self._store.pending_key()
        try:
            chain = chains.validate(
                text,
                key=key.public_key() if key is not None else None,
                identity=self._cp_id,
                anchors=self._store.roots(RootKind.CSMS),
                now=self._now(),
                max_bytes=self._max_chain_bytes(),
            )
        except chains.ChainRefused as err:
            log.warning("charge point certificate refused: %s", err)
            self._sink.raise_event(SecurityEvent.INVALID_CHARGE_POINT_CERTIFICATE, str(err))
            return str(err)
        assert key is not None  # the chain is for the pending key
        try:
            self._store.install_identity(key, chain)
        except OSError as err:
            log.error("cannot store the new charge point certificate: %s", err)
            return f"cannot store it: {err}"
        self._store.clear_pending_key()
        log.info("new charge point certificate accepted: %s", describe(chain[0]))
        return None

    def renewal_due(self) -> bool:
        """Whether the station's certificate expires within ``renew_before``."""
        identity = self._store.identity()
        if identity is None:
            return False
        return identity.certificate.not_valid_after_utc - self._now() <= self.renew_before
