"""The SQLite store of the journal: append-only entries, signed chain heads, one writer.

WAL mode with ``synchronous=FULL``: a commit is on disk before ``insert`` returns. Triggers
refuse UPDATE and DELETE on entries, keep the ``heads`` table in step with every insert (so an
entry and its head commit in the same statement) and refuse to move a head anywhere but forward.
A single-entry append is one statement, i.e. one round trip to aiosqlite's thread and one fsync.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import aiosqlite
import orjson

from fiscal.chain import ChainHead, ChainState, Entry
from fiscal.errors import JournalCorrupt

SCHEMA_VERSION = "1"

SCHEMA = """
BEGIN;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    chain TEXT NOT NULL,
    chain_seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    business_date TEXT,
    ref_seq INTEGER,
    idem_key TEXT UNIQUE,
    sig TEXT NOT NULL,
    head_sig TEXT NOT NULL,
    at_utc TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (chain, chain_seq)
);
CREATE INDEX IF NOT EXISTS entries_ref ON entries (ref_seq) WHERE ref_seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_type_date ON entries (type, business_date);
CREATE TABLE IF NOT EXISTS heads (
    chain TEXT PRIMARY KEY,
    chain_seq INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    sig TEXT NOT NULL,
    head_sig TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_replace BEFORE INSERT ON entries
WHEN EXISTS (SELECT 1 FROM entries WHERE seq = NEW.seq
             OR (chain = NEW.chain AND chain_seq = NEW.chain_seq))
BEGIN SELECT RAISE(ABORT, 'journal entries are append-only (seq or chain_seq exists)'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_replace_key BEFORE INSERT ON entries
WHEN NEW.idem_key IS NOT NULL AND EXISTS (SELECT 1 FROM entries WHERE idem_key = NEW.idem_key)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: entries.idem_key'); END;
CREATE TRIGGER IF NOT EXISTS heads_no_delete BEFORE DELETE ON heads
BEGIN SELECT RAISE(ABORT, 'chain heads cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS heads_no_replace BEFORE INSERT ON heads
WHEN EXISTS (SELECT 1 FROM heads WHERE chain = NEW.chain)
BEGIN SELECT RAISE(ABORT, 'chain heads only move forward'); END;
CREATE TRIGGER IF NOT EXISTS heads_forward BEFORE UPDATE ON heads
WHEN NEW.chain_seq <> OLD.chain_seq + 1
BEGIN SELECT RAISE(ABORT, 'chain heads only move forward'); END;
CREATE TRIGGER IF NOT EXISTS heads_follow AFTER INSERT ON entries
BEGIN
    UPDATE heads SET chain_seq = NEW.chain_seq, seq = NEW.seq, sig = NEW.sig,
        head_sig = NEW.head_sig WHERE chain = NEW.chain;
    INSERT INTO heads (chain, chain_seq, seq, sig, head_sig)
    SELECT NEW.chain, NEW.chain_seq, NEW.seq, NEW.sig, NEW.head_sig
    WHERE NOT EXISTS (SELECT 1 FROM heads WHERE chain = NEW.chain);
END;
COMMIT;
"""

INSERT = (
    "INSERT INTO entries (seq, chain, chain_seq, type, business_date, ref_seq, idem_key, sig,"
    " head_sig, at_utc, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class DuplicateKey(Exception):
    """An entry with this idempotency key is already stored."""


@dataclass(frozen=True)
class Row:
    """An entry with the index columns the journal queries by."""

    entry: Entry
    head: ChainHead
    business_date: str | None = None
    ref_seq: int | None = None
    idem_key: str | None = None

    def values(self) -> tuple[Any, ...]:
        """Return the INSERT parameters."""
        e = self.entry
        return (e.seq, e.chain, e.chain_seq, e.record["type"], self.business_date, self.ref_seq,
                self.idem_key, e.sig, self.head.head_sig, e.at_utc, e.body().decode("utf-8"))


def decode(body: str | bytes) -> Entry:
    """Parse a stored entry body."""
    try:
        return Entry.from_json(orjson.loads(body))
    except (orjson.JSONDecodeError, KeyError, TypeError) as error:
        raise JournalCorrupt(f"unreadable journal entry: {error}") from error


class Store:
    """The journal database of one register; use ``await Store.open(path)``."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Store:
        """Open (creating if needed) the journal database at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.executescript(SCHEMA)
        store = cls(db, path)
        if await store.get_meta("schema_version") is None:
            await store.set_meta("schema_version", SCHEMA_VERSION)
        return store

    async def close(self) -> None:
        """Close the database."""
        await self._db.close()

    async def insert(self, rows: Sequence[Row]) -> None:
        """Store ``rows`` atomically and durably; ``DuplicateKey`` if an idempotency key exists."""
        try:
            if len(rows) == 1:
                await self._db.execute(INSERT, rows[0].values())
                return
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await self._db.executemany(INSERT, [row.values() for row in rows])
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
        except sqlite3.IntegrityError as error:
            if "idem_key" in str(error):
                raise DuplicateKey(str(error)) from error
            raise

    async def get_meta(self, key: str) -> str | None:
        """Read a metadata value."""
        async with self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        """Write a metadata value (not part of the signed journal)."""
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    async def load_state(self, store_id: str, register_id: str, timezone: str) -> ChainState:
        """Rebuild the append state from the heads and the last entry."""
        heads = {}
        async with self._db.execute(
            "SELECT chain, chain_seq, seq, sig, head_sig FROM heads") as cursor:
            async for chain, chain_seq, seq, sig, head_sig in cursor:
                heads[chain] = ChainHead(chain, chain_seq, seq, sig, head_sig)
        async with self._db.execute(
            "SELECT seq, at_utc FROM entries ORDER BY seq DESC LIMIT 1") as cursor:
            last = await cursor.fetchone()
        return ChainState(store_id=store_id, register_id=register_id, timezone=timezone,
                          seq=int(last[0]) if last else 0, heads=MappingProxyType(heads),
                          last_at_utc=str(last[1]) if last else None)

    async def _select(self, where: str, params: tuple[Any, ...]) -> list[Entry]:
        async with self._db.execute(f"SELECT body FROM entries WHERE {where}", params) as cursor:
            return [decode(row[0]) async for row in cursor]

    async def get(self, seq: int) -> Entry | None:
        """Return the entry with global sequence ``seq``."""
        found = await self._select("seq = ?", (seq,))
        return found[0] if found else None

    async def by_idempotency_key(self, key: str) -> list[Entry]:
        """Return the entries stored under an idempotency key (the last is the answer)."""
        async with self._db.execute(
            "SELECT seq FROM entries WHERE idem_key = ?", (key,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return []
        return await self._select("seq = ?", (int(row[0]),))

    async def referencing(self, seq: int) -> list[Entry]:
        """Return the entries that reference entry ``seq`` (returns, copies, invoices)."""
        return await self._select("ref_seq = ? ORDER BY seq", (seq,))

    async def of_type_on(self, record_type: str, date_from: str, date_to: str) -> list[Entry]:
        """Return the entries of a record type whose business date is in a range."""
        return await self._select(
            "type = ? AND business_date BETWEEN ? AND ? ORDER BY seq",
            (record_type, date_from, date_to))

    async def current_key_id(self) -> str | None:
        """Return the key id the journal says signs now (last initialisation or rotation)."""
        found = await self._select(
            "type = 'event' AND json_extract(body, '$.record.code') IN (260, 1080) "
            "ORDER BY seq DESC LIMIT 1", ())
        if not found:
            return None
        details = found[0].record["details"]
        return str(details.get("new_key_id") or details["key_id"])

    async def tickets_on(self, day: str) -> list[Entry]:
        """Return the ``ticket`` chain entries (sales and returns) of a business date."""
        return await self._select("chain = 'ticket' AND business_date = ? ORDER BY seq", (day,))

    async def last_of_type(self, record_type: str) -> Entry | None:
        """Return the latest entry of a record type."""
        found = await self._select("type = ? ORDER BY seq DESC LIMIT 1", (record_type,))
        return found[0] if found else None

    async def open_dates(self, after: str) -> list[str]:
        """Return the business dates after ``after`` that hold tickets or cash movements."""
        async with self._db.execute(
            "SELECT DISTINCT business_date FROM entries WHERE type IN ('sale', 'return', "
            "'cash_movement') AND chain != 'training' AND business_date > ? "
            "ORDER BY business_date", (after,)) as cursor:
            return [str(row[0]) async for row in cursor]

    async def raw_bodies(self, from_seq: int, limit: int = 500) -> list[tuple[int, str]]:
        """Return up to ``limit`` ``(seq, body)`` rows from ``from_seq`` on, bodies as stored."""
        async with self._db.execute(
            "SELECT seq, body FROM entries WHERE seq >= ? ORDER BY seq LIMIT ?",
            (from_seq, limit)) as cursor:
            return [(int(seq), str(body)) async for seq, body in cursor]

    async def iterate(self, from_seq: int = 1, to_seq: int | None = None,
                      batch: int = 500) -> AsyncIterator[Entry]:
        """Yield entries in global order from ``from_seq`` through ``to_seq``."""
        upper = to_seq if to_seq is not None else 2**62
        cursor_seq = from_seq
        while cursor_seq <= upper:
            found = await self._select("seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                                       (cursor_seq, upper, batch))
            if not found:
                return
            for entry in found:
                yield entry
            cursor_seq = found[-1].seq + 1
