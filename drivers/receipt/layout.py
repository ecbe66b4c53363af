"""What a fiscal ticket, its copy (DUPLICATA) and a closure (Z) report say, as documents.

Inputs are plain typed views (integer cents, basis points, thousandths, local date-times) that
the agent fills from the journal; nothing here imports ``fiscal``. Every mention FISCAL.md
"Receipt mentions" requires is printed: merchant identity, document type, ticket number and
chain sequence, date-time, register, operator, lines (label, quantity, unit price, total, VAT
rate as a code letter explained in the VAT summary), per-rate VAT summary, totals excl./incl.,
payments and change, number of lines, signature extract, software and certification, DUPLICATA
and training markings. Texts come from ``texts`` in the requested language.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from typing import Literal

from drivers.receipt.document import (
    Blank,
    Block,
    Cut,
    Document,
    Logo,
    Paper,
    QrCode,
    Row,
    Rule,
    Text,
)
from drivers.receipt.texts import Lang, Texts, money, number, quantity, rate, texts

DocumentKind = Literal["sale", "return", "invoice", "credit_note"]
ClosureKind = Literal["day", "month", "year"]


@dataclass(frozen=True)
class Merchant:
    """Who sells: printed at the top of every document."""

    name: str
    address: tuple[str, ...]
    siret: str
    naf: str
    vat_number: str


@dataclass(frozen=True)
class Software:
    """The cash software and its certification (category and number are configuration)."""

    name: str
    version: str
    certification_category: str | None = None
    certification_number: str | None = None


@dataclass(frozen=True)
class LineView:
    """One ticket line; ``total`` is what the line costs after ``discount`` (cents)."""

    label: str
    quantity_milli: int
    unit_price: int
    total: int
    vat_rate: int
    unit: str | None = None
    discount: int = 0


@dataclass(frozen=True)
class VatView:
    """One VAT rate's base excluding VAT, VAT and total including VAT (cents)."""

    rate: int
    excl: int
    vat: int
    incl: int


@dataclass(frozen=True)
class AmountView:
    """A labelled amount: a tender and what it took, or a kind of cash movement (cents)."""

    name: str
    amount: int


@dataclass(frozen=True)
class TicketView:
    """Everything printed on a ticket, invoice or credit note."""

    merchant: Merchant
    kind: DocumentKind
    ticket_number: str
    chain_seq: int
    at: dt.datetime
    register: str
    operator: str
    lines: tuple[LineView, ...]
    vat: tuple[VatView, ...]
    total_excl: int
    total_incl: int
    payments: tuple[AmountView, ...]
    change: int
    line_count: int
    signature_extract: str
    software: Software
    training: bool = False
    receipt_url: str | None = None
    customer: str | None = None
    footer: tuple[str, ...] = ()
    logo_png: bytes | None = None


@dataclass(frozen=True)
class CopyView:
    """A reprint of a ticket: its copy number, when, by whom, and the copy's own extract."""

    original: TicketView
    copy_number: int
    at: dt.datetime
    operator: str
    signature_extract: str


@dataclass(frozen=True)
class ClosureView:
    """A day (Z), month or year closure's sealed totals."""

    merchant: Merchant
    kind: ClosureKind
    period_from: dt.date
    period_to: dt.date
    chain_seq: int
    at: dt.datetime
    register: str
    operator: str
    vat: tuple[VatView, ...]
    sales_total: int
    returns_total: int
    period_total: int
    perpetual_total: int
    perpetual_abs: int
    ticket_count: int
    sale_count: int
    return_count: int
    signature_extract: str
    software: Software
    first_ticket_seq: int | None = None
    last_ticket_seq: int | None = None
    tenders: tuple[AmountView, ...] = ()
    cash: tuple[AmountView, ...] = ()
    automatic: bool = False


@dataclass(frozen=True)
class Style:
    """How to lay a document out: paper, language and the currency mark.

    Pass ``currency="EUR"`` for a printer whose code page has no "€" (CP866).
    """

    paper: Paper = Paper.MM80
    lang: Lang = "fr"
    currency: str = "€"

    @property
    def t(self) -> Texts:
        """The texts of the language."""
        return texts(self.lang)


DEFAULT_STYLE = Style()


def ticket_document(view: TicketView, style: Style = DEFAULT_STYLE) -> Document:
    """The document of a ticket (sale, return, invoice or credit note)."""
    blocks = [*ticket_body(view, style), Cut()]
    return Document(style.paper, tuple(blocks))


def copy_document(view: CopyView, style: Style = DEFAULT_STYLE) -> Document:
    """The document of a reprint: DUPLICATA banners around the original and the copy's data."""
    t = style.t
    banner = Text(f"{t.duplicata} {t.number_mark} {view.copy_number}", "center", True, True)
    tail: list[Block] = [
        Rule("="), banner,
        Row(t.copy_printed, view.at.strftime(t.date_format)),
        Row(t.operator, view.operator),
        Row(t.copy_signature, view.signature_extract),
        Rule("="), Cut(),
    ]
    return Document(style.paper, (banner, Blank(), *ticket_body(view.original, style), *tail))


def closure_document(view: ClosureView, style: Style = DEFAULT_STYLE) -> Document:
    """The document of a day (Z), month or year closure report."""
    t = style.t
    blocks = [
        *merchant_header(view.merchant, t), Rule(),
        Text(t.closure_kinds[view.kind], "center", bold=True),
        *closure_identity(view, t), Rule(),
        *closure_totals(view, style), Rule(),
        *vat_summary(view.vat, {v.rate: "" for v in view.vat}, style),
        *amounts(t.tenders_title, view.tenders, t.tenders, style),
        *amounts(t.cash_title, view.cash, t.cash_kinds, style), Rule(),
        Row(t.perpetual_total, money(view.perpetual_total, t, style.currency)),
        Row(t.perpetual_abs, money(view.perpetual_abs, t, style.currency)),
        *signature_footer(view.signature_extract, view.software, t), Cut(),
    ]
    return Document(style.paper, tuple(blocks))


def ticket_body(view: TicketView, style: Style) -> list[Block]:
    """A ticket from logo to footer, without the cut."""
    t = style.t
    codes = vat_codes(view)
    return [
        *([Logo(view.logo_png)] if view.logo_png else []),
        *merchant_header(view.merchant, t),
        *(training_banner(t) if view.training else [Rule()]),
        *ticket_identity(view, t), Rule(),
        *[block for line in view.lines for block in line_blocks(line, codes, style)], Rule(),
        *ticket_totals(view, style), Rule(),
        *vat_summary(view.vat, codes, style), Rule(),
        *payment_blocks(view, style),
        *signature_footer(view.signature_extract, view.software, t),
        *receipt_link(view, style),
        *[Text(line, "center") for line in view.footer],
        *(training_banner(t) if view.training else []),
    ]


def merchant_header(merchant: Merchant, t: Texts) -> list[Block]:
    """Name, address, SIRET, NAF and VAT number, centred."""
    return [
        Text(merchant.name, "center", bold=True, double=True),
        *[Text(line, "center") for line in merchant.address],
        Text(f"{t.siret} {merchant.siret}", "center"),
        Text(f"{t.naf} {merchant.naf}", "center"),
        Text(f"{t.vat_number} {merchant.vat_number}", "center"),
    ]


def training_banner(t: Texts) -> list[Block]:
    """The training marking: this ticket is worth nothing."""
    return [Rule("*"), Text(t.training, "center", bold=True, double=True),
            Text(t.training_note, "center"), Rule("*")]


def ticket_identity(view: TicketView, t: Texts) -> list[Block]:
    """Document type, number, chain sequence, date-time, register, operator (and customer)."""
    blocks: list[Block] = [
        Text(t.kinds[view.kind], bold=True),
        Row(t.ticket_no, view.ticket_number),
        Row(t.sequence, str(view.chain_seq)),
        Row(t.date, view.at.strftime(t.date_format)),
        Row(t.register, view.register),
        Row(t.operator, view.operator),
    ]
    if view.customer:
        blocks.append(Row(t.customer, view.customer))
    return blocks


def vat_codes(view: TicketView) -> dict[int, str]:
    """A letter per VAT rate, highest rate first: ``{2000: "A", 550: "B"}``."""
    rates = sorted({v.rate for v in view.vat} | {line.vat_rate for line in view.lines},
                   reverse=True)
    return dict(zip(rates, string.ascii_uppercase, strict=False))


def line_blocks(line: LineView, codes: dict[int, str], style: Style) -> list[Block]:
    """A line: label, then quantity × unit price with the total and the VAT code."""
    t, mark = style.t, style.currency
    per = f"/{line.unit}" if line.unit else ""
    detail = (f"   {quantity(line.quantity_milli, t, line.unit)} x "
              f"{money(line.unit_price, t, mark)}{per}")
    code = codes[line.vat_rate]
    blocks: list[Block] = [Text(line.label),
                           Row(detail, f"{money(line.total + line.discount, t, mark)} {code}")]
    if line.discount:
        blocks.append(Row(f"   {t.discount}", f"{money(-line.discount, t, mark)}  "))
    return blocks


def ticket_totals(view: TicketView, style: Style) -> list[Block]:
    """Number of lines, totals excluding VAT, VAT, and the total to pay."""
    t, mark = style.t, style.currency
    return [
        Row(t.line_count, str(view.line_count)),
        Row(t.total_excl, money(view.total_excl, t, mark)),
        Row(t.total_vat, money(view.total_incl - view.total_excl, t, mark)),
        Row(t.total_incl, money(view.total_incl, t, mark), bold=True, double=True),
    ]


def vat_summary(vat: tuple[VatView, ...], codes: dict[int, str], style: Style) -> list[Block]:
    """Per-rate base, VAT and total: a table when it fits the paper, stacked rows otherwise."""
    t = style.t
    labels = [f"{codes.get(v.rate, '')} {rate(v.rate, t)}".strip() for v in vat]
    cells = [(number(v.excl, t), number(v.vat, t), number(v.incl, t)) for v in vat]
    first = max(len(label) for label in [t.vat_table[0], *labels])
    width = (style.paper.columns - first) // 3
    if any(len(cell) >= width for cell in [*t.vat_table[1:], *sum(cells, ())]):
        return stacked_vat(labels, cells, style)
    heads = [t.vat_table[0].ljust(first) + "".join(h.rjust(width) for h in t.vat_table[1:])]
    rows = [label.ljust(first) + "".join(c.rjust(width) for c in cell)
            for label, cell in zip(labels, cells, strict=True)]
    return [Text(heads[0], bold=True), *[Text(row) for row in rows]]


def stacked_vat(labels: list[str], cells: list[tuple[str, str, str]],
                style: Style) -> list[Block]:
    """The VAT summary as one block of rows per rate, for amounts too wide for a table."""
    heads = style.t.vat_table
    blocks: list[Block] = []
    for label, cell in zip(labels, cells, strict=True):
        blocks.append(Text(f"{heads[0]} {label}", bold=True))
        blocks.extend(Row(f"  {head}", value) for head, value in zip(heads[1:], cell, strict=True))
    return blocks


def payment_blocks(view: TicketView, style: Style) -> list[Block]:
    """Each tender with its amount, then the change given back."""
    t, mark = style.t, style.currency
    blocks: list[Block] = [Row(t.tenders.get(p.name, p.name), money(p.amount, t, mark))
                           for p in view.payments]
    if view.change:
        blocks.append(Row(t.change, money(view.change, t, mark)))
    return blocks


def signature_footer(extract: str, software: Software, t: Texts) -> list[Block]:
    """Signature extract, software name and version, certification category and number."""
    blocks: list[Block] = [
        Rule(),
        Row(t.signature, extract, bold=True),
        Text(f"{t.software} {software.name} {software.version}"),
    ]
    if software.certification_category or software.certification_number:
        blocks.append(Text(
            f"{t.certification} {t.category} {software.certification_category or '-'}, "
            f"{t.number_mark} {software.certification_number or '-'}"))
    return blocks


def receipt_link(view: TicketView, style: Style) -> list[Block]:
    """The QR code of the e-receipt, when there is one."""
    if not view.receipt_url:
        return []
    module = 6 if style.paper is Paper.MM80 else 4
    return [Blank(), QrCode(view.receipt_url, module, style.t.e_receipt)]


def closure_identity(view: ClosureView, t: Texts) -> list[Block]:
    """Closure sequence, period, date-time, register, operator (and the automatic marking)."""
    start, end = (d.strftime(t.day_format) for d in (view.period_from, view.period_to))
    blocks: list[Block] = [
        Row(t.sequence, str(view.chain_seq)),
        Row(t.period, start if start == end else f"{start} - {end}"),
        Row(t.date, view.at.strftime(t.date_format)),
        Row(t.register, view.register),
        Row(t.operator, view.operator),
    ]
    if view.automatic:
        blocks.append(Text(t.automatic, bold=True))
    return blocks


def closure_totals(view: ClosureView, style: Style) -> list[Block]:
    """Sales, returns and period totals, counts and the range of tickets folded."""
    t, mark = style.t, style.currency
    blocks: list[Block] = [
        Row(t.sales, money(view.sales_total, t, mark)),
        Row(t.returns, money(view.returns_total, t, mark)),
        Row(t.period_total, money(view.period_total, t, mark), bold=True),
        Row(t.ticket_count, str(view.ticket_count)),
        Row(t.sale_count, str(view.sale_count)),
        Row(t.return_count, str(view.return_count)),
    ]
    if view.first_ticket_seq is not None and view.last_ticket_seq is not None:
        blocks.append(Row(t.ticket_range, f"{view.first_ticket_seq} - {view.last_ticket_seq}"))
    return blocks


def amounts(title: str, items: tuple[AmountView, ...], names: dict[str, str],
            style: Style) -> list[Block]:
    """A titled list of labelled amounts (tenders, cash movements); nothing when empty."""
    if not items:
        return []
    rows = [Row(names.get(i.name, i.name), money(i.amount, style.t, style.currency))
            for i in items]
    return [Rule(), Text(title, bold=True), *rows]
