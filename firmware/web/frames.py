"""The OCPP log of the web page: the last frames in and out, in a bounded ring.

Adding a frame is cheap (it runs for every frame, thousands a second while a
queue is replayed): the text is kept as it went over the wire, cut at
``TEXT_MAX`` characters, with its time, direction, message type, id and action
read from its first characters. A CALLRESULT or CALLERROR gets the action of
the CALL it answers when that CALL is still remembered.

What the page sees is made once per frame, on first demand: secrets removed
(``firmware.logs.redact``: passwords, AuthorizationKey values) and idTags
masked (``idTag``, ``parentIdTag`` … as ``****B2C3``, ``firmware.logs.mask_id_tags``),
whatever the log level. The page is for installers, who need to see that a
tag went out, not the card number.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware.logs import mask_id_tags, redact

RING_SIZE = 200
TEXT_MAX = 2000
CALLS_REMEMBERED = 256  # CALL ids kept to name the action of their answers
KINDS = {"2": "CALL", "3": "RESULT", "4": "ERROR"}

_HEAD = re.compile(r'\s*\[\s*([234])\s*,\s*"((?:[^"\\]|\\.){0,64})"\s*(?:,\s*"(\w{1,64})")?')


@dataclass(slots=True)
class Frame:
    seq: int
    at_ms: int  # station clock, milliseconds since the epoch
    direction: str  # "out": station → CSMS, "in": CSMS → station
    kind: str  # CALL, RESULT, ERROR, or "?" for what does not parse
    unique_id: str
    action: str
    text: str
    _view: dict[str, Any] | None = field(default=None, repr=False)

    def view(self) -> dict[str, Any]:
        if self._view is None:
            self._view = {
                "seq": self.seq,
                "at": self.at_ms,
                "dir": self.direction,
                "kind": self.kind,
                "id": self.unique_id,
                "action": self.action,
                "payload": _payload(self.kind, mask_id_tags(redact(self.text))),
            }
        return self._view


def _payload(kind: str, text: str) -> str:
    """The payload part of a frame (the whole text when it does not parse)."""
    try:
        message = json.loads(text)
    except ValueError:
        return text
    if not isinstance(message, list):
        return text
    part: object
    if kind == "CALL" and len(message) == 4:
        part = message[3]
    elif kind == "RESULT" and len(message) == 3:
        part = message[2]
    elif kind == "ERROR" and len(message) == 5:
        part = message[2:]
    else:
        return text
    return json.dumps(part, ensure_ascii=False, separators=(",", ":"))


class FrameRing:
    def __init__(self, now_ms: Callable[[], int], size: int = RING_SIZE) -> None:
        self._now_ms = now_ms
        self._frames: deque[Frame] = deque(maxlen=size)
        self._calls: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.seq = 0

    def add(self, direction: str, text: str) -> None:
        head = _HEAD.match(text, 0, 200)
        kind, unique_id, action = "?", "", ""
        if head is not None:
            kind, unique_id = KINDS[head.group(1)], head.group(2)
            if kind == "CALL":
                action = head.group(3) or ""
                self._calls[(direction, unique_id)] = action
                if len(self._calls) > CALLS_REMEMBERED:
                    self._calls.popitem(last=False)
            else:
                caller = "in" if direction == "out" else "out"
                action = self._calls.pop((caller, unique_id), "")
        if len(text) > TEXT_MAX:
            text = text[:TEXT_MAX] + "…"
        self.seq += 1
        self._frames.append(
            Frame(self.seq, self._now_ms(), direction, kind, unique_id, action, text)
        )

    def since(self, seq: int) -> list[dict[str, Any]]:
        """What the page shows of the frames after ``seq``, oldest first."""
        if seq >= self.seq:
            return []
        return [f.view() for f in self._frames if f.seq > seq]
