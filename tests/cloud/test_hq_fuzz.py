"""schemathesis against the HQ API's ``/openapi.json``: no 5xx, only what it declares.

``tillbox cloud hq`` runs as a real process over a schema holding a stored demo journal, an
alarm and a box status; every operation gets generated requests (valid and invalid).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import hypothesis
import psycopg
import pytest
import requests
import schemathesis
from ingestkit import batch_payload, demo_journal, free_port
from pgkit import DSN, connect
from schemathesis import checks

from cloud.db import migrate
from cloud.ingest.apply import Applier
from cloud.ingest.wire import parse_batch

EXAMPLES_PER_OPERATION = 40
MIN_CASES = 300
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]
TOKEN = "fuzz-token"
calls = {"count": 0}


@dataclass(frozen=True)
class Service:
    url: str
    schema: str


async def _fill(schema: str, bodies: tuple[str, ...], epoch: str) -> None:
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as admin:
        await migrate(admin, schema)
    async with await connect(schema) as conn:
        batch = parse_batch(batch_payload("box-f", epoch, 1, bodies), "box-f")
        answer, _ = await Applier(conn).receive(batch)
        assert answer.kind == "ack"
        await conn.execute("INSERT INTO alarms (box_id, kind, seq, detail) "
                           "VALUES ('box-f', 'gap', 3, 'x')")
        await conn.execute("""UPDATE boxes SET status = '{"state": "online"}'::jsonb""")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    journal = demo_journal(tmp_path_factory.mktemp("demo"), days=2, sales_per_day=6)
    schema = f"t_{secrets.token_hex(6)}"
    asyncio.run(_fill(schema, journal.bodies, journal.epoch))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "cloud", "hq", "--dsn", DSN, "--schema", schema,
         "--http", f"127.0.0.1:{port}", "--token", TOKEN], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the HQ did not start"
            time.sleep(0.05)
        yield Service(url, schema)
    finally:
        process.terminate()
        process.wait(10)
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


@pytest.fixture(scope="module")
def api_schema(service: Service) -> schemathesis.BaseSchema:
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"phases": {"coverage": {"enabled": False}}})
    return schemathesis.openapi.from_url(f"{service.url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_hq_answers_what_it_declares(case: schemathesis.Case, service: Service,
                                     session: requests.Session) -> None:
    calls["count"] += 1
    case.call_and_validate(base_url=service.url, session=session,
                           headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


@pytest.mark.slow
def test_enough_cases_were_generated() -> None:
    print(f"schemathesis cases: {calls['count']}")
    assert calls["count"] >= MIN_CASES, calls["count"]
