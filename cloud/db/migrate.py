"""Schema migrations: plain SQL files applied in name order, each recorded once.

``migrations/NNNN_name.sql`` files that are not recorded in ``schema_migrations`` yet run in
one transaction, under an advisory lock (two processes migrating at once wait for each other),
and are recorded with the time they were applied. A released file never changes: a change
is a new file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cloud.db.connection import check_schema_name

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK = 0x7111B0C5  # the advisory lock id of migrations (any constant shared by all migrators)


class MigrationError(Exception):
    """The database is not at the schema version this code needs."""


def migrations() -> list[tuple[str, str]]:
    """Every migration as ``(version, sql)``, in order (the version is the file's stem)."""
    return [(path.stem, path.read_text(encoding="utf-8"))
            for path in sorted(MIGRATIONS.glob("*.sql"))]


async def _applied(conn: psycopg.AsyncConnection[Any]) -> set[str]:
    exists = await (await conn.execute(
        "SELECT to_regclass('schema_migrations') IS NOT NULL")).fetchone()
    if not exists or not exists[0]:
        return set()
    rows = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
    return {str(row[0]) for row in rows}


async def pending(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """The versions not applied yet in the connection's schema."""
    done = await _applied(conn)
    return [version for version, _ in migrations() if version not in done]


async def migrate(conn: psycopg.AsyncConnection[Any], schema: str) -> list[str]:
    """Create ``schema`` if needed and apply the missing migrations; return their versions."""
    name = sql.Identifier(check_schema_name(schema))
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(name))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version text PRIMARY KEY, applied_at timestamptz NOT NULL "
                           "DEFAULT now())")
        done = await _applied(conn)
        for version, text in migrations():
            if version not in done:
                await conn.execute(text.encode("utf-8"))
                await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)",
                                   (version,))
                applied.append(version)
    return applied


async def require_current(conn: psycopg.AsyncConnection[Any]) -> None:
    """Raise ``MigrationError`` when migrations are missing (run ``tillbox cloud migrate``)."""
    missing = await pending(conn)
    if missing:
        raise MigrationError(f"the database schema lacks migrations {', '.join(missing)}: "
                             "run `tillbox cloud migrate` first")
