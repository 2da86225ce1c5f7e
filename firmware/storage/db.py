"""SQLite state database: WAL, numbered migrations, explicit transactions.

One connection, used from the event loop thread. Every commit is durable
(``synchronous=FULL``: fsync'd) unless a caller asks for a non-durable
transaction: such a commit survives a crash of the process (SIGKILL) but may
be lost in a power cut until the next durable commit, and costs no fsync.
Board flash lives longer when frequent, non-critical writes (periodic meter
samples) take that path.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from firmware.errors import StorageError

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Params = Sequence[Any] | dict[str, Any]
PAGE_SIZE = 1024  # applies to databases created from now on


def migrations() -> list[tuple[int, str, str]]:
    """All shipped migrations as (number, file name, SQL), in order."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files("firmware.storage").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    # A gap would let a database skip a migration added later under a lower number.
    if numbers != list(range(1, len(numbers) + 1)):
        raise StorageError(f"migrations must be numbered 1..N without gaps, found {numbers}")
    return found


class Database:
    """The firmware's state database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Told when a write fails because the disk (or the database) is full.
        self.on_full: Callable[[str], None] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            # Small pages: every commit appends whole pages to the WAL, and the
            # rows written per commit here are small (flash wear, see README).
            self._conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except (sqlite3.Error, OSError) as err:
            raise StorageError(f"cannot open state database {path}: {err}") from err
        self._depth = 0
        self._durable = True

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        available = migrations()
        newest = available[-1][0] if available else 0
        if current > newest:
            raise StorageError(
                f"database schema version {current} is newer than this firmware "
                f"({newest}); refusing to downgrade"
            )
        for number, name, sql in available:
            if number <= current:
                continue
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for statement in _split_sql(sql):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version={number}")
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._conn.execute("ROLLBACK")
                raise StorageError(f"migration {name} failed: {err}") from err

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement. Outside ``transaction()`` it commits at once."""
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as err:
            if _is_full(err) and self.on_full is not None:
                self.on_full(str(err))
            raise StorageError(f"database error: {err}") from err

    def query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return self.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.execute(sql, params).fetchone()
        return row

    def counter(self, name: str) -> int:
        """A counter of the ``counters`` table (0 until counted)."""
        row = self.query_one("SELECT value FROM counters WHERE name = ?", (name,))
        return int(row["value"]) if row else 0

    def count_up(self, name: str, by: int = 1) -> None:
        """Add ``by`` to a counter (inside the caller's transaction, if any)."""
        self.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """Group statements into one atomic commit (nestable).

        ``durable=False``: no fsync at commit. A nested durable transaction
        inside a non-durable one is a programming error (durability is
        decided when the outermost transaction begins).
        """
        if self._depth:
            if durable and not self._durable:
                raise StorageError("a durable transaction cannot nest in a non-durable one")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if not durable:
            self.execute("PRAGMA synchronous=NORMAL")
        self._durable = durable
        try:
            self.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._rollback()
                raise
            self._depth = 0
            try:
                self.execute("COMMIT")
            except StorageError:
                self._rollback()
                raise
        finally:
            if not durable:
                self.execute("PRAGMA synchronous=FULL")
            self._durable = True

    def _rollback(self) -> None:
        # SQLite ends some failed transactions itself (SQLITE_FULL among them): a
        # ROLLBACK then would fail and hide the error that ended it.
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()


def _is_full(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
