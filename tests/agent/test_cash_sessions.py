"""Cash sessions over HTTP: float, movements, X, close with the count → Z, the day then closed."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from boxkit import add_user, frontend, running_box

from agent.composition import Box
from agent.events import BoxEvent
from agent.http.app import fiscal_status
from fiscal.chain import Entry
from fiscal.errors import PeriodClosed
from fiscal.requests import (
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
    SaleRequest,
)
from fiscal.testing import FakeClock

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)  # 10:00 in Paris
BREAD = LineRequest(label="Baguette", sku="BAG", unit_price=130, vat_rate=550)
SANDWICH = LineRequest(label="Sandwich", sku="SAND", unit_price=550, vat_rate=1000)
WINE = LineRequest(label="Vin rouge", sku="VIN", unit_price=1200, vat_rate=2000)


def pay(*pairs: tuple[str, int]) -> tuple[PaymentRequest, ...]:
    return tuple(PaymentRequest(tender=tender, amount=amount) for tender, amount in pairs)


async def sell(box: Box, lines: tuple[LineRequest, ...], payments: tuple[PaymentRequest, ...],
               *, operator: str = "admin", training: bool = False) -> Entry:
    request = SaleRequest(operator=operator, lines=lines, payments=payments, training=training)
    return await box.journal.sell(request)


async def the_day(box: Box) -> list[Entry]:
    """Three sales, a return and a training sale: 3890 sold, 1200 returned."""
    two_breads = BREAD.model_copy(update={"quantity_milli": 2000})
    first = await sell(box, (two_breads, SANDWICH, WINE), pay(("cash", 5000)))
    second = await sell(box, (WINE,), pay(("card", 1200)))
    third = await sell(box, (SANDWICH, BREAD), pay(("meal_voucher", 500), ("cash", 200)))
    await sell(box, (SANDWICH,), pay(("cash", 550)), training=True)
    refund = await box.journal.refund(ReturnRequest(
        operator="admin", original_seq=first.seq,
        lines=(ReturnLineRequest(original_line_no=3, quantity_milli=1000),),
        refunds=pay(("cash", 1200))))
    return [first, second, third, refund]


def per_rate(records: list[dict[str, Any]]) -> dict[int, tuple[int, int, int]]:
    """The independent sum of the tickets' breakdowns per rate."""
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for record in records:
        for item in record["breakdown"]:
            acc = sums[item["rate"]]
            acc[0] += item["excl"]
            acc[1] += item["vat"]
            acc[2] += item["incl"]
    return {rate: (v[0], v[1], v[2]) for rate, v in sums.items()}


def report_rates(report: dict[str, Any]) -> dict[int, tuple[int, int, int]]:
    return {v["rate"]: (v["excl"], v["vat"], v["incl"]) for v in report["breakdown"]}


def per_tender(records: list[dict[str, Any]]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for record in records:
        for payment in record["payments"]:
            sums[payment["tender"]] += payment["amount"]
        sums["cash"] -= record.get("change", 0)
    return dict(sums)


def tenders(report: dict[str, Any]) -> dict[str, int]:
    return {t["tender"]: t["amount"] for t in report["tenders"]}


async def move(client: httpx.AsyncClient, kind: str, amount: int,
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post("/v1/cash-sessions/current/movements",
                             json={"kind": kind, "amount": amount, "reason": "test"},
                             headers=headers or {})


async def drain(events: Any, count: int) -> list[BoxEvent]:
    iterator = events()
    return [await asyncio.wait_for(anext(iterator), 2) for _ in range(count)]


async def test_a_day_from_float_to_z(tmp_path: Path) -> None:
    """Float, sales, cash in/out/drop: X and Z equal the tickets; the count's variance is exact."""
    async with running_box(tmp_path / "data", FakeClock(START)) as box, frontend(box) as client:
        opened = await client.post("/v1/cash-sessions", json={"float": 15000})
        assert opened.status_code == 201, opened.text
        assert opened.json()["business_date"] == "2026-11-20"
        tickets = [e.record for e in await the_day(box)]
        for kind, amount in (("cash_in", 2000), ("cash_out", 1000), ("safe_drop", 5000)):
            assert (await move(client, kind, amount)).status_code == 201
        current = (await client.get("/v1/cash-sessions/current")).json()
        x = (await client.get("/v1/cash-sessions/current/x")).json()
        closed = await client.post("/v1/cash-sessions/current/close", json={
            "counted": {"cash": 11840, "card": 1200, "meal_voucher": 500}})
    expected_cash = 15000 + (2010 + 180 - 1200) + 2000 - 1000 - 5000
    assert (current["state"], current["expected_cash"]) == ("open", expected_cash)
    assert current["session"]["float"] == 15000
    assert report_rates(x) == per_rate(tickets)
    assert {r: v[2] for r, v in report_rates(x).items()} == {550: 390, 1000: 1100, 2000: 1200}
    assert tenders(x) == per_tender(tickets) == {"cash": 990, "card": 1200, "meal_voucher": 500}
    assert (x["sales_total"], x["sales_count"], x["returns_total"], x["returns_count"]) == (
        3890, 3, -1200, 1)
    assert x["ticket_count"] == 4
    assert x["expected_cash"] == expected_cash
    assert {c["kind"]: c["amount"] for c in x["cash"]} == {
        "float": 15000, "cash_in": 2000, "cash_out": -1000, "safe_drop": -5000}
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert {c["tender"]: (c["expected"], c["counted"], c["variance"]) for c in body["counts"]} == {
        "cash": (expected_cash, 11840, 11840 - expected_cash), "card": (1200, 1200, 0),
        "meal_voucher": (500, 500, 0)}
    z = body["z"]
    assert (z["kind"], z["period_from"], z["period_to"]) == ("day_closure", "2026-11-20",
                                                             "2026-11-20")
    assert report_rates(z) == per_rate(tickets)
    assert tenders(z) == per_tender(tickets)
    assert (z["sales_total"], z["returns_total"], z["total"]) == (3890, -1200, 2690)
    assert body["session"]["state"] == "closed"
    assert body["session"]["closure_seq"] == z["seq"]


async def test_the_count_is_journaled_and_the_day_is_closed(tmp_path: Path) -> None:
    """The count is JET 1140; after the Z a sale that day is refused (409), and a new session too;
    the next business day opens a new one."""
    clock = FakeClock(START)
    async with running_box(tmp_path / "data", clock) as box, frontend(box) as client:
        await client.post("/v1/cash-sessions", json={"float": 10000})
        await sell(box, (BREAD,), pay(("cash", 200)))
        closed = (await client.post("/v1/cash-sessions/current/close",
                                    json={"counted": {"cash": 10130}})).json()
        count = await box.journal.get(closed["count_seq"])
        with pytest.raises(PeriodClosed) as refused:
            await sell(box, (BREAD,), pay(("cash", 130)))
        again = await client.post("/v1/cash-sessions", json={"float": 10000})
        clock.advance(days=1)
        tomorrow = await client.post("/v1/cash-sessions", json={"float": 10000})
    assert count is not None
    assert (count.record["code"], count.record["description"]) == (1140, "Cash count")
    assert count.record["details"]["tenders"] == [
        {"tender": "cash", "expected": 10130, "counted": 10130, "variance": 0}]
    assert fiscal_status(refused.value) == 409
    assert refused.value.message == ("business date 2026-11-20 is in a closed period (closed "
                                     "through 2026-11-20)")
    assert (again.status_code, again.json()["code"]) == (409, "day_closed")
    assert tomorrow.status_code == 201, tomorrow.text
    assert tomorrow.json()["business_date"] == "2026-11-21"


async def test_cash_out_needs_a_managers_approval(tmp_path: Path) -> None:
    """A cashier may put cash in; cash out needs a manager's PIN (journaled as JET 1020); the
    close needs a manager."""
    async with running_box(tmp_path / "data") as box, frontend(box) as admin:
        await add_user(admin, "carla", "cashier", "1111")
        await add_user(admin, "mona", "manager", "2222")
        async with frontend(box, "carla", "1111", name="caisse 2") as carla:
            assert (await carla.post("/v1/cash-sessions", json={"float": 5000})).status_code == 201
            cash_in = await move(carla, "cash_in", 700)
            refused = await move(carla, "cash_out", 300)
            wrong = await move(carla, "safe_drop", 300, {"X-Manager-Approval": "mona:9999"})
            approved = await move(carla, "cash_out", 300, {"X-Manager-Approval": "mona:2222"})
            close = await carla.post("/v1/cash-sessions/current/close",
                                     json={"counted": {"cash": 5400}})
        override = await box.journal.get(approved.json()["seq"] + 1)
    assert (cash_in.status_code, cash_in.json()["expected_cash"]) == (201, 5700)
    assert (refused.status_code, refused.json()["code"]) == (403, "approval_required")
    assert (wrong.status_code, wrong.json()["code"]) == (403, "pin_wrong")
    assert approved.status_code == 201, approved.text
    assert (approved.json()["approved_by"], approved.json()["expected_cash"]) == ("mona", 5400)
    assert override is not None
    assert override.record["code"] == 1020
    assert override.record["details"] == {
        "approved_by": "mona", "requested_by": "carla", "action": "cash_out",
        "movement_seq": approved.json()["seq"], "kind": "cash_out", "amount": 300}
    assert (close.status_code, close.json()["code"]) == (403, "role_required")


async def test_without_a_session(tmp_path: Path) -> None:
    """No session: current says none; movements, X and close answer 409 no_cash_session."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        current = await client.get("/v1/cash-sessions/current")
        answers = [await move(client, "cash_in", 100),
                   await client.get("/v1/cash-sessions/current/x"),
                   await client.post("/v1/cash-sessions/current/close",
                                     json={"counted": {"cash": 0}})]
    assert current.status_code == 200
    assert current.json() == {"state": "none", "business_date": "2026-11-20",
                              "expected_cash": None, "day_closure_due": False, "session": None}
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(409, "no_cash_session")] * 3


async def test_one_session_at_a_time_and_retries(tmp_path: Path) -> None:
    """A second open is refused; a retried open (same key) is the same session, even when
    only the journal remembers the key."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        headers = {"Idempotency-Key": "open-1"}
        first = await client.post("/v1/cash-sessions", json={"float": 100}, headers=headers)
        retry = await client.post("/v1/cash-sessions", json={"float": 100}, headers=headers)
        second = await client.post("/v1/cash-sessions", json={"float": 100})
        after_crash = await box.services.cash.open_session("admin", 100, key="open-1")
        floats = await box.journal.store.of_type_on("cash_movement", "2026-11-20", "2026-11-20")
    assert first.status_code == retry.status_code == 201
    assert first.json() == retry.json()
    assert after_crash.id == first.json()["id"]  # found by the float's key in the journal
    assert (second.status_code, second.json()["code"]) == (409, "cash_session_open")
    assert len(floats) == 1


async def test_a_session_left_open_overnight(tmp_path: Path) -> None:
    """The next morning a closure is due; closing the session closes its own day, not today."""
    clock = FakeClock(START)
    async with running_box(tmp_path / "data", clock) as box, frontend(box) as client:
        await client.post("/v1/cash-sessions", json={"float": 0})
        await sell(box, (BREAD,), pay(("card", 130)))
        clock.advance(days=1)
        due = (await client.get("/v1/cash-sessions/current")).json()
        closed = (await client.post("/v1/cash-sessions/current/close",
                                    json={"counted": {"cash": 0, "card": 130}})).json()
        reopened = await client.post("/v1/cash-sessions", json={"float": 0})
    assert (due["day_closure_due"], due["business_date"]) == (True, "2026-11-20")
    assert closed["z"]["period_from"] == "2026-11-20"
    assert reopened.json()["business_date"] == "2026-11-21"


async def test_fiscal_writes_wait_for_an_acknowledged_alarm(tmp_path: Path) -> None:
    """While an integrity alarm is raised, opening a session is refused (409 integrity_alarm)."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        box.health.raise_alarm("chain_broken", "test alarm", "ticket", blocking=True)
        refused = await client.post("/v1/cash-sessions", json={"float": 100})
    assert (refused.status_code, refused.json()["code"]) == (409, "integrity_alarm")


async def test_cash_events_on_the_bus(tmp_path: Path) -> None:
    """Opening, a movement and the close are published as ``cash``; the Z as ``closure``."""
    async with (running_box(tmp_path / "data") as box, frontend(box) as client,
                box.services.bus.subscribe(frozenset({"cash", "closure"})) as events):
        await client.post("/v1/cash-sessions", json={"float": 100})
        await move(client, "cash_in", 50)
        await client.post("/v1/cash-sessions/current/close", json={"counted": {"cash": 150}})
        seen = await drain(events, 4)
    assert [(e.kind, e.data.get("action")) for e in seen] == [
        ("cash", "session_opened"), ("cash", "movement"), ("cash", "session_closed"),
        ("closure", None)]
    assert (seen[3].data["kind"], seen[3].data["period_from"]) == ("day_closure", "2026-11-20")


@pytest.mark.parametrize("body", [
    {"float": -1}, {"float": 10**12}, {"float": 1.5}, {"float": 100, "extra": 1}, {}])
async def test_bad_floats_are_refused(tmp_path: Path, body: dict[str, Any]) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        answer = await client.post("/v1/cash-sessions", json=body)
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_input")


async def test_unknown_tender_in_the_count(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await client.post("/v1/cash-sessions", json={"float": 100})
        answer = await client.post("/v1/cash-sessions/current/close",
                                   json={"counted": {"bitcoin": 1}})
    assert (answer.status_code, answer.json()["code"]) == (422, "unknown_tender")
    assert answer.json()["field"] == "counted.bitcoin"


async def test_a_close_retried_after_a_crash_answers_the_same(tmp_path: Path) -> None:
    """A close retried with its key (the stored HTTP answer lost) answers the first close."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await client.post("/v1/cash-sessions", json={"float": 300})
        desk = box.services.cash
        first = await desk.close_session("admin", {"cash": 250}, key="close-1")
        retry = await desk.close_session("admin", {"cash": 250}, key="close-1")
        other = await client.post("/v1/cash-sessions/current/close",
                                  json={"counted": {"cash": 250}})
    assert retry == first
    assert first.counts[0].variance == -50
    assert (other.status_code, other.json()["code"]) == (409, "no_cash_session")
