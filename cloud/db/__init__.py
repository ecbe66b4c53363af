"""The cloud's PostgreSQL database: connections in a schema, and the schema's migrations.

``connect`` opens a psycopg 3 async connection whose ``search_path`` is one schema (so several
deployments, or tests, share a database); ``migrate`` applies the plain SQL files of
``cloud/db/migrations/`` in order and records them in ``schema_migrations``.
"""

from __future__ import annotations

from cloud.db.connection import check_schema_name, connect, connection_kwargs
from cloud.db.migrate import MigrationError, migrate, migrations, pending

__all__ = ["MigrationError", "check_schema_name", "connect", "connection_kwargs", "migrate",
           "migrations", "pending"]
