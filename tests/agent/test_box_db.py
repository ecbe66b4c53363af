"""The working database: statements on the loop, transactions, checkpoints off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from agent.boxdb import FILE_NAME, YIELD_EVERY, BoxDb

SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"


def rows_in_the_file(path: Path) -> int:
    """Rows of ``notes`` in the database file itself, ignoring the WAL."""
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM notes").fetchone()[0])
        except sqlite3.OperationalError:  # the table is still only in the WAL
            return 0


async def test_a_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    """A block that raises leaves nothing; one that ends commits everything."""
    db = await BoxDb.open(tmp_path, (SCHEMA,))

    async def failing() -> None:
        async with db.transaction() as statements:
            await statements.execute("INSERT INTO notes (text) VALUES ('lost')")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        await failing()
    async with db.transaction() as statements:
        await statements.execute("INSERT INTO notes (text) VALUES ('kept')")
        cursor = await statements.execute("INSERT INTO notes (text) VALUES ('too')")
        assert cursor.lastrowid is not None
    assert await db.fetch_all("SELECT text FROM notes ORDER BY id") == [("kept",), ("too",)]
    await db.close()


async def test_commits_reach_the_database_file_through_background_checkpoints(
        tmp_path: Path) -> None:
    """Automatic checkpoints are off; every ``checkpoint_every`` commits one runs off the
    loop, after which the rows are in ``box.sqlite`` itself, not only in its WAL."""
    db = await BoxDb.open(tmp_path, (SCHEMA,), checkpoint_every=10)
    for n in range(9):
        await db.execute("INSERT INTO notes (text) VALUES (?)", (f"note {n}",))
    await db.checkpointed()
    assert rows_in_the_file(tmp_path / FILE_NAME) == 0
    await db.execute("INSERT INTO notes (text) VALUES ('tenth')")
    await db.checkpointed()
    assert rows_in_the_file(tmp_path / FILE_NAME) == 10
    await db.close()


async def test_a_long_transaction_lets_other_tasks_run(tmp_path: Path) -> None:
    """Statements run on the loop's thread, but a long transaction yields now and then."""
    db = await BoxDb.open(tmp_path, (SCHEMA,))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    async with db.transaction() as statements:
        seen = ticks
        for n in range(4 * YIELD_EVERY):
            await statements.execute("INSERT INTO notes (text) VALUES (?)", (str(n),))
        assert ticks > seen
    task.cancel()
    await db.close()
    assert rows_in_the_file(tmp_path / FILE_NAME) == 4 * YIELD_EVERY
