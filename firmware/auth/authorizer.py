"""Decides whether an idTag may charge: local list → cache → the CSMS → offline policy.

Asking the CSMS is the protocol front-end's part (``AskCsms``): it sends the
version's Authorize request and turns the answer into ``IdTagInfo``, or says
that no answer came.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from firmware.auth.cache import AuthCache, IdTagInfo
from firmware.clock import Clock
from firmware.settings import StationSettings
from hal.tokens import Tag

log = logging.getLogger("firmware.auth")

Source = Literal["local_list", "cache", "csms", "offline"]


class AskCsms(Protocol):
    async def __call__(self, id_tag: str, timeout: float) -> IdTagInfo | None:
        """The CSMS's answer for ``id_tag``; None when none came within ``timeout``
        (offline, an error, no answer)."""


class LocalList(Protocol):
    """The Local Authorization List (Local Auth List Management profile)."""

    @property
    def enabled(self) -> bool: ...

    def get(self, id_tag: str) -> IdTagInfo | None: ...


@dataclass(frozen=True, slots=True)
class Decision:
    info: IdTagInfo
    source: Source

    @property
    def accepted(self) -> bool:
        return self.info.accepted

    @property
    def offline(self) -> bool:
        return self.source == "offline"


class Authorizer:
    def __init__(
        self,
        cache: AuthCache,
        settings: StationSettings,
        ask_csms: AskCsms,
        clock: Clock,
        *,
        online: OnlineCheck,
        local_list: LocalList | None = None,
        authorize_timeout_s: float = 5.0,
    ) -> None:
        self.cache = cache
        self.settings = settings
        self.ask_csms = ask_csms
        self.clock = clock
        self.online = online
        self.local_list = local_list
        # A driver waits at the reader: after this the offline rules decide,
        # even when another CALL holds the link (one CALL in flight).
        self.authorize_timeout_s = authorize_timeout_s

    def known_locally(self, id_tag: str) -> tuple[IdTagInfo, Source] | None:
        """The local list entry (first) or cache entry for ``id_tag``, as of now."""
        if self.local_list is not None and self.local_list.enabled:
            entry = self.local_list.get(id_tag)
            if entry is not None:
                return entry.effective(self.clock.now()), "local_list"
        if self.settings.auth_cache_enabled:
            cached = self.cache.get(id_tag)
            if cached is not None:
                return cached, "cache"
        return None

    def remember(self, id_tag: str, info: IdTagInfo) -> None:
        """Cache idTagInfo learned from any CSMS answer.

        An id in the Local Authorization List is never cached: the list is the
        CSMS's own record of it, changed only by SendLocalList.
        """
        if self.settings.auth_cache_enabled and not self._listed(id_tag):
            self.cache.put(id_tag, info)

    def _listed(self, id_tag: str) -> bool:
        lst = self.local_list
        return lst is not None and lst.enabled and lst.get(id_tag) is not None

    async def authorize(self, id_tag: str) -> Decision:
        local = self.known_locally(id_tag)
        if self.online():
            if local is not None and self.settings.local_pre_authorize:
                info, source = local
                # A valid entry starts at once. A list entry that is not valid is
                # final too (the CSMS keeps the list); a cached one is asked again.
                if info.accepted or source == "local_list":
                    return Decision(info, source)
            answer = await self.ask_csms(id_tag, self.authorize_timeout_s)
            if answer is not None:
                self.remember(id_tag, answer)
                return Decision(answer, "csms")
            log.warning("no authorization from the CSMS for %s; deciding offline", Tag(id_tag))
        return self.offline_decision(id_tag)

    def offline_decision(self, id_tag: str) -> Decision:
        """LocalAuthorizeOffline / AllowOfflineTxForUnknownId.

        A tag known locally as Blocked, Expired or Invalid never starts a
        session, whatever the offline settings.
        """
        local = self.known_locally(id_tag)
        if local is not None and not local[0].accepted:
            return Decision(local[0], "offline")
        if local is not None and self.settings.local_authorize_offline:
            return Decision(local[0], "offline")
        if self.settings.offline_unknown_id_allowed:
            return Decision(IdTagInfo("Accepted"), "offline")
        return Decision(IdTagInfo("Invalid"), "offline")


class OnlineCheck(Protocol):
    def __call__(self) -> bool: ...
