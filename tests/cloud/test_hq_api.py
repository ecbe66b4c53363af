"""The HQ API over a stored demo journal: sales, closures, exports, boxes, alarms, errors."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from ingestkit import DemoJournal, batch_payload, demo_journal
from pgkit import DSN, connect, pg_schema
from psycopg_pool import AsyncConnectionPool

from cloud.db import connection_kwargs
from cloud.hq.app import create_app
from cloud.ingest.apply import Applier
from cloud.ingest.wire import parse_batch
from cloud.verify_export import verify_file

BOX = "box-hq"


@dataclass
class Hq:
    client: httpx.AsyncClient
    schema: str


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> DemoJournal:
    return demo_journal(tmp_path_factory.mktemp("demo"), days=3, sales_per_day=12, seed=11)


async def store(schema: str, journal: DemoJournal, box: str = BOX) -> None:
    async with await connect(schema) as conn:
        for start in range(0, len(journal.bodies), 25):
            batch = parse_batch(batch_payload(box, journal.epoch, start + 1,
                                              journal.bodies[start:start + 25]), box)
            answer, _ = await Applier(conn).receive(batch)
            assert answer.kind == "ack", answer


@asynccontextmanager
async def hq(journal: DemoJournal, token: str | None = None) -> AsyncIterator[Hq]:
    async with pg_schema() as schema:
        await store(schema, journal)
        pool = AsyncConnectionPool(DSN, kwargs=connection_kwargs(schema), min_size=1,
                                   max_size=2, open=False)
        await pool.open()
        try:
            app = create_app(pool, token=token)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://hq") as client:
                yield Hq(client, schema)
        finally:
            await pool.close()


def tickets(journal: DemoJournal) -> list[dict[str, Any]]:
    return [r for r in journal.records() if r["type"] in ("sale", "return")
            and not r["training"]]


async def get(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_sales_per_day_are_the_journal_tickets_sums(journal: DemoJournal) -> None:
    """Sales by day equal the sums of the journal's sales and returns of each business day."""
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for record in tickets(journal):
        row = expected[record["business_date"]]
        row[0 if record["type"] == "sale" else 1] += 1
        row[2] += record["total"]
        row[3] += record["total_vat"]
    async with hq(journal) as service:
        report = await get(service.client, "/v1/sales", by="day")
    got = {r["business_date"]: [r["sale_count"], r["return_count"], r["net_total"],
                                r["total_vat"]] for r in report["rows"]}
    assert got == dict(expected)
    assert len(got) == 3
    assert report["totals"]["net_total"] == sum(row[2] for row in expected.values())


async def test_sales_by_cashier_store_and_box(journal: DemoJournal) -> None:
    """Grouping by store, box and operator (and a date range) splits the same tickets."""
    first_day = min(r["business_date"] for r in tickets(journal))
    expected: dict[str, int] = defaultdict(int)
    for record in tickets(journal):
        if record["business_date"] == first_day:
            expected[record["operator"]] += record["total"]
    async with hq(journal) as service:
        report = await get(service.client, "/v1/sales", by=["store", "box", "operator"],
                           **{"from": first_day, "to": first_day})
    assert {(r["store_id"], r["box_id"]) for r in report["rows"]} == {("demo-store", BOX)}
    assert {r["operator"]: r["net_total"] for r in report["rows"]} == dict(expected)


async def test_closures_and_perpetual_totals_are_the_signed_ones(journal: DemoJournal) -> None:
    """Z closures and the perpetual totals are those the box signed."""
    signed = [r for r in journal.records() if r["type"] == "day_closure"]
    months = [r for r in journal.records() if r["type"] == "month_closure"]
    async with hq(journal) as service:
        days = await get(service.client, "/v1/closures", kind="day")
        perpetual = await get(service.client, "/v1/perpetual-totals")
    assert [(c["period_to"], c["period_total"], c["perpetual_total"], c["ticket_count"])
            for c in days] == [(r["period_to"], r["period_total"], r["perpetual_total"],
                                r["ticket_count"]) for r in signed]
    assert days[0]["breakdown"] == signed[0]["breakdown"]
    assert days[0]["tenders"] == signed[0]["tenders"]
    assert [d["number"] for d in days] == [1, 2, 3]
    latest = {p["kind"]: p["perpetual_total"] for p in perpetual}
    assert latest["day"] == signed[-1]["perpetual_total"]
    assert latest.get("month") == (months[-1]["perpetual_total"] if months else None)


async def test_fec_has_one_balanced_entry_per_day_closure(journal: DemoJournal) -> None:
    """The FEC has the 18 columns and one balanced écriture per Z, tenders against sales."""
    signed = [r for r in journal.records() if r["type"] == "day_closure"]
    async with hq(journal) as service:
        response = await service.client.get("/v1/exports/fec")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.strip().split("\r\n")
    header, rows = lines[0].split("|"), [line.split("|") for line in lines[1:]]
    assert header[:4] == ["JournalCode", "JournalLib", "EcritureNum", "EcritureDate"]
    assert len(header) == 18
    assert all(len(row) == 18 for row in rows)

    def cents(text: str) -> int:
        return int(text.replace(",", ""))

    tenders: dict[str, int] = defaultdict(int)
    sales: dict[str, int] = defaultdict(int)
    for row in rows:
        amount = cents(row[11]) - cents(row[12])
        (tenders if row[4].startswith(("5", "4191", "4197")) else sales)[row[2]] += amount
    assert list(tenders.values()) == [c["period_total"] for c in signed]
    assert list(sales.values()) == [-c["period_total"] for c in signed]
    cash = [row for row in rows if row[4] == "530000"]
    assert cash
    assert cash[0][5] == "Caisse"


async def test_sales_csv_sums_per_rate_match_the_tickets(journal: DemoJournal) -> None:
    """The ';' CSV gives per day and VAT rate the sums of the tickets' breakdowns."""
    expected: dict[tuple[str, int], int] = defaultdict(int)
    for record in tickets(journal):
        for line in record["breakdown"]:
            expected[(record["business_date"], line["rate"])] += line["incl"]
    async with hq(journal) as service:
        response = await service.client.get("/v1/exports/sales.csv")
    rows = list(csv.DictReader(io.StringIO(response.text), delimiter=";"))
    got = {(r["date"], int(r["vat_rate"].replace(",", ""))): int(r["total_incl"].replace(
        ",", "")) for r in rows}
    assert got == dict(expected)
    assert rows[0]["box"] == BOX


async def test_journal_export_is_the_bodies_and_verifies(journal: DemoJournal,
                                                         tmp_path: Path) -> None:
    """The JSONL export is the stored bodies in order, and verifies offline."""
    async with hq(journal) as service:
        whole = await service.client.get(f"/v1/boxes/{BOX}/journal")
        part = await service.client.get(f"/v1/boxes/{BOX}/journal",
                                        params={"from_seq": 5, "to_seq": 9})
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "application/x-ndjson"
    assert whole.text.splitlines() == list(journal.bodies)
    assert part.text.splitlines() == list(journal.bodies[4:9])
    export = tmp_path / "export.jsonl"
    export.write_bytes(whole.content)
    report = verify_file(export)
    assert report.ok, report.findings
    assert report.entry_count == len(journal.bodies)


async def test_boxes_show_watermark_lag_and_alarms(journal: DemoJournal) -> None:
    """The box list shows the watermark, the lag from the box's status and open alarms."""
    last = len(journal.bodies)
    async with hq(journal) as service:
        async with await connect(service.schema) as conn:
            status = orjson.dumps({"state": "online", "epoch": journal.epoch,
                                   "last_seq": last + 7, "backlog": 7}).decode()
            await conn.execute("UPDATE boxes SET status = %s::jsonb, status_at = now()",
                               (status,))
            await conn.execute("INSERT INTO alarms (box_id, kind, seq, detail) "
                               "VALUES (%s, 'bad_signature', 9, 'forged')", (BOX,))
            await conn.execute("UPDATE boxes SET state = 'alarm'")
        (box,) = await get(service.client, "/v1/boxes")
        detail = await get(service.client, f"/v1/boxes/{BOX}")
        (alarm,) = await get(service.client, "/v1/alarms")
        cleared = await service.client.post(f"/v1/alarms/{alarm['alarm_id']}/clear")
        after = await get(service.client, f"/v1/boxes/{BOX}")
    assert (box["acked_through"], box["reported_last_seq"], box["lag"], box["link"]) == (
        last, last + 7, 7, "online")
    assert (box["state"], box["open_alarms"], box["store_id"]) == ("alarm", 1, "demo-store")
    assert {tip["chain"] for tip in detail["chains"]} >= {"ticket", "closure", "event"}
    assert max(tip["seq"] for tip in detail["chains"]) == last
    assert cleared.status_code == 200
    assert cleared.json()["cleared_at"] is not None
    assert (after["state"], after["open_alarms"], after["alarms"]) == ("ok", 0, [])


async def test_errors_are_problems(journal: DemoJournal) -> None:
    """Unknown boxes, reversed ranges and bad dates answer problem+json, never a 5xx."""
    async with hq(journal) as service:
        missing = await service.client.get("/v1/boxes/nope")
        reversed_range = await service.client.get("/v1/sales", params={
            "from": "2026-04-02", "to": "2026-04-01"})
        bad_date = await service.client.get("/v1/closures", params={"from": "2026-13-01"})
        bad_dimension = await service.client.get("/v1/sales", params={"by": "planet"})
        no_alarm = await service.client.post("/v1/alarms/99/clear")
        no_export = await service.client.get("/v1/boxes/nope/journal")
    for response, status, code in ((missing, 404, "box_not_found"),
                                   (reversed_range, 422, "invalid_range"),
                                   (bad_date, 422, "invalid_input"),
                                   (bad_dimension, 422, "invalid_input"),
                                   (no_alarm, 404, "alarm_not_found"),
                                   (no_export, 404, "box_not_found")):
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code


async def test_a_token_guards_the_api(journal: DemoJournal) -> None:
    """With a token set, /v1 needs it as a bearer token; /health stays open."""
    async with hq(journal, token="s3cret") as service:
        refused = await service.client.get("/v1/boxes")
        wrong = await service.client.get("/v1/boxes", headers={"Authorization": "Bearer x"})
        allowed = await service.client.get("/v1/boxes",
                                           headers={"Authorization": "Bearer s3cret"})
        health = await service.client.get("/health")
    assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
    assert wrong.status_code == 401
    assert allowed.status_code == 200
    assert health.json() == {"status": "ok", "boxes": 1, "acked_entries": len(journal.bodies)}
