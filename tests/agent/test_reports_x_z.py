"""X of the business day and Z reports by seq and by date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from boxkit import add_user, frontend, running_box

from agent.composition import Box
from fiscal.chain import Entry
from fiscal.requests import LineRequest, PaymentRequest, SaleRequest
from fiscal.testing import FakeClock

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
CHEESE = LineRequest(label="Comté", sku="COMTE", quantity_milli=250, unit_price=2490,
                     vat_rate=550)
BEER = LineRequest(label="Bière", sku="BIERE", quantity_milli=3000, unit_price=199,
                   vat_rate=2000)


async def sell(box: Box, lines: tuple[LineRequest, ...], tender: str, amount: int,
               training: bool = False) -> Entry:
    return await box.journal.sell(SaleRequest(
        operator="admin", lines=lines, training=training,
        payments=(PaymentRequest(tender=tender, amount=amount),)))


async def test_the_days_x_counts_every_ticket_of_the_day(tmp_path: Path) -> None:
    """The day's X holds sales made before the session opened too, and never training."""
    async with running_box(tmp_path / "data", FakeClock(START)) as box, frontend(box) as client:
        early = await sell(box, (CHEESE,), "card", 623)
        await client.post("/v1/cash-sessions", json={"float": 5000})
        late = await sell(box, (CHEESE, BEER), "cash", 2000)
        await sell(box, (BEER,), "cash", 597, training=True)
        day = (await client.get("/v1/reports/x")).json()
        session = (await client.get("/v1/cash-sessions/current/x")).json()
    assert early.record["total"] == 623
    assert late.record["total"] == 623 + 597
    assert (day["sales_count"], day["sales_total"]) == (2, 623 + 1220)
    assert (session["sales_count"], session["sales_total"]) == (1, 1220)
    assert {v["rate"]: v["incl"] for v in day["breakdown"]} == {550: 1246, 2000: 597}
    assert {t["tender"]: t["amount"] for t in day["tenders"]} == {"card": 623, "cash": 1220}
    assert day["expected_cash"] == session["expected_cash"] == 5000 + 1220
    assert day["from_seq"] is None
    assert session["from_seq"] > early.seq
    assert day["business_date"] == "2026-11-20"


async def test_z_by_seq_and_by_date(tmp_path: Path) -> None:
    """The Z of the session's close is found by its seq and by its date; others are 404."""
    async with running_box(tmp_path / "data", FakeClock(START)) as box, frontend(box) as client:
        await client.post("/v1/cash-sessions", json={"float": 0})
        sale = await sell(box, (CHEESE,), "cash", 623)
        closed = (await client.post("/v1/cash-sessions/current/close",
                                    json={"counted": {"cash": 623}})).json()
        by_seq = await client.get(f"/v1/reports/z/{closed['z']['seq']}")
        by_date = await client.get("/v1/reports/z", params={"date": "2026-11-20"})
        not_a_z = await client.get(f"/v1/reports/z/{sale.seq}")
        no_day = await client.get("/v1/reports/z", params={"date": "2026-11-19"})
        bad = await client.get("/v1/reports/z", params={"date": "yesterday"})
        huge = await client.get(f"/v1/reports/z/{2**70}")
    assert by_seq.status_code == by_date.status_code == 200
    assert by_seq.json() == by_date.json() == closed["z"]
    assert by_seq.json()["expected_cash"] == 623
    assert len(by_seq.json()["signature_extract"]) == 4
    assert (not_a_z.status_code, not_a_z.json()["code"]) == (404, "z_report_not_found")
    assert (no_day.status_code, no_day.json()["code"]) == (404, "z_report_not_found")
    assert bad.status_code == huge.status_code == 422


async def test_reports_need_a_signed_in_cashier(tmp_path: Path) -> None:
    """Without a signed-in cashier X is refused; a cashier reads X but not the statistics."""
    async with running_box(tmp_path / "data") as box, frontend(box) as admin:
        await add_user(admin, "carla", "cashier", "1111")
        async with frontend(box, None, name="caisse 2") as nobody:
            anonymous = await nobody.get("/v1/reports/x")
        async with frontend(box, "carla", "1111", name="caisse 3") as carla:
            x = await carla.get("/v1/reports/x")
            stats = await carla.get("/v1/reports/stats",
                                    params={"from": "2026-11-01", "to": "2026-11-20"})
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_signed_in")
    assert x.status_code == 200
    assert (stats.status_code, stats.json()["code"]) == (403, "role_required")
