"""The demo data generator: a realistic, signed, closed and verifiable history."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from fiscal.demo import generate
from fiscal.verify import verify_data_dir

START = dt.date(2025, 12, 30)  # three days crossing a month and a fiscal year end


def stored(data_dir: Path) -> list[dict[str, Any]]:
    """Read every entry body straight from the journal's SQLite file, in order."""
    with closing(sqlite3.connect(data_dir / "journal.sqlite3")) as db:
        rows = db.execute("SELECT body FROM entries ORDER BY seq").fetchall()
    return [orjson.loads(body) for (body,) in rows]


def records(entries: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["record"] for e in entries if e["record"]["type"] == kind]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    data_dir = tmp_path_factory.mktemp("demo")
    asyncio.run(generate(data_dir, days=3, sales_per_day=8, seed=7, start=START))
    return data_dir, stored(data_dir)


def test_history_holds_every_kind_of_record(history: tuple[Path, list[dict[str, Any]]]) -> None:
    """Three days hold sales, returns, copies, invoices, training, voids, floats and closures."""
    _, entries = history
    kinds = Counter((e["chain"], e["record"]["type"]) for e in entries)
    assert kinds[("ticket", "sale")] == 24
    assert kinds[("ticket", "return")] >= 1
    assert kinds[("copy", "copy")] >= 1
    assert kinds[("invoice", "invoice")] >= 1
    assert kinds[("training", "sale")] >= 1
    assert kinds[("closure", "day_closure")] == 3
    codes = Counter(e["record"]["code"] for e in entries if e["chain"] == "event")
    assert {260, 1000, 1001, 1010, 1030, 1031, 1110, 1111} <= set(codes)
    assert 1050 not in codes
    floats = [r for r in records(entries, "cash_movement") if r["kind"] == "float"]
    assert [r["business_date"] for r in floats] == ["2025-12-30", "2025-12-31", "2026-01-01"]


def test_month_and_year_end_are_closed(history: tuple[Path, list[dict[str, Any]]]) -> None:
    """Every day is closed, and December and the 2025 fiscal year are closed at their end."""
    _, entries = history
    days = [(r["period_from"], r["period_to"]) for r in records(entries, "day_closure")]
    assert days == [("2025-12-30", "2025-12-30"), ("2025-12-31", "2025-12-31"),
                    ("2026-01-01", "2026-01-01")]
    months = [(r["period_from"], r["period_to"]) for r in records(entries, "month_closure")]
    assert months == [("2025-12-01", "2025-12-31")]
    years = [(r["period_from"], r["period_to"]) for r in records(entries, "year_closure")]
    assert years == [("2025-01-01", "2025-12-31")]


def test_entries_follow_business_hours(history: tuple[Path, list[dict[str, Any]]]) -> None:
    """Times never go back and every entry is stamped between 07:50 and 20:00, Paris time."""
    _, entries = history
    stamps = [e["at_utc"] for e in entries]
    assert stamps == sorted(stamps)
    hours = {e["at_local"][11:16] for e in entries}
    assert min(hours) >= "07:50"
    assert max(hours) < "20:00"
    assert all(e["at_local"].endswith("+01:00") for e in entries)


def _expected_day(tickets: list[dict[str, Any]]) -> dict[str, Any]:
    breakdown: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for ticket in tickets:
        for item in ticket["breakdown"]:
            sums = breakdown[item["rate"]]
            sums[0] += item["excl"]
            sums[1] += item["vat"]
            sums[2] += item["incl"]
    return {
        "sales_total": sum(t["total"] for t in tickets if t["type"] == "sale"),
        "returns_total": sum(t["total"] for t in tickets if t["type"] == "return"),
        "ticket_count": len(tickets),
        "breakdown": dict(breakdown),
    }


def test_day_closures_equal_the_sum_of_their_tickets(
    history: tuple[Path, list[dict[str, Any]]],
) -> None:
    """Each day closure's totals and VAT breakdown are the sums of that day's tickets."""
    _, entries = history
    for closure in records(entries, "day_closure"):
        tickets = [e["record"] for e in entries if e["chain"] == "ticket"
                   and e["record"]["business_date"] == closure["period_from"]]
        expected = _expected_day(tickets)
        actual = {
            "sales_total": closure["sales_total"], "returns_total": closure["returns_total"],
            "ticket_count": closure["ticket_count"],
            "breakdown": {v["rate"]: [v["excl"], v["vat"], v["incl"]]
                          for v in closure["breakdown"]},
        }
        assert actual == expected
        assert closure["period_total"] == expected["sales_total"] + expected["returns_total"]


def test_history_verifies(history: tuple[Path, list[dict[str, Any]]]) -> None:
    """The independent verifier finds nothing wrong in a generated journal."""
    data_dir, entries = history
    report = verify_data_dir(data_dir, workers=1)
    assert list(report.findings) == []
    assert report.ok
    assert report.entry_count == len(entries)


async def test_second_run_appends_after_the_last_day(tmp_path: Path) -> None:
    """Running the generator again keeps the history and continues on the following day."""
    await generate(tmp_path, days=1, sales_per_day=3, start=dt.date(2026, 3, 10))
    first = stored(tmp_path)
    summary = await generate(tmp_path, days=1, sales_per_day=3, start=dt.date(2026, 3, 1))
    both = stored(tmp_path)
    assert both[:len(first)] == first
    added = Counter((e["record"]["type"], e["record"]["business_date"])
                    for e in both[len(first):] if e["chain"] == "ticket")
    assert added[("sale", "2026-03-11")] == 3
    assert {day for _, day in added} == {"2026-03-11"}
    assert "from 2026-03-11 to 2026-03-11" in summary


async def test_same_seed_gives_the_same_history(tmp_path: Path) -> None:
    """Two runs with one seed write the same records at the same times (keys differ)."""
    runs = []
    for name in ("a", "b"):
        await generate(tmp_path / name, days=1, sales_per_day=5, seed=3,
                       start=dt.date(2026, 6, 2))
        runs.append([(e["at_local"], e["record"]) for e in stored(tmp_path / name)
                     if e["record"].get("code") != 260])
    assert runs[0] == runs[1]


def test_cli_writes_demo_data(tmp_path: Path) -> None:
    """``python -m fiscal demo-data`` fills a journal and prints its summary."""
    result = subprocess.run(
        [sys.executable, "-m", "fiscal", "demo-data", "--data-dir", str(tmp_path),
         "--days", "2", "--sales-per-day", "3", "--seed", "5", "--start", "2026-04-06"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "from 2026-04-06 to 2026-04-07" in result.stdout
    sales = records(stored(tmp_path), "sale")
    assert len([s for s in sales if not s["training"]]) == 6
