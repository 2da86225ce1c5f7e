"""OCPP 2.0.1 Authorize (C01) for the station's authorizer (``firmware.auth.authorizer.AskCsms``).

The station knows an id as a string; it is sent as an ISO14443 token (an RFID
card's UID) unless ``token_type`` says otherwise. The answer's idTokenInfo is
turned into the station's words (``transactions.id_token_info``): its status as
given (Accepted, Blocked, Expired, Invalid, NoCredit, ...; only Accepted lets a
session start), cacheExpiryDateTime as the cache's expiry, groupIdToken as the
group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from firmware.auth.authorizer import AskCsms
from firmware.auth.cache import IdTagInfo
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.rpc import Rpc
from firmware.ocpp.v201.transactions import DEFAULT_TOKEN_TYPE, id_token_info
from firmware.ocpp.versions import V201
from hal.tokens import Tag

log = logging.getLogger("firmware.auth")


def ask_csms(
    rpc: Rpc, token_type: Callable[[str], str] = lambda _id: DEFAULT_TOKEN_TYPE
) -> AskCsms:
    async def ask(id_tag: str, timeout: float) -> IdTagInfo | None:
        request = {"idToken": {"idToken": id_tag, "type": token_type(id_tag)}}
        try:
            answer = await rpc.call("Authorize", request, timeout=timeout, version=V201)
        except CallFailed as err:
            # The authorizer warns that it decides offline; this says why.
            log.info("Authorize for %s failed: %s", Tag(id_tag), err)
            return None
        return id_token_info(answer["idTokenInfo"])

    return ask
