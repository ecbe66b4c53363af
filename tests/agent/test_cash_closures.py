"""Closures on request: day, month, year; refused over an open session; listed and read back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
from boxkit import add_user, frontend, running_box

from agent.composition import Box
from fiscal.chain import Entry
from fiscal.requests import LineRequest, PaymentRequest, SaleRequest
from fiscal.testing import FakeClock

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
BREAD = LineRequest(label="Baguette", sku="BAG", unit_price=130, vat_rate=550)
WINE = LineRequest(label="Vin rouge", sku="VIN", unit_price=1200, vat_rate=2000)


async def sell(box: Box, line: LineRequest, tender: str) -> Entry:
    return await box.journal.sell(SaleRequest(
        operator="admin", lines=(line,),
        payments=(PaymentRequest(tender=tender, amount=line.unit_price),)))


async def close_session(client: httpx.AsyncClient, cash: int) -> dict[str, object]:
    answer = await client.post("/v1/cash-sessions/current/close", json={"counted": {"cash": cash}})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def test_a_month_closure_folds_the_days(tmp_path: Path) -> None:
    """Two days closed by their sessions, then the month: its totals are the days' sums."""
    clock = FakeClock(START)
    async with running_box(tmp_path / "data", clock) as box, frontend(box) as client:
        await client.post("/v1/cash-sessions", json={"float": 1000})
        await sell(box, BREAD, "cash")
        await sell(box, WINE, "card")
        await close_session(client, 1130)
        clock.advance(days=1)
        await client.post("/v1/cash-sessions", json={"float": 1000})
        await sell(box, WINE, "cash")
        await close_session(client, 2200)
        clock.set(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC))
        month = await client.post("/v1/closures/month", json={"date": "2026-11-20"})
        listed = await client.get("/v1/closures", params={"kind": "month"})
        days = await client.get("/v1/closures", params={"kind": "day", "from": "2026-11-21"})
    assert month.status_code == 200, month.text
    [closure] = month.json()["closures"]
    assert (closure["kind"], closure["period_from"], closure["period_to"]) == (
        "month_closure", "2026-11-01", "2026-11-30")
    assert {v["rate"]: v["incl"] for v in closure["breakdown"]} == {2000: 2400, 550: 130}
    assert (closure["sales_total"], closure["sales_count"]) == (2530, 3)
    assert {t["tender"]: t["amount"] for t in closure["tenders"]} == {"cash": 1330, "card": 1200}
    assert {c["kind"]: c["amount"] for c in closure["cash"]} == {"float": 2000}
    assert listed.json()["closures"] == [closure]
    assert [c["period_from"] for c in days.json()["closures"]] == ["2026-11-21"]


async def test_a_closure_is_read_back_as_signed(tmp_path: Path) -> None:
    """``GET /v1/closures/{seq}`` is the stored entry; another entry's seq is 404."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        sale = await sell(box, BREAD, "cash")
        made = (await client.post("/v1/closures/day")).json()["closures"]
        stored = await client.get(f"/v1/closures/{made[0]['seq']}")
        not_a_closure = await client.get(f"/v1/closures/{sale.seq}")
        missing = await client.get("/v1/closures/999999")
        entry = await box.journal.get(made[0]["seq"])
    assert entry is not None
    assert stored.status_code == 200
    assert stored.json() == entry.to_json()
    assert (not_a_closure.status_code, not_a_closure.json()["code"]) == (404,
                                                                         "closure_not_found")
    assert missing.status_code == 404


async def test_closing_the_sessions_day_is_refused(tmp_path: Path) -> None:
    """While a session is open its day (and its month) can only be closed by closing it."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await client.post("/v1/cash-sessions", json={"float": 1000})
        day = await client.post("/v1/closures/day")
        month = await client.post("/v1/closures/month", json={"date": "2026-11-20"})
        year = await client.post("/v1/closures/year")
    for answer in (day, month, year):
        assert (answer.status_code, answer.json()["code"]) == (409, "cash_session_open")


async def test_closure_dates_are_checked(tmp_path: Path) -> None:
    """Future dates, dates before the journal and closed days are refused; unknown kinds 422."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        future = await client.post("/v1/closures/day", json={"date": "2026-11-21"})
        far = await client.post("/v1/closures/month", json={"date": "9999-12-31"})
        before = await client.post("/v1/closures/year", json={"date": "0001-01-01"})
        first = await client.post("/v1/closures/day")
        twice = await client.post("/v1/closures/day")
        kind = await client.post("/v1/closures/week")
    assert (future.status_code, future.json()["code"]) == (422, "future_date")
    assert (far.status_code, far.json()["code"]) == (422, "future_date")
    assert (before.status_code, before.json()["code"]) == (422, "date_before_journal")
    assert first.status_code == 200
    assert twice.status_code == 409
    assert kind.status_code == 422


async def test_a_cashier_cannot_close(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as admin:
        await add_user(admin, "carla", "cashier", "1111")
        async with frontend(box, "carla", "1111", name="caisse 2") as carla:
            answer = await carla.post("/v1/closures/day")
            listed = await carla.get("/v1/closures")
    assert (answer.status_code, answer.json()["code"]) == (403, "role_required")
    assert listed.json() == {"closures": []}


async def test_closure_events_on_the_bus(tmp_path: Path) -> None:
    """A year closure publishes each closure it wrote (day, month, year) as ``closure``."""
    async with (running_box(tmp_path / "data") as box, frontend(box) as client,
                box.services.bus.subscribe(frozenset({"closure"})) as events):
        await sell(box, BREAD, "cash")
        answer = await client.post("/v1/closures/year")
        iterator = events()
        seen = [await anext(iterator) for _ in range(3)]
    assert [c["kind"] for c in answer.json()["closures"]] == [
        "day_closure", "month_closure", "year_closure"]
    assert [(e.data["kind"], e.data["seq"]) for e in seen] == [
        (c["kind"], c["seq"]) for c in answer.json()["closures"]]
