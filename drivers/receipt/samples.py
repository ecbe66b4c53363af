"""Sample views for tests, the benchmark, previews and the pictures in ``docs/img``.

A French bakery sale (three VAT rates, a weighed line, a discount, cash with change), its
second copy and a day closure. Amounts are consistent: per-rate totals are the sums of the lines.
"""

from __future__ import annotations

import datetime as dt

from drivers.receipt.layout import (
    AmountView,
    ClosureView,
    CopyView,
    LineView,
    Merchant,
    Software,
    TicketView,
    VatView,
)

MERCHANT = Merchant(
    name="Boulangerie Dupont",
    address=("12 rue de la Paix", "75002 Paris"),
    siret="123 456 789 00012",
    naf="1071C",
    vat_number="FR32123456789",
)
SOFTWARE = Software("tillbox", "0.1.0", "B", "0123-2025")

BASE_LINES = (
    LineView("Baguette tradition", 3000, 120, 360, 550),
    LineView("Comté AOP 18 mois", 255, 2490, 635, 550, unit="kg"),
    LineView("Éclair au café", 2000, 290, 530, 1000, discount=50),
    LineView("Jus de pomme bio 1 L", 1000, 450, 450, 2000),
)


def vat_of(lines: tuple[LineView, ...]) -> tuple[VatView, ...]:
    """Per-rate totals of lines priced VAT included (rounded once per rate, halves up)."""
    rates = sorted({line.vat_rate for line in lines}, reverse=True)
    summary = []
    for r in rates:
        incl = sum(line.total for line in lines if line.vat_rate == r)
        vat = (incl * r * 2 + (10000 + r)) // ((10000 + r) * 2)
        summary.append(VatView(r, incl - vat, vat, incl))
    return tuple(summary)


def french_sale(line_count: int = 4, *, training: bool = False) -> TicketView:
    """A French sale of ``line_count`` lines (the four base lines, repeated), paid in cash."""
    lines = tuple(BASE_LINES[i % len(BASE_LINES)] for i in range(line_count))
    vat = vat_of(lines)
    total = sum(v.incl for v in vat)
    paid = -(-total // 1000) * 1000
    return TicketView(
        merchant=MERCHANT, kind="sale", ticket_number="R01-000042", chain_seq=42,
        at=dt.datetime(2025, 3, 14, 9, 41, 7), register="R01", operator="Marie",
        lines=lines, vat=vat, total_excl=sum(v.excl for v in vat), total_incl=total,
        payments=(AmountView("cash", paid),), change=paid - total, line_count=len(lines),
        signature_extract="dQ7z", software=SOFTWARE, training=training,
        receipt_url="https://tillbox.example/r/R01-000042?k=9f2c41",
        footer=("Merci de votre visite !",),
    )


def french_copy() -> CopyView:
    """The second reprint of the sample sale."""
    return CopyView(french_sale(), 2, dt.datetime(2025, 3, 14, 17, 5, 0), "Paul", "Xk3P")


def day_closure() -> ClosureView:
    """A day closure with sales, one return, two tenders and a float."""
    vat = (VatView(2000, 37500, 7500, 45000), VatView(1000, 18182, 1818, 20000),
           VatView(550, 123223, 6777, 130000))
    return ClosureView(
        merchant=MERCHANT, kind="day", period_from=dt.date(2025, 3, 14),
        period_to=dt.date(2025, 3, 14), chain_seq=73, at=dt.datetime(2025, 3, 14, 20, 2, 11),
        register="R01", operator="Marie", vat=vat, sales_total=197500, returns_total=-2500,
        period_total=195000, perpetual_total=14_230_550, perpetual_abs=14_298_050,
        ticket_count=212, sale_count=210, return_count=2, signature_extract="m2Tq",
        software=SOFTWARE, first_ticket_seq=9001, last_ticket_seq=9212,
        tenders=(AmountView("cash", 61000), AmountView("card", 134000)),
        cash=(AmountView("float", 15000), AmountView("safe_drop", -40000)),
    )
