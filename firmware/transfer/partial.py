"""The ``<dest>.part`` file of a download, its resume record, and the final rename.

``<dest>.part.json`` says which source the bytes in ``<dest>.part`` came from
(a hash of the URL without credentials) and how to tell whether that source
changed since (HTTP ETag or Last-Modified, FTP size and modification time).
It is written and synced before the first byte, so a ``.part`` without a
matching record is never resumed. When complete, the ``.part`` is synced and
renamed over ``dest`` atomically, and the directory is synced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from yarl import URL

from firmware.transfer.errors import LocalFileError


def source_key(url: URL) -> str:
    return hashlib.sha256(str(url.with_user(None)).encode()).hexdigest()


class PartialFile:
    def __init__(self, dest: Path, source: str) -> None:
        self.dest = dest
        self.part = dest.with_name(dest.name + ".part")
        self.record = dest.with_name(dest.name + ".part.json")
        self._source = source
        self.validator: str | None = None
        self.total: int | None = None

    def resume_offset(self) -> int:
        """Bytes already downloaded from this same source, or 0 (stale files removed)."""
        try:
            record = json.loads(self.record.read_text(encoding="utf-8"))
            size = self.part.stat().st_size
        except (OSError, ValueError):
            self.discard()
            return 0
        if not isinstance(record, dict) or record.get("source") != self._source:
            self.discard()
            return 0
        validator, total = record.get("validator"), record.get("total")
        self.validator = validator if isinstance(validator, str) else None
        self.total = total if isinstance(total, int) else None
        return size

    def restart(self, validator: str | None, total: int | None) -> None:
        """Start over from byte 0 for a source described by ``validator``."""
        self.validator, self.total = validator, total
        record = {"source": self._source, "validator": validator, "total": total}
        with local_io("start " + self.part.name):
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            with self.part.open("wb"):
                pass
            with self.record.open("w", encoding="utf-8") as out:
                json.dump(record, out)
                out.flush()
                os.fsync(out.fileno())
            _sync_dir(self.dest.parent)

    @contextlib.contextmanager
    def appending(self) -> Iterator[Callable[[bytes], None]]:
        """``with part.appending() as write: write(chunk)``; local errors become LocalFileError."""
        with local_io("open " + self.part.name):
            handle = self.part.open("ab")

        def write(chunk: bytes) -> None:
            with local_io("write " + self.part.name):
                handle.write(chunk)

        try:
            yield write
        finally:
            with local_io("close " + self.part.name):
                handle.close()

    def size(self) -> int:
        with local_io("stat " + self.part.name):
            return self.part.stat().st_size

    def discard(self) -> None:
        for path in (self.part, self.record):
            with local_io("remove " + path.name), contextlib.suppress(FileNotFoundError):
                path.unlink()

    def commit(self) -> Path:
        """Sync the complete ``.part`` and rename it to ``dest`` atomically."""
        with local_io("finish " + self.dest.name):
            with self.part.open("rb+") as done:
                os.fsync(done.fileno())
            os.replace(self.part, self.dest)
            _sync_dir(self.dest.parent)
            with contextlib.suppress(FileNotFoundError):
                self.record.unlink()
        return self.dest


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def local_io(what: str) -> Iterator[None]:
    try:
        yield
    except LocalFileError:
        raise
    except OSError as err:
        raise LocalFileError(f"cannot {what}: {err.strerror or err}") from err
