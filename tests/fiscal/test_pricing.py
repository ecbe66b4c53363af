"""Pricing: French VAT rates in both price modes, discounts, per-rate rounding and payments."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fiscal.canonical import canonical_json
from fiscal.documents import build_sale
from fiscal.errors import InvalidInput
from fiscal.money import FRENCH_VAT_RATES
from fiscal.pricing import price_ticket, settle
from fiscal.requests import Discount, LineRequest, PaymentRequest, SaleRequest
from fiscal.settings import JournalSettings

INCL = JournalSettings()
EXCL = JournalSettings(prices_include_vat=False)
DAY = dt.date(2026, 3, 31)


def line(price: int, rate: int = 2000, quantity: int = 1000,
         discount: Discount | None = None) -> LineRequest:
    return LineRequest(label="item", unit_price=price, vat_rate=rate, quantity_milli=quantity,
                       discount=discount)


def pay(*tenders: tuple[str, int]) -> tuple[PaymentRequest, ...]:
    return tuple(PaymentRequest(tender=tender, amount=amount) for tender, amount in tenders)


def error_code(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str | None]:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    return caught.value.code, caught.value.field


@pytest.mark.parametrize(
    ("rate", "excl", "vat"),
    [(2000, 833, 167), (1000, 909, 91), (550, 948, 52), (210, 979, 21), (0, 1000, 0)],
)
def test_french_rates_prices_including_vat(rate: int, excl: int, vat: int) -> None:
    """With prices incl. VAT, 10.00 at each French rate splits into the right base and VAT."""
    priced = price_ticket([line(1000, rate)], None, INCL)
    (total,) = priced.breakdown
    assert (total.rate, total.excl, total.vat, total.incl) == (rate, excl, vat, 1000)
    assert (priced.total_excl, priced.total_vat, priced.total) == (excl, vat, 1000)


@pytest.mark.parametrize(
    ("rate", "vat"), [(2000, 200), (1000, 100), (550, 55), (210, 21), (0, 0)],
)
def test_french_rates_prices_excluding_vat(rate: int, vat: int) -> None:
    """With prices excl. VAT, 10.00 at each French rate gets the right VAT added."""
    priced = price_ticket([line(1000, rate)], None, EXCL)
    (total,) = priced.breakdown
    assert (total.rate, total.excl, total.vat, total.incl) == (rate, 1000, vat, 1000 + vat)
    assert priced.total == 1000 + vat


def test_breakdown_is_one_item_per_rate_highest_first() -> None:
    """Lines of five rates give five breakdown items, highest rate first, including 0 %."""
    lines = [line(100, rate) for rate in (0, 550, 2000, 210, 1000, 550)]
    priced = price_ticket(lines, None, INCL)
    assert [v.rate for v in priced.breakdown] == [2000, 1000, 550, 210, 0]
    assert next(v for v in priced.breakdown if v.rate == 550).incl == 200
    assert next(v for v in priced.breakdown if v.rate == 0).vat == 0


def test_vat_is_rounded_once_per_rate_including_vat() -> None:
    """Three 0.03 lines at 20 % incl.: per-line rounding would give 3 cents of VAT, we give 2."""
    priced = price_ticket([line(3), line(3), line(3)], None, INCL)
    (total,) = priced.breakdown
    assert (total.incl, total.vat, total.excl) == (9, 2, 7)


def test_vat_is_rounded_once_per_rate_excluding_vat() -> None:
    """Three 0.05 lines at 10 % excl.: per-line rounding would give 3 cents of VAT, we give 2."""
    priced = price_ticket([line(5, 1000)] * 3, None, EXCL)
    (total,) = priced.breakdown
    assert (total.excl, total.vat, total.incl) == (15, 2, 17)
    assert priced.total == 17


def test_line_discount_amount_and_percent() -> None:
    """An amount discount and a percentage discount (rounded once) reduce each line's net."""
    priced = price_ticket([line(1000, discount=Discount(kind="amount", value=150)),
                           line(1299, discount=Discount(kind="percent", value=1000)),
                           line(125, discount=Discount(kind="percent", value=1000))], None, INCL)
    assert [(ln.gross, ln.line_discount, ln.net) for ln in priced.lines] == [
        (1000, 150, 850), (1299, 130, 1169), (125, 13, 112)]
    assert priced.total == 850 + 1169 + 112


def test_full_discount_is_allowed() -> None:
    """A discount equal to the line amount (100 %) leaves a zero line."""
    priced = price_ticket([line(999, discount=Discount(kind="percent", value=10_000)),
                           line(500)], None, INCL)
    assert priced.lines[0].net == 0
    assert priced.total == 500


def test_ticket_discount_is_spread_exactly_and_proportionally() -> None:
    """A ticket discount is split over the lines by net amount; the shares sum to it exactly."""
    priced = price_ticket([line(1000, 2000), line(2000, 550), line(3000, 0)],
                          Discount(kind="amount", value=100), INCL)
    assert [ln.ticket_discount for ln in priced.lines] == [17, 33, 50]
    assert [ln.net for ln in priced.lines] == [983, 1967, 2950]
    assert priced.ticket_discount == 100
    assert priced.total == 5900


def test_ticket_percent_discount_applies_after_line_discounts() -> None:
    """A percentage ticket discount is taken on the sum of the line-discounted amounts."""
    priced = price_ticket([line(1000, discount=Discount(kind="amount", value=200))],
                          Discount(kind="percent", value=1000), INCL)
    assert priced.ticket_discount == 80
    assert priced.total == 720


@pytest.mark.parametrize(
    ("lines", "discount", "field"),
    [
        ([line(1000, discount=Discount(kind="amount", value=1001))], None,
         "lines.0.discount.value"),
        ([line(600), line(400)], Discount(kind="amount", value=1001), "discount.value"),
    ],
)
def test_discount_larger_than_amount_is_refused(lines: list[LineRequest],
                                                discount: Discount | None, field: str) -> None:
    """A line or ticket discount above the amount it applies to is refused."""
    assert error_code(price_ticket, lines, discount, INCL) == ("discount_too_large", field)


@pytest.mark.parametrize(
    ("discount", "code"),
    [(Discount(kind="percent", value=10_001), "bad_percentage"),
     (Discount(kind="percent", value=-1), "bad_percentage"),
     (Discount(kind="amount", value=-5), "amount_negative"),
     (Discount(kind="amount", value=10, reason="bad\nreason"), "control_character")],
)
def test_bad_discounts_are_refused(discount: Discount, code: str) -> None:
    """Out-of-range percentages, negative amounts and control characters in reasons fail."""
    assert error_code(price_ticket, [line(1000, discount=discount)], None, INCL)[0] == code


@pytest.mark.parametrize(
    ("request_line", "code"),
    [(line(100, rate=1900), "unknown_vat_rate"), (line(100, quantity=0), "quantity_not_positive"),
     (line(-100), "amount_negative"), (line(10**11 + 1), "amount_too_large"),
     (line(10**11, quantity=2000), "amount_too_large"),
     (LineRequest(label="a\tb", unit_price=1, vat_rate=2000), "control_character")],
)
def test_bad_lines_are_refused(request_line: LineRequest, code: str) -> None:
    """Unknown rates, non-positive quantities, bad prices and control characters fail."""
    assert error_code(price_ticket, [request_line], None, INCL)[0] == code


def test_multi_tender_with_cash_change() -> None:
    """Card plus cash may exceed the total by the change, which is given in cash."""
    payments, change = settle(3000, pay(("card", 1000), ("cash", 2500)), INCL, refund=False)
    assert [(p.tender, p.amount) for p in payments] == [("card", 1000), ("cash", 2500)]
    assert change == 500


def test_exact_multi_tender_has_no_change() -> None:
    """Three tenders covering the total exactly give no change."""
    payments, change = settle(3000, pay(("card", 1000), ("cheque", 1500), ("meal_voucher", 500)),
                              INCL, refund=False)
    assert sum(p.amount for p in payments) == 3000
    assert change == 0


def test_change_only_in_cash() -> None:
    """Paying more than the total by card, or more change than the cash given, is refused."""
    assert error_code(settle, 3000, pay(("card", 3500)), INCL, refund=False)[0] == "change_not_cash"
    assert error_code(settle, 3000, pay(("card", 3100), ("cash", 100)), INCL,
                      refund=False)[0] == "change_not_cash"


@pytest.mark.parametrize(
    ("total", "tenders", "refund"),
    [(3000, (("card", 2000),), False), (3000, (), False), (-500, (("cash", 600),), True),
     (-500, (("cash", 400),), True)],
)
def test_payments_mismatch(total: int, tenders: tuple[tuple[str, int], ...],
                           refund: bool) -> None:
    """Underpaying, no payment, and a refund that is not exact are refused."""
    assert error_code(settle, total, pay(*tenders), INCL, refund=refund)[0] == "payments_mismatch"


def test_unknown_tender_and_zero_payment() -> None:
    """An unknown tender or a zero payment is refused; an extra tender from settings is fine."""
    assert error_code(settle, 100, pay(("bitcoin", 100)), INCL, refund=False) == (
        "unknown_tender", "payments.0.tender")
    assert error_code(settle, 100, pay(("cash", 0), ("cash", 100)), INCL,
                      refund=False)[0] == "amount_not_positive"
    extra = JournalSettings(extra_tenders=("bitcoin",))
    assert settle(100, pay(("bitcoin", 100)), extra, refund=False)[1] == 0


def test_refund_payments_are_negative() -> None:
    """A refund's tenders are recorded with negative amounts and no change."""
    payments, change = settle(-500, pay(("cash", 200), ("card", 300)), INCL, refund=True)
    assert [p.amount for p in payments] == [-200, -300]
    assert change == 0


def test_free_ticket_needs_no_payment() -> None:
    """A zero total settles with no payment."""
    assert settle(0, (), INCL, refund=False) == ((), 0)


# -- property: any valid ticket -----------------------------------------------------------------


@st.composite
def discounts(draw: st.DrawFn, base: int) -> Discount | None:
    kind = draw(st.sampled_from([None, "amount", "percent"]))
    if kind is None:
        return None
    if kind == "amount":
        return Discount(kind="amount", value=draw(st.integers(0, base)))
    return Discount(kind="percent", value=draw(st.integers(0, 10_000)))


@st.composite
def line_requests(draw: st.DrawFn) -> LineRequest:
    price = draw(st.integers(0, 500_000))
    quantity = draw(st.sampled_from([1000, 2000, 500, 1255, 1, 12_000]))
    gross = (price * quantity + 500) // 1000
    return LineRequest(label="x", unit_price=price, quantity_milli=quantity,
                       vat_rate=draw(st.sampled_from(FRENCH_VAT_RATES)),
                       discount=draw(discounts(gross)))


@st.composite
def tickets(draw: st.DrawFn) -> tuple[SaleRequest, JournalSettings]:
    lines = tuple(draw(st.lists(line_requests(), min_size=1, max_size=8)))
    mode = draw(st.sampled_from([INCL, EXCL]))
    undiscounted = sum(ln.net for ln in price_ticket(lines, None, mode).lines)
    discount = draw(discounts(undiscounted))
    total = price_ticket(lines, discount, mode).total
    card = draw(st.integers(0, total))
    cash = total - card + draw(st.integers(0, 5000))
    tenders = [(tender, amount) for tender, amount in (("card", card), ("cash", cash)) if amount]
    return SaleRequest(operator="op", lines=lines, discount=discount,
                       payments=pay(*tenders)), mode


def walk_for_floats(value: Any, path: str = "$") -> list[str]:
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in walk_for_floats(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in walk_for_floats(v, f"{path}[{i}]")]
    return []


def nets_per_rate(lines: list[dict[str, Any]]) -> dict[int, int]:
    sums: dict[int, int] = defaultdict(int)
    for item in lines:
        sums[item["vat_rate"]] += item["net"]
    return dict(sums)


@settings(deadline=None, max_examples=150)
@given(tickets())
def test_any_valid_ticket_is_consistent(ticket: tuple[SaleRequest, JournalSettings]) -> None:
    """For any valid ticket: per-rate sums equal the lines, excl + VAT = incl, no float."""
    request, mode = ticket
    record = build_sale(request, mode, DAY).model_dump(mode="json")
    assert walk_for_floats(record) == []
    assert walk_for_floats(json.loads(canonical_json(record))) == []
    per_rate = nets_per_rate(record["lines"])
    side = "incl" if mode.prices_include_vat else "excl"
    assert {v["rate"]: v[side] for v in record["breakdown"]} == per_rate
    for item in record["breakdown"]:
        assert item["excl"] + item["vat"] == item["incl"]
        exact = Fraction(item[side] * item["rate"], 10_000 + item["rate"] * (side == "incl"))
        assert abs(item["vat"] - exact) <= Fraction(1, 2)
    assert record["total"] == sum(v["incl"] for v in record["breakdown"])
    assert record["total_excl"] + record["total_vat"] == record["total"]
    assert sum(ln["ticket_discount"] for ln in record["lines"]) == record["ticket_discount"]
    assert sum(p["amount"] for p in record["payments"]) - record["change"] == record["total"]
    assert record["line_count"] == len(request.lines)


@settings(deadline=None)
@given(st.lists(st.integers(1, 100_000), min_size=1, max_size=10), st.data())
def test_ticket_discount_spread_is_proportional(prices: list[int], data: st.DataObject) -> None:
    """Each line's share of a ticket discount is within one cent of its exact proportion."""
    base = sum(prices)
    amount = data.draw(st.integers(0, base))
    priced = price_ticket([line(p) for p in prices], Discount(kind="amount", value=amount), INCL)
    shares = [ln.ticket_discount for ln in priced.lines]
    assert sum(shares) == amount
    for share, price in zip(shares, prices, strict=True):
        assert abs(share - Fraction(amount * price, base)) < 1
        assert 0 <= share <= price
