"""Firmware releases on the station: which one runs, its trial, its rollback.

The ``release`` installer (firmware/management/release_installer.py) builds
each new firmware as a complete environment under ``<state_dir>/releases/<name>``:
the installed firmware's ``/opt`` is read-only to the service, the state
directory is not. ``chargepoint run`` starts by asking :meth:`Releases.choose`
which environment should run and re-executes itself there (same process, so
systemd keeps its main PID):

- ``trial`` → ``<name>``: a release installed and not yet proven. It is started
  once (``trial.started`` records the attempt). It proves itself when the CSMS
  accepts its BootNotification (:meth:`confirm`): it becomes ``current``.
- A trial found started and not confirmed did not come up (it crashed, hung
  until the watchdog killed it, or the station stopped first): it is removed,
  ``rolled-back`` says so, and the previous firmware runs. If the trial's
  database migrations went past what the previous firmware knows, the database
  copy taken before the trial started is put back.
- ``current`` → ``<name>``: the release to run; none: the installed firmware.
- ``installed`` names the installed firmware the releases grew from. When the
  installed firmware starts and is another one (``scripts/install.sh`` ran, a
  new container image, a package upgrade), the releases are dropped: what was
  installed by other means runs. ``scripts/install.sh`` also removes them.

Pointers are symlinks replaced atomically and synced, so a power cut leaves
either the old or the new pointer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import firmware

log = logging.getLogger("firmware.management.releases")

ENV = "CHARGEPOINT_RELEASE"  # set on the process a trial or current release runs in
CURRENT = "current"
TRIAL = "trial"
STARTED = "trial.started"
ROLLED_BACK = "rolled-back"
SNAPSHOT = "state-before-trial.db"
INSTALLED = "installed"
MANIFEST = "release.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Launch:
    """Run this release instead: ``python -m firmware`` with the same arguments."""

    name: str
    python: Path


class Releases:
    def __init__(self, state_dir: Path, prefix: Path | None = None) -> None:
        self.root = state_dir / "releases"
        self.db = state_dir / "state.db"
        self.prefix = Path(sys.prefix) if prefix is None else prefix

    # ------------------------------------------------------------ what runs

    def running(self) -> str | None:
        """The release this process runs from; None for the installed firmware."""
        try:
            inside = self.prefix.resolve().relative_to(self.root.resolve())
        except (ValueError, OSError):
            return None
        return inside.parts[0] if len(inside.parts) == 1 else None

    def python(self, name: str) -> Path:
        return self.root / name / "bin" / "python"

    def complete(self, name: str) -> bool:
        return (self.root / name / MANIFEST).is_file() and self.python(name).exists()

    def pointer(self, link: str) -> str | None:
        try:
            target = os.readlink(self.root / link)
        except OSError:
            return None
        return target if _NAME.fullmatch(target) else None

    # ------------------------------------------------------------ at start-up

    def choose(self, environ: Mapping[str, str]) -> Launch | None:
        """The release this start should run, or None to go on in this process.

        Starts a staged trial, or rolls back one that was started and never
        confirmed. Never raises for a damaged directory: the firmware runs.
        """
        me = self.running()
        if me is None and self._installed_changed():
            return None
        trial = self.pointer(TRIAL)
        if trial is not None:
            if trial == me and environ.get(ENV) == trial:
                return None  # the trial itself (also after a Reset within it)
            launch = self._trial(trial)
            if launch is not None:
                return launch
        current = self.pointer(CURRENT)
        if current is None or current == me:
            return None
        if not self.complete(current):
            log.error("firmware release %s is incomplete: running %s", current, self.prefix)
            return None
        return Launch(current, self.python(current))

    def installed_identity(self) -> str:
        """The installed firmware as this process sees it: where, which version, which build."""
        marker = Path(firmware.__file__)
        try:
            built = marker.stat().st_mtime_ns
        except OSError:
            built = 0
        return f"{self.prefix.resolve()} {firmware.__version__} {built}"

    def _installed_changed(self) -> bool:
        """Drop the releases if the installed firmware is not the one they grew from."""
        try:
            recorded = (self.root / INSTALLED).read_text(encoding="utf-8").strip()
        except OSError:
            return False
        if recorded == self.installed_identity():
            return False
        log.warning(
            "the installed firmware changed since the releases in %s were built: "
            "running it and dropping them",
            self.root,
        )
        for pointer in (TRIAL, STARTED, CURRENT, ROLLED_BACK, SNAPSHOT, INSTALLED):
            _unlink(self.root / pointer)
        _fsync_dir(self.root)
        self.prune(keep=set())
        return True

    def _trial(self, trial: str) -> Launch | None:
        """Start the trial once; after that its start failed: roll it back."""
        if trial == self.pointer(CURRENT):
            self._clear_trial()  # confirmed just before a power cut
            return None
        started = (self.root / STARTED).exists()
        if started or not self.complete(trial):
            self.roll_back(trial, "did not come up" if started else "is incomplete")
            return None
        try:
            self._snapshot_before(trial)
            _write_durably(self.root / STARTED, trial + "\n")
        except (OSError, sqlite3.Error) as err:
            self.roll_back(trial, f"could not be started ({err})")
            return None
        log.warning("starting the new firmware release %s on trial", trial)
        return Launch(trial, self.python(trial))

    def roll_back(self, trial: str, why: str) -> None:
        back_to = self.pointer(CURRENT) or "the installed firmware"
        log.error("firmware release %s %s: rolling back to %s", trial, why, back_to)
        self._restore_snapshot()
        _write_durably(self.root / ROLLED_BACK, f"{trial} {why}\n")
        self._clear_trial()
        if trial != self.pointer(CURRENT):
            shutil.rmtree(self.root / trial, ignore_errors=True)

    # ------------------------------------------------------------ install and confirm

    def stage(self, name: str) -> None:
        """Make the built release ``name`` the trial the next start runs."""
        old = self.pointer(TRIAL)
        for leftover in (STARTED, ROLLED_BACK, SNAPSHOT):
            _unlink(self.root / leftover)
        if self.running() is None:  # built by the installed firmware: remember which
            _write_durably(self.root / INSTALLED, self.installed_identity() + "\n")
        _replace_link(self.root / TRIAL, name)
        if old is not None and old not in (name, self.pointer(CURRENT)):
            shutil.rmtree(self.root / old, ignore_errors=True)

    def trial_running(self) -> str | None:
        """The trial's name when this process is it (started, not yet confirmed)."""
        trial = self.pointer(TRIAL)
        return trial if trial is not None and trial == self.running() else None

    def take_rollback_note(self) -> str | None:
        """What the last rollback said (once): ``<release> <why>``."""
        note = self.root / ROLLED_BACK
        try:
            text = note.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None
        _unlink(note)
        return text or "a release"

    def confirm(self) -> bool:
        """This process is the trial and came up: it becomes the current release."""
        trial = self.trial_running()
        if trial is None:
            return False
        previous = self.pointer(CURRENT)
        _replace_link(self.root / CURRENT, trial)
        self._clear_trial()
        _unlink(self.root / SNAPSHOT)
        self.prune(keep={trial, previous})
        log.warning("firmware release %s confirmed (previous: %s)", trial, previous or "installed")
        return True

    def prune(self, keep: set[str | None]) -> None:
        """Remove every release but ``keep`` (the current one and the one before)."""
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.is_dir() and not entry.is_symlink() and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)

    # ------------------------------------------------------------ the database

    def _snapshot_before(self, trial: str) -> None:
        """Copy the database if the trial will migrate it beyond what runs now."""
        snapshot = self.root / SNAPSHOT
        _unlink(snapshot)
        newest = newest_migration(self.root / trial)
        if newest is None or not self.db.exists() or newest <= _schema_version(self.db):
            return
        partial = snapshot.with_name(snapshot.name + ".new")
        _unlink(partial)
        source = sqlite3.connect(self.db)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        _fsync(partial)
        os.replace(partial, snapshot)
        _fsync_dir(self.root)
        log.warning("database copied before the trial (it migrates it to version %d)", newest)

    def _restore_snapshot(self) -> None:
        snapshot = self.root / SNAPSHOT
        if not snapshot.exists():
            return
        for suffix in ("-wal", "-shm"):
            _unlink(self.db.with_name(self.db.name + suffix))
        os.replace(snapshot, self.db)
        _fsync_dir(self.db.parent)
        log.warning("database put back as it was before the trial")

    def _clear_trial(self) -> None:
        _unlink(self.root / TRIAL)
        _unlink(self.root / STARTED)
        _fsync_dir(self.root)


def newest_migration(environment: Path) -> int | None:
    """The highest database migration a release's firmware carries."""
    numbers = [
        int(match.group(1))
        for folder in environment.glob("lib/python*/site-packages/firmware/storage/migrations")
        for entry in folder.iterdir()
        if (match := _MIGRATION.match(entry.name))
    ]
    return max(numbers, default=None)


def _schema_version(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _replace_link(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(link.name + ".new")
    _unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)
    _fsync_dir(link.parent)


def _write_durably(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
