"""``tillbox cloud migrate``, ``ingest`` (worker processes) and ``verify-export``."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from ingestkit import BoxClient, DemoJournal, box_client, demo_journal, mosquitto, payloads
from pgkit import DSN, fetch_all, pg_schema
from typer.testing import CliRunner

from agent.cli import app

BOX = "box-cli"


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> DemoJournal:
    return demo_journal(tmp_path_factory.mktemp("demo"), days=1)


def test_migrate_creates_the_schema_once() -> None:
    """``migrate`` applies the migrations into a new schema, then finds it up to date."""
    schema = f"t_{secrets.token_hex(6)}"
    runner = CliRunner()
    try:
        first = runner.invoke(app, ["cloud", "migrate", "--dsn", DSN, "--schema", schema])
        second = runner.invoke(app, ["cloud", "migrate", "--dsn", DSN, "--schema", schema])
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE "
                                  "table_schema = %s ORDER BY 1", (schema,)).fetchall()
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
    assert (first.exit_code, first.output.strip()) == (0, "applied 0001_initial, 0002_handovers")
    assert (second.exit_code, second.output.strip()) == (0, "schema up to date")
    assert [t for (t,) in tables] == ["alarms", "boxes", "chain_tips", "entries",
                                      "handovers", "schema_migrations"]


def test_migrate_refuses_a_bad_schema_name() -> None:
    """A schema name that is not a plain identifier is refused with exit status 2."""
    result = CliRunner().invoke(app, ["cloud", "migrate", "--dsn", DSN, "--schema", "x; drop"])
    assert result.exit_code == 2


def test_verify_export_checks_a_file(journal: DemoJournal, tmp_path: Path) -> None:
    """``verify-export`` passes the journal's bodies and fails them with one changed."""
    clean, forged = tmp_path / "clean.jsonl", tmp_path / "forged.jsonl"
    clean.write_text("\n".join(journal.bodies) + "\n", encoding="utf-8")
    bodies = list(journal.bodies)
    bodies[3] = bodies[3].replace('"operator":"', '"operator":"x', 1)
    forged.write_text("\n".join(bodies) + "\n", encoding="utf-8")
    runner = CliRunner()
    good = runner.invoke(app, ["cloud", "verify-export", str(clean)])
    bad = runner.invoke(app, ["cloud", "verify-export", str(forged)])
    assert good.exit_code == 0, good.output
    assert f"{len(journal.bodies)} entries, clean" in good.output
    assert bad.exit_code == 1
    assert "NOT CLEAN" in bad.output


async def test_ingest_runs_worker_processes(journal: DemoJournal, tmp_path: Path) -> None:
    """``ingest --workers 2`` stores and acks a journal, then stops cleanly on SIGTERM."""
    async with pg_schema() as schema, mosquitto(tmp_path) as port:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent.cli", "cloud", "ingest", "--dsn", DSN, "--schema",
            schema, "--broker", f"mqtt://127.0.0.1:{port}", "--workers", "2", "--client-id",
            f"cli-{schema}", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            async with box_client(port, BOX) as box:
                await _wait_for_subscribers(box, journal)
                acks = await box.acked_through(len(journal.bodies), timeout=10)
            count = await fetch_all(schema, "SELECT count(*) FROM entries")
        finally:
            process.send_signal(signal.SIGTERM)
            status = await asyncio.wait_for(process.wait(), 10)
    assert acks[-1] == len(journal.bodies)
    assert count == [(len(journal.bodies),)]
    assert status == 0


async def _wait_for_subscribers(box: BoxClient, journal: DemoJournal) -> None:
    """Send the journal until the workers answer (they subscribe a moment after starting)."""
    batches = payloads(BOX, journal, 10)
    async with asyncio.timeout(15):
        while True:
            await box.publish(batches[0][2])
            try:
                await box.answer(0.5)
                break
            except TimeoutError:
                continue
    for _, _, payload in batches[1:]:
        await box.publish(payload)
