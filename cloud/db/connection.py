"""Open connections to the cloud database, confined to one schema by its ``search_path``."""

from __future__ import annotations

import re
from typing import Any

import psycopg

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if it is a plain lower-case SQL identifier, else raise ``ValueError``."""
    if not _SCHEMA.fullmatch(schema):
        raise ValueError(f"schema {schema!r}: lower-case letters, digits and _ only, "
                         "not starting with a digit, at most 63")
    return schema


def connection_kwargs(schema: str) -> dict[str, Any]:
    """Connection options: autocommit (transactions are explicit) and the schema's search path."""
    return {"autocommit": True, "options": f"-c search_path={check_schema_name(schema)}"}


async def connect(dsn: str, schema: str) -> psycopg.AsyncConnection[Any]:
    """Open an autocommit connection working in ``schema``."""
    return await psycopg.AsyncConnection.connect(dsn, **connection_kwargs(schema))
