"""Statistics over a demo history, checked against sums made straight from the journal file."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import closing
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from boxkit import frontend, running_box

from fiscal.demo import generate
from fiscal.testing import FakeClock

FIRST = dt.date(2025, 12, 30)
AFTER = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def stored(data_dir: Path) -> list[dict[str, Any]]:
    """Every entry body read straight from the journal's SQLite file."""
    with closing(sqlite3.connect(data_dir / "journal.sqlite3")) as db:
        rows = db.execute("SELECT body FROM entries ORDER BY seq").fetchall()
    return [orjson.loads(body) for (body,) in rows]


def tickets(entries: list[dict[str, Any]], first: str, last: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["chain"] == "ticket"
            and e["record"]["type"] in ("sale", "return")
            and first <= e["record"]["business_date"] <= last]


def expected_stats(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures, summed independently of ``agent.services.reports``."""
    records = [e["record"] for e in entries]
    sales = [r for r in records if r["type"] == "sale"]
    returns = [r for r in records if r["type"] == "return"]
    sales_total = sum(r["total"] for r in sales)
    basket = Decimal(sales_total) / Decimal(len(sales))
    tender: dict[str, int] = defaultdict(int)
    hours: dict[int, int] = defaultdict(int)
    operators: dict[str, int] = defaultdict(int)
    for entry in entries:
        record = entry["record"]
        for payment in record["payments"]:
            tender[payment["tender"]] += payment["amount"]
        tender["cash"] -= record["change"]
        hours[int(entry["at_local"][11:13])] += record["total"]
        operators[record["operator"]] += record["total"]
    return {
        "revenue_incl": sum(r["total"] for r in records),
        "revenue_excl": sum(r["total_excl"] for r in records),
        "sales": (sales_total, len(sales)),
        "returns": (sum(r["total"] for r in returns), len(returns)),
        "average_basket": int(basket.quantize(Decimal(1), rounding=ROUND_HALF_UP)),
        "by_tender": dict(tender), "by_hour": dict(hours), "by_operator": dict(operators),
    }


def item_revenue(entries: list[dict[str, Any]]) -> dict[str, int]:
    revenue: dict[str, int] = defaultdict(int)
    for entry in entries:
        for line in entry["record"]["lines"]:
            revenue[line["sku"]] += line["net"]  # the demo prices include VAT
    return dict(revenue)


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, list[dict[str, Any]]]]:
    data_dir = tmp_path / "data"
    await generate(data_dir, days=3, sales_per_day=8, seed=7, start=FIRST)
    entries = stored(data_dir)
    async with (running_box(data_dir, FakeClock(AFTER)) as box, frontend(box) as client):
        yield client, entries


async def test_statistics_of_the_demo_history(
        demo: tuple[httpx.AsyncClient, list[dict[str, Any]]]) -> None:
    """Revenue, counts, basket, tenders, hours, cashiers and top items equal the file's sums."""
    client, entries = demo
    answer = await client.get("/v1/reports/stats",
                              params={"from": "2025-12-30", "to": "2026-01-01", "top": 3})
    assert answer.status_code == 200, answer.text
    stats = answer.json()
    chosen = tickets(entries, "2025-12-30", "2026-01-01")
    want = expected_stats(chosen)
    assert stats["sales_count"] == 24
    assert stats["returns_count"] >= 1
    assert (stats["revenue_incl"], stats["revenue_excl"]) == (want["revenue_incl"],
                                                              want["revenue_excl"])
    assert stats["revenue_vat"] == want["revenue_incl"] - want["revenue_excl"]
    assert (stats["sales_total"], stats["sales_count"]) == want["sales"]
    assert (stats["returns_total"], stats["returns_count"]) == want["returns"]
    assert stats["average_basket"] == want["average_basket"]
    assert {t["tender"]: t["amount"] for t in stats["by_tender"]} == want["by_tender"]
    assert {h["hour"]: h["revenue"] for h in stats["by_hour"] if h["revenue"]} == {
        h: v for h, v in want["by_hour"].items() if v}
    assert [h["hour"] for h in stats["by_hour"]] == list(range(24))
    assert {o["operator"]: o["revenue"] for o in stats["by_operator"]} == want["by_operator"]
    revenue = item_revenue(chosen)
    best = sorted(revenue.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert [(i["sku"], i["revenue"]) for i in stats["top_by_revenue"]] == best
    assert len(stats["top_by_quantity"]) == 3


async def test_one_day_and_training_left_out(
        demo: tuple[httpx.AsyncClient, list[dict[str, Any]]]) -> None:
    """One business date holds its 8 sales only (training tickets are never counted)."""
    client, entries = demo
    stats = (await client.get("/v1/reports/stats",
                              params={"from": "2025-12-31", "to": "2025-12-31"})).json()
    want = expected_stats(tickets(entries, "2025-12-31", "2025-12-31"))
    assert stats["sales_count"] == 8
    assert stats["revenue_incl"] == want["revenue_incl"]
    assert any(e["chain"] == "training" for e in entries)


@pytest.mark.parametrize(("params", "code"), [
    ({"from": "2025-01-01", "to": "2026-01-03"}, "period_too_long"),
    ({"from": "2026-01-02", "to": "2026-01-01"}, "period_reversed"),
    ({"from": "2026-01-02"}, "period_required"),
    ({"from": "2026-13-01", "to": "2026-01-01"}, "invalid_input"),
    ({"from": "2026-01-01", "to": "2026-01-02", "top": 0}, "invalid_input"),
])
async def test_bad_periods_are_refused(tmp_path: Path, params: dict[str, Any],
                                       code: str) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        answer = await client.get("/v1/reports/stats", params=params)
    assert (answer.status_code, answer.json()["code"]) == (422, code)


async def test_a_period_of_exactly_366_days_is_accepted(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        answer = await client.get("/v1/reports/stats",
                                  params={"from": "2025-11-20", "to": "2026-11-21"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["average_basket"] == 0
