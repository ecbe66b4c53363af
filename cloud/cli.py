"""``tillbox cloud``: the cloud side's commands — migrate, ingest, hq, verify-export.

Exit status: 0 on success (or a clean stop), 1 on failure, 2 on invalid options.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The tillbox cloud: journal ingest into PostgreSQL and the HQ API.",
                  no_args_is_help=True, add_completion=False)

Dsn = Annotated[str, typer.Option("--dsn", envvar="TILLBOX_CLOUD_DSN",
                                  help="PostgreSQL connection string (libpq).")]
Schema = Annotated[str, typer.Option("--schema", envvar="TILLBOX_CLOUD_SCHEMA",
                                     help="Schema holding the cloud's tables.")]


def _fail(message: str, status: int = 1) -> typer.Exit:
    typer.echo(f"tillbox cloud: {message}", err=True)
    return typer.Exit(status)


@app.command()
def migrate(dsn: Dsn, schema: Schema = "tillbox") -> None:
    """Create the schema if needed and apply the missing migrations."""
    import psycopg

    from cloud.db import migrate as apply

    async def run() -> list[str]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await apply(conn, schema)

    try:
        applied = asyncio.run(run())
    except ValueError as error:
        raise _fail(str(error), 2) from None
    except psycopg.Error as error:
        raise _fail(f"database: {error}") from None
    typer.echo(f"applied {', '.join(applied)}" if applied else "schema up to date")


@app.command()
def ingest(
    dsn: Dsn,
    broker: Annotated[str, typer.Option(
        "--broker", envvar="TILLBOX_CLOUD_BROKER",
        help="mqtt://[user[:password]@]host[:port] or mqtts://….")] = "mqtt://127.0.0.1:1883",
    schema: Schema = "tillbox",
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    gap_timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds a batch waits for the entries before it (then: nack).")] = 5.0,
    client_id: Annotated[str | None, typer.Option(
        help="Client id prefix (default ingest-<host>); worker N adds -N.")] = None,
    ca: Annotated[Path | None, typer.Option(help="CA certificate of the broker (TLS).")] = None,
    cert: Annotated[Path | None, typer.Option(
        help="Client certificate (TLS); {n} = the worker's number.")] = None,
    key: Annotated[Path | None, typer.Option(help="Client key; {n} as for --cert.")] = None,
) -> None:
    """Receive journal batches (shared subscription), verify, store, ack; until stopped."""
    from cloud.db import MigrationError, check_schema_name
    from cloud.ingest.broker import parse_broker
    from cloud.ingest.processes import run_workers
    from cloud.ingest.worker import WorkerConfig

    try:
        address = parse_broker(broker, ca_file=ca, cert_file=cert, key_file=key)
        config = WorkerConfig(address, dsn, check_schema_name(schema),
                              client_id or f"ingest-{socket.gethostname()}",
                              gap_timeout=gap_timeout)
    except ValueError as error:
        raise _fail(str(error), 2) from None
    try:
        status = run_workers(config, workers)
    except MigrationError as error:
        raise _fail(str(error)) from None
    raise typer.Exit(status)


@app.command()
def hq(
    dsn: Dsn,
    schema: Schema = "tillbox",
    http: Annotated[str, typer.Option(metavar="HOST:PORT",
                                      help="Where the API listens.")] = "127.0.0.1:8090",
    token: Annotated[str | None, typer.Option(
        envvar="TILLBOX_HQ_TOKEN", help="Bearer token required on /v1 (none: open).")] = None,
) -> None:
    """Serve the HQ API (OpenAPI at /docs): sales, closures, exports, boxes and alarms."""
    import uvicorn
    from psycopg_pool import AsyncConnectionPool

    from cloud.db import connection_kwargs
    from cloud.hq.app import create_app

    host, _, port = http.rpartition(":")
    if not host or not port.isdigit():
        raise _fail(f"--http {http!r}: expected HOST:PORT", 2)
    try:
        kwargs = connection_kwargs(schema)
    except ValueError as error:
        raise _fail(str(error), 2) from None
    pool = AsyncConnectionPool(dsn, kwargs=kwargs, min_size=1, max_size=10, open=False)
    uvicorn.run(create_app(pool, token=token, own_pool=True), host=host, port=int(port),
                log_level="info")


@app.command("verify-export")
def verify_export(
    path: Annotated[Path, typer.Argument(help="A journal export (JSONL) from the HQ API.")],
    certificate: Annotated[list[Path] | None, typer.Option(
        help="Certificate (PEM) trusted at the export's first entry (not needed from seq 1).",
    )] = None,
) -> None:
    """Re-verify a journal export offline; exit 0 only if clean."""
    from cloud.verify_export import verify_file

    try:
        report = verify_file(path, [c.read_text(encoding="ascii") for c in certificate or []])
    except (OSError, ValueError) as error:
        raise _fail(str(error)) from None
    for finding in report.findings[:50]:
        typer.echo(f"{finding.code} seq {finding.seq}: {finding.message}")
    typer.echo(f"{report.entry_count} entries, {'clean' if report.ok else 'NOT CLEAN'}")
    raise typer.Exit(0 if report.ok else 1)

