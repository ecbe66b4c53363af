"""Test kit for the cloud database: a fresh, migrated schema per test on the local PostgreSQL.

``async with pg_schema() as schema:`` creates ``t_<random>`` in the test database, applies the
migrations and drops the schema (cascade) at the end; ``connect(schema)`` opens a connection
working in it. Import as ``pgkit`` from tests in ``tests/cloud``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from cloud.db import connect as db_connect
from cloud.db import migrate

DSN = os.environ.get("TILLBOX_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def connect(schema: str) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection working in ``schema``."""
    return await db_connect(DSN, schema)


@asynccontextmanager
async def pg_schema(*, migrated: bool = True) -> AsyncIterator[str]:
    """A schema of its own for one test (migrated unless asked not to), dropped at the end."""
    schema = f"t_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as admin:
        if migrated:
            await migrate(admin, schema)
        try:
            yield schema
        finally:
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())


async def fetch_all(schema: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one query in ``schema`` and return its rows."""
    async with await connect(schema) as conn:
        return await (await conn.execute(query.encode(), params)).fetchall()
