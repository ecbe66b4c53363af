"""Bad input never reaches the journal: every refusal is a typed ``FiscalError`` with a stable
``code`` and the offending ``field``, and leaves the journal exactly as it was (sequence, heads
and the rows stored in SQLite)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fiscal.errors import FiscalError, InvalidInput, OverReturn, PeriodClosed
from fiscal.journal import Journal
from fiscal.money import MAX_AMOUNT
from fiscal.records import Party
from fiscal.requests import (
    CashMovementRequest,
    Discount,
    InvoiceRequest,
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
    SaleRequest,
    parse_request,
)

TOO_MUCH = MAX_AMOUNT + 1
CONTROL_CHARACTERS = ["\x00", "\x1b", "\n", "\u0085", "\u2028", "\u2029", "\ud800", "\ue000"]


def line(**fields: Any) -> LineRequest:
    """A one-piece line at 20 % for 10.00, with fields overridden."""
    return LineRequest(**{"label": "Item", "unit_price": 1000, "vat_rate": 2000, **fields})


def cash(amount: int, tender: str = "cash") -> list[PaymentRequest]:
    """One payment."""
    return [PaymentRequest(tender=tender, amount=amount)]


async def assert_refused(journal: Journal, snapshot: Callable[[Journal], Any],
                         write: Awaitable[Any], error: type[FiscalError], code: str,
                         field: str | None) -> None:
    """Await ``write``; it must raise ``error`` with ``code`` and ``field`` and change nothing."""
    before = snapshot(journal)
    with pytest.raises(error) as caught:
        await write
    assert (caught.value.code, caught.value.field) == (code, field)
    assert caught.value.message
    assert snapshot(journal) == before


SALE_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "zero quantity": (
        {"lines": [line(quantity_milli=0)]}, "quantity_not_positive", "lines.0.quantity_milli"),
    "negative quantity": (
        {"lines": [line(), line(quantity_milli=-1000)]}, "quantity_not_positive",
        "lines.1.quantity_milli"),
    "huge quantity": (
        {"lines": [line(unit_price=1, quantity_milli=10**9 + 1)]}, "quantity_not_positive",
        "lines.0.quantity_milli"),
    "unknown VAT rate": (
        {"lines": [line(vat_rate=1960)]}, "unknown_vat_rate", "lines.0.vat_rate"),
    "negative unit price": (
        {"lines": [line(unit_price=-1)]}, "amount_negative", "lines.0.unit_price"),
    "unit price over the limit": (
        {"lines": [line(unit_price=TOO_MUCH)]}, "amount_too_large", "lines.0.unit_price"),
    "line amount over the limit": (
        {"lines": [line(unit_price=MAX_AMOUNT, quantity_milli=2000)]}, "amount_too_large",
        "lines.0.unit_price"),
    "ticket total over the limit": (
        {"lines": [line(unit_price=MAX_AMOUNT), line(unit_price=1)],
         "payments": cash(MAX_AMOUNT)}, "amount_too_large", "total"),
    "payment over the limit": (
        {"payments": cash(TOO_MUCH)}, "amount_too_large", "payments.0.amount"),
    "zero payment": (
        {"payments": [*cash(1000), *cash(0, "card")]}, "amount_not_positive",
        "payments.1.amount"),
    "negative payment": (
        {"payments": cash(-1000)}, "amount_negative", "payments.0.amount"),
    "ticket discount over the limit": (
        {"discount": Discount(kind="amount", value=TOO_MUCH)}, "amount_too_large",
        "discount.value"),
    "line discount over the limit": (
        {"lines": [line(discount=Discount(kind="amount", value=TOO_MUCH))]},
        "amount_too_large", "lines.0.discount.value"),
    "discount larger than the line": (
        {"lines": [line(discount=Discount(kind="amount", value=1001))]}, "discount_too_large",
        "lines.0.discount.value"),
    "percentage over 100 %": (
        {"discount": Discount(kind="percent", value=10_001)}, "bad_percentage",
        "discount.value"),
    "payments short of the total": (
        {"payments": cash(999)}, "payments_mismatch", "payments"),
    "no payment": ({"payments": []}, "payments_mismatch", "payments"),
    "change from a card": (
        {"payments": cash(1500, "card")}, "change_not_cash", "payments"),
    "unknown tender": (
        {"payments": cash(1000, "bitcoin")}, "unknown_tender", "payments.0.tender"),
    "empty label": ({"lines": [line(label=" ")]}, "text_empty", "lines.0.label"),
    "label too long": ({"lines": [line(label="x" * 121)]}, "text_too_long", "lines.0.label"),
    "empty operator": ({"operator": ""}, "text_empty", "operator"),
}


def sale(**fields: Any) -> SaleRequest:
    """A 10.00 cash sale with fields overridden."""
    values: dict[str, Any] = {"operator": "alice", "lines": [line()], "payments": cash(1000),
                              **fields}
    return SaleRequest(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@pytest.mark.parametrize(("fields", "code", "field"), list(SALE_CASES.values()),
                         ids=list(SALE_CASES))
async def test_bad_sale_is_refused(journal, snapshot, fields, code, field):
    """Each malformed sale is refused with its code and field, and nothing is written."""
    await assert_refused(journal, snapshot, journal.sell(sale(**fields)), InvalidInput, code,
                         field)


TEXT_FIELDS: dict[str, tuple[Callable[[str], dict[str, Any]], str]] = {
    "label": (lambda t: {"lines": [line(label=f"Bread{t}")]}, "lines.0.label"),
    "sku": (lambda t: {"lines": [line(sku=f"A{t}1")]}, "lines.0.sku"),
    "operator": (lambda t: {"operator": f"al{t}ice"}, "operator"),
    "customer_ref": (lambda t: {"customer_ref": f"{t}C42"}, "customer_ref"),
    "discount reason": (
        lambda t: {"discount": Discount(kind="amount", value=1, reason=f"vip{t}")},
        "discount.reason"),
}


@pytest.mark.parametrize("char", CONTROL_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in
                                                          CONTROL_CHARACTERS])
@pytest.mark.parametrize("name", list(TEXT_FIELDS))
async def test_control_characters_in_sale_text_are_refused(journal, snapshot, name, char):
    """Control, separator, surrogate and private-use characters are refused in any text."""
    make, field = TEXT_FIELDS[name]
    await assert_refused(journal, snapshot, journal.sell(sale(**make(char))), InvalidInput,
                         "control_character", field)


@pytest.mark.parametrize("char", CONTROL_CHARACTERS[:5])
async def test_control_characters_in_customer_names_are_refused(journal, snapshot, char):
    """An invoice's customer name and address are refused with control characters."""
    source = await journal.sell(sale())
    for party, field in ((Party(name=f"ACME{char}"), "customer.name"),
                         (Party(name="ACME", address=f"1 rue{char}X"), "customer.address")):
        request = InvoiceRequest(operator="alice", source_seq=source.seq, customer=party)
        await assert_refused(journal, snapshot, journal.invoice(request), InvalidInput,
                             "control_character", field)


@pytest.mark.parametrize("char", CONTROL_CHARACTERS[:5])
async def test_control_characters_in_other_operators_are_refused(journal, snapshot, char):
    """Returns, copies, cash movements and events refuse control characters in operators."""
    source = await journal.sell(sale())
    operator = f"bob{char}"
    writes = [
        journal.refund(ReturnRequest(operator=operator, original_seq=source.seq, lines=(
            ReturnLineRequest(original_line_no=1, quantity_milli=1000),), refunds=tuple(
            cash(1000)))),
        journal.copy(source.seq, operator),
        journal.cash_movement(CashMovementRequest(kind="float", operator=operator, amount=1)),
    ]
    for write in writes:
        await assert_refused(journal, snapshot, write, InvalidInput, "control_character",
                             "operator")


RETURN_CASES: dict[str, tuple[list[tuple[int, int]], int, type[FiscalError], str, str]] = {
    "more than sold": ([(1, 2000)], 2000, OverReturn, "over_return", "lines.0.quantity_milli"),
    "more than left": ([(2, 1000)], 500, OverReturn, "over_return", "lines.0.quantity_milli"),
    "zero quantity": ([(1, 0)], 0, InvalidInput, "quantity_not_positive",
                      "lines.0.quantity_milli"),
    "negative quantity": ([(1, -1000)], 1000, InvalidInput, "quantity_not_positive",
                          "lines.0.quantity_milli"),
    "unknown line": ([(3, 1000)], 1000, InvalidInput, "unknown_line",
                     "lines.0.original_line_no"),
    "refund short": ([(1, 1000)], 999, InvalidInput, "payments_mismatch", "payments"),
    "refund over the limit": ([(1, 1000)], TOO_MUCH, InvalidInput, "amount_too_large",
                              "payments.0.amount"),
}


@pytest.mark.parametrize(("lines", "refund", "error", "code", "field"),
                         list(RETURN_CASES.values()), ids=list(RETURN_CASES))
async def test_bad_return_is_refused(journal, snapshot, lines, refund, error, code, field):
    """Each malformed return is refused with its code and field, and nothing is written."""
    source = await journal.sell(sale(lines=[line(), line(unit_price=500)], payments=cash(1500)))
    await journal.refund(ReturnRequest(operator="bob", original_seq=source.seq, lines=(
        ReturnLineRequest(original_line_no=2, quantity_milli=1000),), refunds=tuple(cash(500))))
    request = ReturnRequest(
        operator="bob", original_seq=source.seq,
        lines=tuple(ReturnLineRequest(original_line_no=n, quantity_milli=q) for n, q in lines),
        refunds=tuple(cash(refund)))
    await assert_refused(journal, snapshot, journal.refund(request), error, code, field)


CASH_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "zero amount": ({"amount": 0}, "amount_not_positive", "amount"),
    "negative amount": ({"amount": -5}, "amount_negative", "amount"),
    "amount over the limit": ({"amount": TOO_MUCH}, "amount_too_large", "amount"),
    "unknown tender": ({"tender": "shells"}, "unknown_tender", "tender"),
    "control character in the reason": ({"reason": "till\x1b"}, "control_character",
                                        "reason"),
}


@pytest.mark.parametrize(("fields", "code", "field"), list(CASH_CASES.values()),
                         ids=list(CASH_CASES))
async def test_bad_cash_movement_is_refused(journal, snapshot, fields, code, field):
    """Each malformed cash movement is refused with its code and field."""
    request = CashMovementRequest(**{"kind": "cash_in", "operator": "a", "amount": 100, **fields})
    await assert_refused(journal, snapshot, journal.cash_movement(request), InvalidInput, code,
                         field)


async def test_writes_into_a_closed_period_are_refused(journal, snapshot):
    """After the day is closed, sales, returns and cash movements dated in it are refused."""
    source = await journal.sell(sale())
    await journal.periods.close_day("boss")
    writes = [
        journal.sell(sale()),
        journal.refund(ReturnRequest(operator="bob", original_seq=source.seq, lines=(
            ReturnLineRequest(original_line_no=1, quantity_milli=1000),), refunds=tuple(
            cash(1000)))),
        journal.cash_movement(CashMovementRequest(kind="cash_in", operator="a", amount=1)),
    ]
    for write in writes:
        await assert_refused(journal, snapshot, write, PeriodClosed, "period_closed",
                             "business_date")


@pytest.mark.parametrize(("fields", "code", "field"), [
    ({"lines": [line(vat_rate=1)]}, "unknown_vat_rate", "lines.0.vat_rate"),
    ({"payments": cash(1)}, "payments_mismatch", "payments"),
], ids=["unknown rate", "short payment"])
async def test_bad_sale_after_the_grace_closes_nothing(journal, snapshot, clock, fields, code,
                                                       field):
    """A refused sale past the grace leaves the previous day open: nothing at all is written."""
    await journal.sell(sale())
    clock.set_local(2026, 11, 21, 9)
    await assert_refused(journal, snapshot, journal.sell(sale(**fields)), InvalidInput, code,
                         field)


# -- untyped input through parse_request ------------------------------------------------------


def raw_sale(**fields: Any) -> dict[str, Any]:
    """A valid sale as plain data (tuples for arrays), with fields overridden."""
    return {"operator": "alice",
            "lines": ({"label": "Item", "unit_price": 1000, "vat_rate": 2000},),
            "payments": ({"tender": "cash", "amount": 1000},), **fields}


@pytest.mark.parametrize(("data", "field"), [
    (raw_sale(lines=({"label": "Item", "unit_price": 1.5, "vat_rate": 2000},)),
     "lines.0.unit_price"),
    (raw_sale(lines=({"label": "Item", "unit_price": 1000.0, "vat_rate": 2000},)),
     "lines.0.unit_price"),
    (raw_sale(lines=({"label": "I", "unit_price": 1, "vat_rate": 2000, "quantity_milli": 0.5},)),
     "lines.0.quantity_milli"),
    (raw_sale(payments=({"tender": "cash", "amount": 10.0},)), "payments.0.amount"),
    (raw_sale(discount={"kind": "percent", "value": 12.5}), "discount.value"),
    (raw_sale(lines=({"label": "Item", "unit_price": "1000", "vat_rate": 2000},)),
     "lines.0.unit_price"),
    (raw_sale(lines=({"label": "Item", "unit_price": True, "vat_rate": 2000},)),
     "lines.0.unit_price"),
    (raw_sale(lines=()), "lines"),
    (raw_sale(operator=None), "operator"),
    (raw_sale(colour="red"), "colour"),
    ({"lines": raw_sale()["lines"], "payments": ()}, "operator"),
])
def test_untyped_input_errors_name_the_field(data, field):
    """``parse_request`` refuses floats, strings and bools for integers, empty tickets and
    unknown fields with a ``schema`` error naming the field."""
    with pytest.raises(InvalidInput) as caught:
        parse_request(SaleRequest, data)
    assert (caught.value.code, caught.value.field) == ("schema", field)


def test_json_arrays_are_accepted():
    """A sale decoded from JSON (arrays as lists) parses like one built with tuples."""
    data = raw_sale()
    as_json = {**data, "lines": list(data["lines"]), "payments": list(data["payments"])}
    assert parse_request(SaleRequest, as_json) == parse_request(SaleRequest, data)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True), st.text(max_size=6))
ANY_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=8)


def arrays(items: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Sequences as tuples (what validates) or lists, or anything at all."""
    listed = st.lists(items, max_size=3)
    return st.one_of(listed.map(tuple), listed, ANY_JSON)


def near(*good: Any) -> st.SearchStrategy[Any]:
    """One of a few plausible values, or anything."""
    return st.one_of(st.sampled_from(good), ANY_JSON)


DISCOUNTS = st.fixed_dictionaries({"kind": near("amount", "percent"),
                                   "value": st.integers(-10, 20_000) | ANY_JSON},
                                  optional={"reason": near("vip", "\x00")})
LINES = st.fixed_dictionaries(
    {"label": near("Bread", "", "A\u2028"), "unit_price": st.integers(-10, 10**12) | ANY_JSON,
     "vat_rate": near(2000, 550, 0, 1234, -1)},
    optional={"quantity_milli": st.integers(-10, 10**10) | ANY_JSON, "discount": DISCOUNTS,
              "sku": near("A1", None), "barcode": ANY_JSON})
PAYMENTS = st.fixed_dictionaries({"tender": near("cash", "card", "bitcoin"),
                                  "amount": st.integers(-10, 10**12) | ANY_JSON})
SALES = st.fixed_dictionaries(
    {"operator": near("alice", "", "a\x1b"), "lines": arrays(LINES), "payments": arrays(PAYMENTS)},
    optional={"discount": DISCOUNTS, "training": near(True, False), "customer_ref": ANY_JSON,
              "extra": ANY_JSON})


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(SALES, ANY_JSON))
async def test_garbage_never_escapes_as_another_error(journal, snapshot, data):
    """Random data through ``parse_request`` and ``sell`` raises only ``FiscalError``s, and
    writes nothing unless the sale is accepted (then exactly one entry)."""
    before = snapshot(journal)
    try:
        entry = await journal.sell(parse_request(SaleRequest, data))  # type: ignore[arg-type]
    except FiscalError as error:
        refusal: FiscalError | None = error
    else:
        refusal = None
    if refusal is not None:
        assert refusal.code
        assert snapshot(journal) == before
        return
    assert journal.state.seq == before[0] + 1 == entry.seq
    assert await journal.get(entry.seq) == entry
