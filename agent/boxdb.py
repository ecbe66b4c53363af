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

One aiosqlite connection serves the whole box; ``transaction()`` serialises multi-statement
changes (one writer at a time, readers never block).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

FILE_NAME = "box.sqlite"
Row = tuple[Any, ...]


class BoxDb:
    """The working database: a connection, a write lock, a few query helpers."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path
        self._write = asyncio.Lock()

    @classmethod
    async def open(cls, data_dir: Path, schemas: Iterable[str] = ()) -> BoxDb:
        """Open (creating) ``box.sqlite`` in ``data_dir`` and create the tables of ``schemas``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / FILE_NAME
        connection = await aiosqlite.connect(path, isolation_level=None)
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        await connection.execute("PRAGMA busy_timeout=5000")
        db = cls(connection, path)
        for schema in schemas:
            await connection.executescript(schema)
        return db

    async def close(self) -> None:
        """Close the connection."""
        await self.connection.close()

    async def create(self, schema: str) -> None:
        """Create the tables of one more service (idempotent ``CREATE … IF NOT EXISTS``)."""
        await self.connection.executescript(schema)

    async def fetch_one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        """The first row of a query, or None."""
        async with self.connection.execute(sql, parameters) as cursor:
            row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
        async with self.connection.execute(sql, parameters) as cursor:
            rows = await cursor.fetchall()
        return [tuple(row) for row in rows]

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one change in its own transaction; return the number of rows changed."""
        async with self._write:
            cursor = await self.connection.execute(sql, parameters)
            count = cursor.rowcount
            await cursor.close()
        return count

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Several changes as one: committed on exit, rolled back if the block raises."""
        async with self._write:
            await self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                await self.connection.execute("ROLLBACK")
                raise
            await self.connection.execute("COMMIT")
