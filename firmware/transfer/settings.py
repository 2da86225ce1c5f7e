"""What every attempt of one transfer shares."""

from __future__ import annotations

from dataclasses import dataclass
from ssl import SSLContext, create_default_context

from firmware.transfer.deadline import Deadline
from firmware.transfer.progress import Progress

CHUNK_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """``ssl``: the context for https and ftps (None: the system's CAs, verified)."""

    timeout_s: float
    stall_timeout_s: float
    ssl: SSLContext | None
    progress: Progress
    chunk_size: int = CHUNK_SIZE

    def deadline(self) -> Deadline:
        return Deadline(self.timeout_s, self.stall_timeout_s)

    def ssl_context(self) -> SSLContext:
        return self.ssl if self.ssl is not None else create_default_context()
