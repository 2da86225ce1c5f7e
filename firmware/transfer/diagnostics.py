"""The diagnostics archive a GetDiagnostics request uploads.

``diagnostics-<chargeBoxId>-<UTC YYYYMMDDTHHMMSSZ>.tar.gz``, made in a new
temporary directory (or ``out_dir``); its basename is the ``fileName`` of
GetDiagnostics.conf, and the caller removes it once uploaded. Inside, under
one folder of the archive's name:

- ``logs/<name>``: each log file's lines in the time window (rule in
  firmware.transfer.logwindow), each passed through ``redact``; ``.gz``
  rotated files are read decompressed; files with no line kept are left out.
- ``state.json``: the state summary, values of secret-looking keys (password,
  secret, AuthorizationKey, private key ...) replaced by ``***`` and each line
  passed through ``redact``.

Unless ``id_tags`` is true, idTags are masked (``****B2C3``): the values of
idTag-like keys of the state summary (``id_tag``, ``parentIdTag`` ...) and of
idTag-like members in log lines (the OCPP frames of a DEBUG log). The log
file's own text has them masked already unless it was written with
``diagnostics.include_id_tags`` at DEBUG.
- ``manifest.json``: charge box id, creation time, window, and per log file
  the lines read and kept.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from firmware import logs
from firmware.clock import iso
from firmware.transfer.errors import LocalFileError
from firmware.transfer.logwindow import Window
from firmware.transfer.partial import local_io
from hal.tokens import mask_id_tag

Redact = Callable[[str], str]

_SECRET_KEY = re.compile(r"password|passwd|secret|authorizationkey|passphrase|private", re.I)
_ID_TAG_KEY = re.compile(r"(?:\w*id_?tag|uid)", re.I)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_ROTATION = re.compile(r"\.(\d+)(?:\.gz)?$")


def archive_name(charge_box_id: str, now: datetime) -> str:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"diagnostics-{_UNSAFE_NAME.sub('_', charge_box_id) or 'unknown'}-{stamp}.tar.gz"


def rotated_logs(directory: Path, name: str) -> list[Path]:
    """``name`` and its rotations in ``directory`` (``name.1``, ``name.2.gz``,
    ``name-20260101``, ``name.2026-01-01`` ...), oldest first: by modification
    time, then by rotation number, higher first.
    """

    def order(path: Path) -> tuple[float, int]:
        number = _ROTATION.search(path.name[len(name) :])
        return path.stat().st_mtime, -int(number.group(1)) if number else 0

    with local_io("list " + str(directory)):
        found = [p for p in directory.iterdir() if p.name.startswith(name) and p.is_file()]
        return sorted(found, key=order)


def build_archive(
    charge_box_id: str,
    log_files: Sequence[Path],
    state: Mapping[str, Any],
    *,
    start: datetime | None = None,
    stop: datetime | None = None,
    redact: Redact = logs.redact,
    out_dir: Path | None = None,
    now: datetime | None = None,
    id_tags: bool = False,
) -> Path:
    """Write the archive and return its path. ``log_files`` oldest first
    (see rotated_logs); a missing log file is skipped. ``id_tags``: keep
    idTags in full. Blocking: from the event loop use build_archive_async.
    Raises ValueError for a naive ``start``/``stop``, LocalFileError when the
    archive cannot be written.
    """
    if not id_tags:
        redact = _masking(redact)
    window = Window(start, stop)
    now = now or datetime.now(UTC)
    name = archive_name(charge_box_id, now)
    folder = name.removesuffix(".tar.gz")
    with local_io("create the diagnostics archive"):
        target_dir = out_dir or Path(tempfile.mkdtemp(prefix="diagnostics-"))
        target_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target_dir))
    try:
        manifest: dict[str, Any] = {
            "chargeBoxId": charge_box_id,
            "createdAt": iso(now),
            "startTime": iso(start) if start else None,
            "stopTime": iso(stop) if stop else None,
            "logs": [],
        }
        (staging / "logs").mkdir()
        taken: set[str] = set()
        for source in log_files:
            entry = _filter_log(source, staging / "logs", taken, window, redact)
            if entry is not None:
                manifest["logs"].append(entry)
        _write_json(staging / "state.json", _scrub(state, id_tags), redact)
        _write_json(staging / "manifest.json", manifest, redact)
        archive = target_dir / name
        with local_io("write " + name), tarfile.open(archive, "w:gz") as tar:
            tar.add(staging, arcname=folder)
        return archive
    except OSError as err:
        if isinstance(err, LocalFileError):
            raise
        raise LocalFileError(f"cannot write {name}: {err.strerror or err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def build_archive_async(
    charge_box_id: str,
    log_files: Sequence[Path],
    state: Mapping[str, Any],
    *,
    start: datetime | None = None,
    stop: datetime | None = None,
    redact: Redact = logs.redact,
    out_dir: Path | None = None,
    now: datetime | None = None,
    id_tags: bool = False,
) -> Path:
    """build_archive in a worker thread, so the event loop keeps running."""
    return await asyncio.to_thread(
        build_archive,
        charge_box_id,
        log_files,
        state,
        start=start,
        stop=stop,
        redact=redact,
        out_dir=out_dir,
        now=now,
        id_tags=id_tags,
    )


def _masking(redact: Redact) -> Redact:
    return lambda line: logs.mask_id_tags(redact(line))


def _filter_log(
    source: Path, out_dir: Path, taken: set[str], window: Window, redact: Redact
) -> dict[str, Any] | None:
    read = kept = 0
    base = _UNSAFE_NAME.sub("_", source.name.removesuffix(".gz")) or "log"
    out_name = base
    while out_name in taken:
        out_name = f"{out_name}_"
    target = out_dir / out_name
    try:
        with _open_text(source) as lines, target.open("w", encoding="utf-8") as out:
            for line in lines:
                read += 1
                for keep in window.feed(line.rstrip("\r\n")):
                    out.write(redact(keep) + "\n")
                    kept += 1
    except FileNotFoundError:
        target.unlink(missing_ok=True)
        return None
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        # A damaged rotated file must not cost the rest of the diagnostics.
        with target.open("a", encoding="utf-8") as out:
            out.write(f"[diagnostics: reading {source.name} stopped: {type(err).__name__}]\n")
    if kept == 0:
        target.unlink()
        return {"file": source.name, "linesRead": read, "linesKept": 0}
    taken.add(out_name)
    return {"file": source.name, "name": out_name, "linesRead": read, "linesKept": kept}


def _open_text(source: Path) -> IO[str]:
    if source.name.endswith(".gz"):
        return gzip.open(source, "rt", encoding="utf-8", errors="replace")
    return source.open(encoding="utf-8", errors="replace")


def _scrub(value: Any, id_tags: bool) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _scrub_member(str(key), item, id_tags) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, id_tags) for item in value]
    return value


def _scrub_member(key: str, value: Any, id_tags: bool) -> Any:
    if _SECRET_KEY.search(key):
        return "***"
    if not id_tags and isinstance(value, str) and _ID_TAG_KEY.fullmatch(key):
        return mask_id_tag(value)
    return _scrub(value, id_tags)


def _write_json(path: Path, value: Any, redact: Redact) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    path.write_text("".join(redact(line) + "\n" for line in text.splitlines()), encoding="utf-8")
