"""Answers to recent CSMS CALLs, so that a repeated message id is answered, not run again.

A CSMS that got no answer in time (a lost frame, a connection that dropped)
sends the same CALL again with the same message id, often right after the
station reconnects. Running it twice could start two sessions or reset twice:
the station sends the earlier answer (CALLRESULT or CALLERROR) again instead,
and a repeat that arrives while the first is still being handled gets that
answer once it is ready.

A message id counts as a repeat only with the same action and payload. A
CSMS whose id counter starts over after its own restart reuses ids for new
requests; those are run as usual (and logged). Memory is bounded: an entry
leaves after ``max_age_s`` or when more than ``max_entries`` are kept, oldest
first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("firmware.ocpp.rpc")

After = Callable[[], Coroutine[Any, Any, None]]


@dataclass(eq=False)
class Answer:
    """The answer to one CSMS CALL; ``frame`` is done once the handler has finished."""

    fingerprint: str
    received_at: float
    frame: asyncio.Future[str]
    # The handler's follow-up (Reply.after): taken by whoever sends the answer first.
    after: After | None = None

    def take_after(self) -> After | None:
        after, self.after = self.after, None
        return after


def fingerprint(action: str, payload: Any, version: str = "") -> str:
    # The version counts: the same action and payload under 1.6 and 2.0.1 are two requests.
    key = [action, payload] if not version else [version, action, payload]
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AnswerCache:
    """Recent CSMS CALLs by message id, with their answers."""

    def __init__(
        self,
        *,
        max_entries: int = 64,
        max_age_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: OrderedDict[str, Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def claim(
        self, unique_id: str, action: str, payload: Any, version: str = ""
    ) -> tuple[Answer, bool]:
        """The entry for this CALL, and whether it repeats one already taken in.

        For a new CALL the caller must run the handler and complete ``frame``.
        """
        self._prune()
        key = fingerprint(action, payload, version)
        seen = self._entries.get(unique_id)
        if seen is not None:
            if seen.fingerprint == key:
                return seen, True
            log.warning(
                "CSMS reused message id %r for a different %s request: running it",
                unique_id,
                action,
            )
            del self._entries[unique_id]
        entry = Answer(key, self._clock(), asyncio.get_running_loop().create_future())
        self._entries[unique_id] = entry
        self._prune()
        return entry, False

    def _prune(self) -> None:
        oldest = self._clock() - self.max_age_s
        while self._entries:
            first = next(iter(self._entries.values()))
            if first.received_at >= oldest and len(self._entries) <= self.max_entries:
                break
            self._entries.popitem(last=False)
