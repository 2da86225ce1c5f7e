"""How the station's own CALLs ended, by action: the figures behind ``/metrics``.

A CALL counts as sent once its frame is on the wire. It then ends in one of:
answered (nothing more is counted), timed out (no answer within the wait),
or failed, with the reason: ``callerror`` (the CSMS answered with a CALLERROR),
``invalid_result`` (a CALLRESULT that breaks the schema), ``connection_lost``
(the link went down before the answer).
"""

from __future__ import annotations

from collections import Counter

FAILURE_REASONS = ("callerror", "invalid_result", "connection_lost")


class CallStats:
    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.timed_out: Counter[str] = Counter()
        self.failed: Counter[tuple[str, str]] = Counter()  # (action, reason)

    def on_sent(self, action: str) -> None:
        self.sent[action] += 1

    def on_timeout(self, action: str) -> None:
        self.timed_out[action] += 1

    def on_failure(self, action: str, reason: str) -> None:
        self.failed[(action, reason)] += 1
