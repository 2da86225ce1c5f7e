"""The certificate messages both OCPP versions share, on the security layer.

OCPP 1.6 (Security Whitepaper) and 2.0.1 (A02, A03, M03-M05) name installed
certificates by the same hash data and ask for the station's certificate the
same way: the station makes a key pair, sends SignCertificate with its
request, and takes the chain of the CertificateSigned that follows. What
differs is wording (payloads, configuration names) and one rule: 2.0.1 sends
an accepted SignCertificate again while no CertificateSigned comes
(SecurityCtrlr.CertSigningWaitMinimum and CertSigningRepeatTimes, A02.FR.17-19);
1.6 does not. ``CertificateSigning`` is that exchange for either version; the
version's handlers (``v16/certificates.py``, ``v201/certificates.py``) map their
names onto it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from firmware.ocpp.errors import CallFailed
from firmware.ocpp.rpc import Rpc
from firmware.security.certificates import HashAlgorithm, HashData
from firmware.security.enrolment import Enrolment
from firmware.security.errors import StoreError
from firmware.security.store import CertificateStore

log = logging.getLogger("firmware.ocpp.certificates")


def hash_data_payload(data: HashData) -> dict[str, str]:
    """CertificateHashDataType (the same members in 1.6 and 2.0.1)."""
    return {
        "hashAlgorithm": data.algorithm.value,
        "issuerNameHash": data.issuer_name_hash,
        "issuerKeyHash": data.issuer_key_hash,
        "serialNumber": data.serial_number,
    }


def hash_data_of(payload: Mapping[str, Any]) -> HashData:
    """The hash data a CSMS names a certificate by (its schema checked the algorithm)."""
    return HashData(
        HashAlgorithm(payload["hashAlgorithm"]),
        str(payload["issuerNameHash"]),
        str(payload["issuerKeyHash"]),
        str(payload["serialNumber"]),
    )


@dataclass(frozen=True, slots=True)
class Resends:
    """How an accepted SignCertificate is sent again while no CertificateSigned comes:
    after ``wait_s``, then after twice as long each time, at most ``times`` times."""

    wait_s: float
    times: int


class CertificateSigning:
    """The station's certificate over OCPP ``version``.

    ``request`` makes a new key pair and sends SignCertificate with its request
    (``payload(csr)``), only over a connection speaking ``version`` (a request
    made for another would replace the pending key of one that is out). An
    accepted request is sent again (the same request, so a chain signed late for
    it still fits) as ``resends()`` says, until a CertificateSigned comes
    (``signed``), the CSMS refuses it, or the resends are used up; a new request
    starts over. ``run`` asks on its own once the station's certificate nears
    its end (``Enrolment.renewal_due``: checked every ``check_interval_s`` while
    registered, at most once per ``retry_after_s``) and sends the resends.
    """

    def __init__(
        self,
        rpc: Rpc,
        store: CertificateStore,
        enrolment: Enrolment,
        *,
        ready: asyncio.Event,
        version: str,
        payload: Callable[[str], dict[str, Any]],
        resends: Callable[[], Resends | None] = lambda: None,
        check_interval_s: float = 3600.0,
        retry_after_s: float = 86400.0,
    ) -> None:
        self.rpc = rpc
        self.store = store
        self.enrolment = enrolment
        self.version = version
        self._ready = ready
        self._payload = payload
        self._resends = resends
        self._check_interval_s = check_interval_s
        self._retry_after_s = retry_after_s
        self._last_request: float | None = None
        self._requesting = asyncio.Lock()  # one request at a time: its key is the pending one
        self._wake = asyncio.Event()
        # The accepted request no CertificateSigned has answered yet, and when to send it again.
        self._csr: str | None = None
        self._sent_again = 0
        self._due: float | None = None
        self._answers = 0  # CertificateSigned requests so far

    # ------------------------------------------------------------ requests

    async def request(self) -> None:
        """A new key pair, and SignCertificate with its request now."""
        async with self._requesting:
            self._stop()
            if not self._speaks():
                log.warning("SignCertificate not sent: no OCPP %s connection", self.version)
                return
            self._last_request = time.monotonic()
            try:
                csr = self.enrolment.request()
            except StoreError as err:
                log.error("no signing request: %s", err)
                return
            answers = self._answers
            # A CertificateSigned that came before the answer needs no resends.
            if await self._send(csr) == "Accepted" and self._answers == answers:
                self._csr, self._sent_again = csr, 0
                self._schedule()

    async def _send(self, csr: str) -> str | None:
        """The CSMS's status, None when it did not answer."""
        try:
            answer = await self.rpc.call(
                "SignCertificate", self._payload(csr), version=self.version
            )
        except CallFailed as err:
            log.warning("SignCertificate not delivered: %s", err)
            return None
        status = str(answer["status"])
        log.info("SignCertificate %s", status)
        return status

    def _schedule(self) -> None:
        """The next resend of the pending request, if any is left."""
        policy = self._resends()
        if self._csr is None or policy is None:
            self._stop()
            return
        if self._sent_again >= policy.times:
            log.warning(
                "no CertificateSigned after %d SignCertificate resends: "
                "no more until a new request",
                self._sent_again,
            )
            self._stop()
            return
        self._due = time.monotonic() + policy.wait_s * 2**self._sent_again
        self._wake.set()

    async def _send_again(self) -> None:
        csr = self._csr
        if csr is None:
            return
        self._sent_again += 1
        self._due = None
        log.info("no CertificateSigned yet: SignCertificate again (resend %d)", self._sent_again)
        status = await self._send(csr)
        if self._csr is not csr:
            return  # answered, or a new request, meanwhile
        if status in ("Accepted", None):
            self._schedule()
        else:
            log.warning("the CSMS refused the SignCertificate resend: no more resends")
            self._stop()

    def _stop(self) -> None:
        self._csr = None
        self._due = None
        self._wake.set()

    def _speaks(self) -> bool:
        return self.rpc.connected and self.rpc.version == self.version

    # ------------------------------------------------------------ the answer

    def signed(self, chain: str) -> str | None:
        """CertificateSigned: install ``chain``; None when accepted, else why it was refused
        (an ``InvalidChargePointCertificate`` event then says it too). Either way the
        CSMS answered: no more resends."""
        if self._csr is not None:
            log.info("CertificateSigned came: no more SignCertificate resends")
        self._answers += 1
        self._stop()
        return self.enrolment.accept(chain)

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Send the resends when due; ask for a new certificate when the station's nears
        its end (once per ``retry_after_s`` at most)."""
        while True:
            await self._ready.wait()
            due = self._due
            if due is not None and time.monotonic() >= due:
                await self._send_again()
            elif due is None and self._speaks() and self._renewal_due():
                identity = self.store.identity()
                until = identity.certificate.not_valid_after_utc if identity else None
                log.info("the charge point certificate expires on %s: asking for a new one", until)
                await self.request()
            await self._sleep()

    def _renewal_due(self) -> bool:
        last = self._last_request
        if last is not None and time.monotonic() - last < self._retry_after_s:
            return False
        return self.enrolment.renewal_due()

    async def _sleep(self) -> None:
        """Until the next check, the next resend, or a change of either."""
        timeout = self._check_interval_s
        if self._due is not None:
            timeout = min(timeout, max(0.0, self._due - time.monotonic()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
