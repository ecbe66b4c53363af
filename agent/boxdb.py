"""The box's working database (``box.sqlite`` in the data directory): everything that is not fiscal.

Drafts and parked tickets, the catalog, users and paired frontends, cash sessions, stored HTTP
answers for idempotency keys, the e-mail queue: mutable state that the box needs across
restarts but that is *not* the certified journal (that lives in ``journal.sqlite``, append-only,
owned by ``fiscal``). Each service declares its own tables (``CREATE TABLE IF NOT EXISTS …``)
and creates them with ``create``. The database runs in WAL mode with ``synchronous=NORMAL``: a
committed change survives the process being killed; a power cut may lose the last few
commits (the WAL is synced at checkpoints, not per commit). That is the right trade here: every
change a frontend makes (a line, a payment) would otherwise cost an fsync, and nothing of value
depends on it alone — whatever is fiscal (sales, cash movements, closures) is in the journal,
which syncs every commit (``synchronous=FULL``), and the services find their journal entries by
their idempotency keys after a restart.

Statements run **on the event loop's thread**, on one ``sqlite3`` connection: only the daemon
uses this file, its statements are index lookups and small writes that never wait for the disk
(no fsync at commit), and a round trip through a worker thread (aiosqlite) cost more than the
statement itself (0.1–0.3 ms against ~20 µs, several per request). What does wait for the disk,
the WAL checkpoint, is taken off the loop: automatic checkpoints are off, and every
``CHECKPOINT_EVERY`` commits a passive checkpoint runs in a worker thread on a connection of its
own (it never blocks the loop's writes). The methods stay ``async``: the callers do not depend
on where the statements run, and a long transaction yields to the loop every
``YIELD_EVERY`` statements.

``transaction()`` serialises multi-statement changes (one writer at a time, readers never block).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog

FILE_NAME = "box.sqlite"
CHECKPOINT_EVERY = 500
"""Commits between two background WAL checkpoints."""
YIELD_EVERY = 64
"""Statements of one transaction between two yields to the event loop."""
Row = tuple[Any, ...]


class Statements:
    """Statements on the connection: those of an open ``transaction()``, or reads (``reads()``)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._statements = 0

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement; its cursor gives the rows, ``rowcount`` and ``lastrowid``."""
        self._statements += 1
        if self._statements % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a long import must not hold the loop for its whole length
        return self._connection.execute(sql, parameters)


class BoxDb:
    """The working database: a connection, a write lock, a few query helpers."""

    def __init__(self, connection: sqlite3.Connection, path: Path,
                 checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.connection = connection
        self.path = path
        self.checkpoint_every = checkpoint_every
        self._write = asyncio.Lock()
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, data_dir: Path, schemas: Iterable[str] = (), *,
                   checkpoint_every: int = CHECKPOINT_EVERY) -> BoxDb:
        """Open (creating) ``box.sqlite`` in ``data_dir`` and create the tables of ``schemas``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / FILE_NAME
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=5000", "wal_autocheckpoint=0"):
            connection.execute(f"PRAGMA {pragma}")
        db = cls(connection, path, checkpoint_every)
        for schema in schemas:
            connection.executescript(schema)
        return db

    async def close(self) -> None:
        """Finish a running checkpoint, then close the connection (which checkpoints)."""
        await self.checkpointed()
        self.connection.close()

    async def checkpointed(self) -> None:
        """Wait for the background checkpoint started last, if any."""
        if self._checkpoint is not None:
            await self._checkpoint

    def reads(self) -> Statements:
        """Statements outside a transaction (for reads: a write would commit on its own)."""
        return Statements(self.connection)

    async def create(self, schema: str) -> None:
        """Create the tables of one more service (idempotent ``CREATE … IF NOT EXISTS``)."""
        self.connection.executescript(schema)

    async def fetch_one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        """The first row of a query, or None."""
        row = self.connection.execute(sql, parameters).fetchone()
        return None if row is None else tuple(row)

    async def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
        return [tuple(row) for row in self.connection.execute(sql, parameters).fetchall()]

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one change in its own transaction; return the number of rows changed."""
        async with self._write:
            count = self.connection.execute(sql, parameters).rowcount
        self._committed()
        return count

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        """Several changes as one: committed on exit, rolled back if the block raises."""
        async with self._write:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield Statements(self.connection)
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")
        self._committed()

    def _committed(self) -> None:
        """Count a commit; every ``checkpoint_every`` start a checkpoint off the loop."""
        self._commits += 1
        running = self._checkpoint is not None and not self._checkpoint.done()
        if running or self._commits % self.checkpoint_every:
            return
        self._checkpoint = asyncio.get_running_loop().create_task(
            asyncio.to_thread(checkpoint, self.path), name="box.sqlite checkpoint")


def checkpoint(path: Path) -> None:
    """Copy the WAL's committed pages into the database file (passive: writers go on).

    A failure is logged, not raised: the next checkpoint (or closing) catches up.
    """
    try:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
            connection.execute("PRAGMA busy_timeout=5000")
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as error:
        structlog.get_logger(__name__).warning("box_db_checkpoint_failed", error=str(error))
