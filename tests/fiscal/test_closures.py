"""Behaviour of period closures through the journal: day, month and year closures, perpetual
totals, the open-day policy (grace, automatic closing) and writes into closed periods."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from fiscal import jet
from fiscal.chain import Entry
from fiscal.errors import DayNotClosed, InvalidInput, PeriodClosed
from fiscal.journal import Journal
from fiscal.requests import (
    CashMovementRequest,
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
)
from fiscal.settings import ClosurePolicy, JournalSettings


def expected_totals(tickets: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Fold ticket records by hand: per-rate sums, tender sums (cash net of change), totals."""
    rates: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    tenders: dict[str, int] = defaultdict(int)
    sales = returns = 0
    for ticket in tickets:
        for item in ticket["breakdown"]:
            acc = rates[item["rate"]]
            acc[0], acc[1], acc[2] = acc[0] + item["excl"], acc[1] + item["vat"], \
                acc[2] + item["incl"]
        for payment in ticket["payments"]:
            tenders[payment["tender"]] += payment["amount"]
        tenders["cash"] -= ticket["change"]
        if ticket["type"] == "sale":
            sales += ticket["total"]
        else:
            returns += ticket["total"]
    return {
        "breakdown": [{"rate": r, "excl": v[0], "vat": v[1], "incl": v[2]}
                      for r, v in sorted(rates.items(), reverse=True)],
        "tenders": [{"tender": t, "amount": a} for t, a in sorted(tenders.items())],
        "sales_total": sales, "returns_total": returns, "period_total": sales + returns,
    }


def summed(closures: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum child closures by hand: per-rate sums, tenders, totals and counts."""
    rates: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    tenders: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    for closure in closures:
        for item in closure["breakdown"]:
            acc = rates[item["rate"]]
            acc[0], acc[1], acc[2] = acc[0] + item["excl"], acc[1] + item["vat"], \
                acc[2] + item["incl"]
        for tender in closure["tenders"]:
            tenders[tender["tender"]] += tender["amount"]
        for name in ("sales_total", "returns_total", "period_total", "ticket_count",
                     "sale_count", "return_count"):
            totals[name] += closure[name]
    return {"breakdown": [{"rate": r, "excl": v[0], "vat": v[1], "incl": v[2]}
                          for r, v in sorted(rates.items(), reverse=True)],
            "tenders": [{"tender": t, "amount": a} for t, a in sorted(tenders.items())],
            **totals}


def refund_line(seq: int, line_no: int, quantity: int, amount: int) -> ReturnRequest:
    """A return of one line of ticket ``seq``, refunded in cash."""
    return ReturnRequest(operator="bob", original_seq=seq,
                         lines=(ReturnLineRequest(original_line_no=line_no,
                                                  quantity_milli=quantity),),
                         refunds=(PaymentRequest(tender="cash", amount=amount),))


async def a_busy_day(journal: Journal, sale_request: Any) -> list[Entry]:
    """Record a day of mixed sales, change, a return, a training sale and cash movements."""
    tickets = [
        await journal.sell(sale_request(lines=[
            LineRequest(label="Bread", unit_price=130, vat_rate=550, quantity_milli=2000),
            LineRequest(label="Wine", unit_price=1299, vat_rate=2000)],
            payments=[PaymentRequest(tender="card", amount=1000),
                      PaymentRequest(tender="cash", amount=1000)])),
        await journal.sell(sale_request(899, 450, rate=1000, tender="card")),
        await journal.sell(sale_request(lines=[
            LineRequest(label="Book", unit_price=2350, vat_rate=550)],
            payments=[PaymentRequest(tender="cheque", amount=2350)])),
    ]
    tickets.append(await journal.refund(refund_line(tickets[1].seq, 2, 1000, 450)))
    await journal.sell(sale_request(5000, training=True))
    await journal.cash_movement(CashMovementRequest(kind="float", operator="a", amount=10_000))
    await journal.cash_movement(CashMovementRequest(kind="cash_out", operator="a", amount=700))
    return tickets


def closure_of(entries: Iterable[Entry], kind: str) -> list[Mapping[str, Any]]:
    """The records of a closure kind among entries."""
    return [e.record for e in entries if e.record["type"] == kind]


async def test_day_closure_folds_the_day(journal, sale_request):
    """A day closure's totals per rate and tender equal the sum of the day's tickets."""
    tickets = await a_busy_day(journal, sale_request)
    closure, event = await journal.periods.close_day("boss")
    record = closure.record
    expected = expected_totals(t.record for t in tickets)
    assert record["breakdown"] == expected["breakdown"]
    assert record["tenders"] == expected["tenders"] == [
        {"tender": "card", "amount": 1000 + 1349},
        {"tender": "cash", "amount": 1000 - 441 - 450},  # cash given, change, refund
        {"tender": "cheque", "amount": 2350}]
    assert {k: record[k] for k in ("sales_total", "returns_total", "period_total")} == {
        k: expected[k] for k in ("sales_total", "returns_total", "period_total")}
    assert (record["sale_count"], record["return_count"], record["ticket_count"]) == (3, 1, 4)
    assert (record["first_ticket_seq"], record["last_ticket_seq"]) == (1, 4)
    assert record["cash"] == [{"kind": "cash_out", "amount": -700},
                              {"kind": "float", "amount": 10_000}]
    assert (record["period_from"], record["period_to"]) == ("2026-11-20", "2026-11-20")
    assert (record["perpetual_total"], record["perpetual_abs"]) == (
        expected["period_total"], expected["sales_total"] - expected["returns_total"])
    assert (closure.chain, closure.chain_seq, record["automatic"]) == ("closure", 1, False)
    assert (event.record["code"], event.seq) == (jet.PERIOD_CLOSING, closure.seq + 1)
    assert event.record["details"] == {"type": "day_closure", "period_from": "2026-11-20",
                                       "period_to": "2026-11-20"}


async def test_day_closure_signed_data_carries_perpetual_abs(journal, sale_request):
    """The closure's signed data holds breakdown, period total and perpetual absolute total."""
    await journal.sell(sale_request(1000))
    closure, _ = await journal.periods.close_day("boss")
    assert closure.data_to_sign.split(",")[:3] == ["2000:1000", "1000", "1000"]
    assert closure.data_to_sign.split(",")[4:7] == ["20261120", "1", "Y"]


async def test_perpetual_totals_continue_across_days(journal, sale_request, clock):
    """Perpetual totals carry over; the absolute one grows with returns too."""
    sale = await journal.sell(sale_request(1000, 500))
    await journal.refund(refund_line(sale.seq, 2, 1000, 500))
    first, _ = await journal.periods.close_day("boss")
    clock.set_local(2026, 11, 21)
    await journal.refund(refund_line(sale.seq, 1, 400, 400))
    second, _ = await journal.periods.close_day("boss")
    clock.set_local(2026, 11, 22)
    third, _ = await journal.periods.close_day("boss")
    perpetual = [(c.record["perpetual_total"], c.record["perpetual_abs"])
                 for c in (first, second, third)]
    assert perpetual == [(1000, 2000), (600, 2400), (600, 2400)]
    assert (second.chain_seq, second.prev_sig) == (2, first.sig)
    assert third.record["ticket_count"] == 0


async def test_closing_a_day_twice_is_refused(journal, sale_request, snapshot):
    """A closed day cannot be closed again."""
    await journal.sell(sale_request(1000))
    await journal.periods.close_day("boss")
    before = snapshot(journal)
    with pytest.raises(PeriodClosed):
        await journal.periods.close_day("boss")
    with pytest.raises(PeriodClosed):
        await journal.periods.close_day("boss", dt.date(2026, 11, 19))
    assert snapshot(journal) == before


async def test_sale_in_a_closed_day_is_refused(journal, sale_request, snapshot, clock):
    """After a day is closed, a sale dated that day (even by a clock jump back) is refused."""
    await journal.sell(sale_request(1000))
    await journal.periods.close_day("boss")
    before = snapshot(journal)
    with pytest.raises(PeriodClosed) as caught:
        await journal.sell(sale_request(1000))
    assert caught.value.field == "business_date"
    clock.set_local(2026, 11, 21)
    await journal.sell(sale_request(1000))
    clock.set_local(2026, 11, 20, 18)
    middle = snapshot(journal)
    for write in (journal.sell(sale_request(1000)), journal.cash_movement(
            CashMovementRequest(kind="cash_in", operator="a", amount=1))):
        with pytest.raises(PeriodClosed):
            await write
    assert snapshot(journal) == middle != before


async def test_next_day_after_grace_closes_the_previous_day(journal, sale_request, clock):
    """With ``auto_close``, the first sale past the grace closes the previous day first."""
    sold = await journal.sell(sale_request(1000))
    clock.set_local(2026, 11, 21, 6, 30)  # midnight + 6 h grace has passed
    sale = await journal.sell(sale_request(300))
    closure, event = await journal.get(sale.seq - 2), await journal.get(sale.seq - 1)
    assert closure is not None
    assert event is not None
    assert closure.record["type"] == "day_closure"
    assert (closure.record["period_from"], closure.record["automatic"]) == ("2026-11-20", True)
    assert closure.record["operator"] == "system"
    assert closure.record["sales_total"] == sold.record["total"]
    assert event.record["code"] == jet.PERIOD_CLOSING
    assert sale.record["business_date"] == "2026-11-21"


async def test_next_day_within_grace_leaves_the_previous_day_open(journal, sale_request, clock):
    """Inside the grace period the previous day stays open and the sale is the new day's."""
    await journal.sell(sale_request(1000))
    clock.set_local(2026, 11, 21, 5, 59)
    sale = await journal.sell(sale_request(300))
    assert sale.seq == 3  # no closure in between
    assert sale.record["business_date"] == "2026-11-21"
    closures = await journal.periods.close_day("boss")
    assert [c.record.get("period_from") for c in closures] == [
        "2026-11-20", None, "2026-11-21", None]


async def test_open_day_past_grace_refuses_sales_without_auto_close(open_journal, sale_request,
                                                                    clock, snapshot):
    """Without ``auto_close`` a sale past the grace raises ``DayNotClosed`` and writes nothing."""
    journal = await open_journal(JournalSettings(closure=ClosurePolicy(auto_close=False)))
    await journal.sell(sale_request(1000))
    clock.set_local(2026, 11, 21, 9)
    before = snapshot(journal)
    with pytest.raises(DayNotClosed) as caught:
        await journal.sell(sale_request(300))
    assert caught.value.code == "day_not_closed"
    assert snapshot(journal) == before
    await journal.periods.close_day("boss", dt.date(2026, 11, 20))
    assert (await journal.sell(sale_request(300))).record["business_date"] == "2026-11-21"


async def test_day_start_hour_moves_night_sales_to_the_previous_day(open_journal, sale_request,
                                                                    clock):
    """With days starting at 04:00, a 02:00 sale belongs to the previous business date."""
    journal = await open_journal(JournalSettings(closure=ClosurePolicy(day_starts_at_hour=4)))
    clock.set_local(2026, 11, 21, 2)
    night = await journal.sell(sale_request(1000))
    clock.set_local(2026, 11, 21, 4)
    morning = await journal.sell(sale_request(1000))
    assert night.record["business_date"] == "2026-11-20"
    assert morning.record["business_date"] == "2026-11-21"
    closure, _ = await journal.periods.close_day("boss", dt.date(2026, 11, 20))
    assert closure.record["first_ticket_seq"] == closure.record["last_ticket_seq"] == 1


async def test_close_month_cascades_over_open_days(journal, sale_request, clock):
    """A month closure closes the open days first and sums their day closures."""
    await a_busy_day(journal, sale_request)
    clock.set_local(2026, 11, 21, 5)  # inside the grace: the 20th is still open
    await journal.sell(sale_request(777, rate=210))
    entries = await journal.periods.close_month("boss")
    days = closure_of(entries, "day_closure")
    (month,) = closure_of(entries, "month_closure")
    assert [d["period_from"] for d in days] == ["2026-11-20", "2026-11-21"]
    assert (month["period_from"], month["period_to"]) == ("2026-11-01", "2026-11-30")
    assert {k: month[k] for k in summed(days)} == summed(days)
    assert (month["perpetual_total"], month["perpetual_abs"]) == (
        days[-1]["perpetual_total"], days[-1]["perpetual_abs"])
    assert month["folded_count"] == 2
    assert [e.chain for e in entries] == ["closure", "event", "closure", "event", "period",
                                          "event"]


async def test_month_closed_mid_month_refuses_later_sales_of_that_month(journal, sale_request,
                                                                        clock, snapshot):
    """Once November is closed on the 20th, a sale on the 25th is refused; December is open."""
    await journal.sell(sale_request(1000))
    await journal.periods.close_month("boss")
    clock.set_local(2026, 11, 25)
    before = snapshot(journal)
    with pytest.raises(PeriodClosed):
        await journal.sell(sale_request(1000))
    with pytest.raises(PeriodClosed):
        await journal.periods.close_month("boss")
    assert snapshot(journal) == before
    clock.set_local(2026, 12, 1)
    assert (await journal.sell(sale_request(1000))).record["business_date"] == "2026-12-01"


async def test_close_month_includes_earlier_unclosed_months(journal, sale_request, clock):
    """Closing December also closes November, whose day closures no month closure folded."""
    clock.set_local(2026, 11, 30)
    await journal.sell(sale_request(1000))
    clock.set_local(2026, 12, 2)
    await journal.sell(sale_request(500))  # auto-closes the 30th
    entries = await journal.periods.close_month("boss")
    months = closure_of(entries, "month_closure")
    assert [(m["period_from"], m["sales_total"]) for m in months] == [
        ("2026-11-01", 1000), ("2026-12-01", 500)]
    assert [m["perpetual_total"] for m in months] == [1000, 1500]


async def test_close_year_cascades_over_days_and_months(journal, sale_request, clock):
    """A year closure closes the open day and month, and sums the months of the fiscal year."""
    clock.set_local(2026, 10, 10)
    await journal.sell(sale_request(1000, 250, rate=550))
    clock.set_local(2026, 11, 20)
    await a_busy_day(journal, sale_request)
    entries = await journal.periods.close_year("boss")
    kinds = [e.record["type"] for e in entries if e.chain != "event"]
    assert kinds == ["day_closure", "month_closure", "month_closure", "year_closure"]
    months = closure_of(entries, "month_closure")
    (year,) = closure_of(entries, "year_closure")
    assert [m["period_from"] for m in months] == ["2026-10-01", "2026-11-01"]
    assert (year["period_from"], year["period_to"]) == ("2026-01-01", "2026-12-31")
    assert {k: year[k] for k in summed(months)} == summed(months)
    days = [e.record async for e in journal.entries() if e.record["type"] == "day_closure"]
    october = [d for d in days if d["period_from"].startswith("2026-10")]
    assert {k: months[0][k] for k in summed(october)} == summed(october)
    assert year["perpetual_abs"] == days[-1]["perpetual_abs"]
    assert [e.chain for e in entries].count("event") == 4
    with pytest.raises(PeriodClosed):
        await journal.sell(sale_request(1000))


async def test_closing_a_future_date_is_refused(journal, snapshot):
    """Days, months and years in the future cannot be closed."""
    before = snapshot(journal)
    for close in (journal.periods.close_day, journal.periods.close_month,
                  journal.periods.close_year):
        with pytest.raises(InvalidInput) as caught:
            await close("boss", dt.date(2026, 12, 25))
        assert (caught.value.code, caught.value.field) == ("future_date", "day")
    assert snapshot(journal) == before


async def test_closure_idempotency_key_replays(journal, sale_request):
    """Retrying a day closure with the same key returns the stored entry, closes nothing."""
    await journal.sell(sale_request(1000))
    entries = await journal.periods.close_day("boss", idempotency_key="z1")
    seq = journal.state.seq
    again = await journal.periods.close_day("boss", idempotency_key="z1")
    assert again == entries[-1:]
    assert journal.state.seq == seq
