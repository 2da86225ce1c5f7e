"""Authorize.req for the station's authorizer (``firmware.auth.authorizer.AskCsms``)."""

from __future__ import annotations

import logging

from firmware.auth.authorizer import AskCsms
from firmware.auth.cache import IdTagInfo
from firmware.ocpp.errors import CallFailed
from firmware.ocpp.rpc import Rpc
from hal.tokens import Tag

log = logging.getLogger("firmware.auth")


def ask_csms(rpc: Rpc) -> AskCsms:
    async def ask(id_tag: str, timeout: float) -> IdTagInfo | None:
        try:
            answer = await rpc.call("Authorize", {"idTag": id_tag}, timeout=timeout)
        except CallFailed as err:
            # The authorizer warns that it decides offline; this says why.
            log.info("Authorize for %s failed: %s", Tag(id_tag), err)
            return None
        return IdTagInfo.from_payload(answer["idTagInfo"])

    return ask
