"""Journal entries as receipt views: what ``drivers.receipt.layout`` prints, from the journal.

A sale, a return, a training sale, an invoice or credit note becomes a ``TicketView``; a copy
becomes a ``CopyView`` around its original's ticket (DUPLICATA, copy number, the copy's own date,
operator and signature extract); a day, month or year closure becomes a ``ClosureView``. Every
mention of FISCAL.md "Receipt mentions" comes from the signed entry itself (numbers, local
date-time, register, operator, lines, VAT, totals, payments, change, line count, signature
extract) or from the settings (merchant, software certification, paper, footer, the e-receipt
link). Pure functions: no I/O; the caller fetches the original of a copy.

With ``[receipts] e_receipt_url`` set (a template such as
``https://receipts.example/{store_id}/{register_id}/{seq}``), every ticket (sale, return,
invoice, credit note, and so the DUPLICATA of one) ends with the QR code of its e-receipt; the
fields are the entry's ``store_id``, ``register_id``, ``seq``, ``chain``, ``chain_seq`` and
``number`` (``R1-ticket-000042``), URL-escaped.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent.settings import ReceiptsSettings, StoreIdentity
from drivers.receipt.document import Document, Paper
from drivers.receipt.layout import (
    AmountView,
    ClosureKind,
    ClosureView,
    CopyView,
    DocumentKind,
    LineView,
    Merchant,
    Software,
    Style,
    TicketView,
    VatView,
    closure_document,
    copy_document,
    ticket_document,
)
from drivers.receipt.texts import Lang
from fiscal.chain import Entry

TICKET_TYPES = frozenset({"sale", "return", "invoice", "credit_note"})
CLOSURE_TYPES = frozenset({"day_closure", "month_closure", "year_closure"})
COPYABLE_TYPES = TICKET_TYPES
RECEIPT_TYPES = TICKET_TYPES | CLOSURE_TYPES | {"copy"}
"""Record types that have a receipt (every other entry is not a customer document)."""

ReceiptKind = Literal["sale", "return", "invoice", "credit_note", "copy", "day_closure",
                      "month_closure", "year_closure"]
CURRENCY_MARKS = {"EUR": "€", "RUB": "₽", "USD": "$", "GBP": "£", "CHF": "CHF"}
PAPERS = {"80mm": Paper.MM80, "58mm": Paper.MM58}
DOCUMENT_KINDS: dict[str, DocumentKind] = {
    "sale": "sale", "return": "return", "invoice": "invoice", "credit_note": "credit_note"}
CLOSURE_KINDS: dict[str, ClosureKind] = {
    "day_closure": "day", "month_closure": "month", "year_closure": "year"}
TENDER_NAMES: dict[str, dict[Lang, str]] = {
    "meal_voucher": {"fr": "Titre-restaurant", "en": "Meal voucher", "ru": "Талон на питание"},
    "gift_voucher": {"fr": "Bon cadeau", "en": "Gift voucher", "ru": "Подарочный сертификат"},
    "store_credit": {"fr": "Avoir magasin", "en": "Store credit", "ru": "Кредит магазина"},
}
"""Tenders of the journal that ``drivers.receipt.texts`` does not name."""
RETURN_OF: dict[Lang, str] = {"fr": "Retour du ticket n° {}", "en": "Return of receipt no. {}",
                              "ru": "Возврат по чеку № {}"}
INVOICE_OF: dict[Lang, str] = {"fr": "Facture du ticket n° {}", "en": "Invoice for receipt no. {}",
                               "ru": "Счёт по чеку № {}"}


@dataclass(frozen=True)
class ReceiptContext:
    """What every receipt prints besides the entry: merchant, software, paper, footer."""

    merchant: Merchant
    software: Software
    paper: Paper = Paper.MM80
    footer: tuple[str, ...] = ()
    e_receipt_url: str | None = None
    """The e-receipt URL template (``[receipts] e_receipt_url``); None: no QR code."""


def receipt_context(store: StoreIdentity, receipts: ReceiptsSettings,
                    version: str) -> ReceiptContext:
    """The context from the ``[store]`` and ``[receipts]`` settings and the software version."""
    merchant = Merchant(name=store.name, address=store.address, siret=store.siret,
                        naf=store.naf, vat_number=store.vat_number)
    software = Software("tillbox", version, receipts.certification_category,
                        receipts.certification_number)
    return ReceiptContext(merchant, software, PAPERS[receipts.paper], receipts.footer,
                          receipts.e_receipt_url)


def e_receipt_url(entry: Entry, template: str | None) -> str | None:
    """The link to the entry's e-receipt from the template, or None without a template."""
    if template is None:
        return None

    def quoted(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    return template.format(store_id=quoted(entry.store_id), register_id=quoted(entry.register_id),
                           seq=entry.seq, chain=quoted(entry.chain), chain_seq=entry.chain_seq,
                           number=quoted(ticket_number(entry)))


def has_receipt(entry: Entry) -> bool:
    """Whether the entry is a ticket, invoice, copy or closure (it has a document)."""
    return str(entry.record.get("type")) in RECEIPT_TYPES


def number_of(register_id: str, chain: str, chain_seq: int) -> str:
    """A document number: register, chain and chain sequence (``R1-ticket-000042``)."""
    return f"{register_id}-{chain}-{chain_seq:06d}"


def ticket_number(entry: Entry) -> str:
    """The number printed on an entry's document."""
    return number_of(entry.register_id, entry.chain, entry.chain_seq)


def original_number(entry: Entry) -> str | None:
    """The number of the document a copy, return or invoice refers to, if any."""
    ref = entry.record.get("original") or entry.record.get("source")
    if not ref:
        return None
    return number_of(str(ref["register_id"]), str(ref["chain"]), int(ref["chain_seq"]))


def local_time(entry: Entry) -> dt.datetime:
    """The entry's local date-time (as signed, in the store's time zone)."""
    return dt.datetime.fromisoformat(entry.at_local)


def style_for(context: ReceiptContext, lang: Lang, currency: str) -> Style:
    """The layout style: the context's paper, the language, the currency's mark."""
    return Style(paper=context.paper, lang=lang, currency=CURRENCY_MARKS.get(currency, currency))


def currency_of(entry: Entry, original: Entry | None = None) -> str:
    """The currency of the entry's amounts (a copy's are its original's)."""
    record = original.record if original is not None else entry.record
    return str(record.get("currency", "EUR"))


def line_view(line: Mapping[str, Any]) -> LineView:
    """One journal line: the net amount, with line and ticket discounts shown as one."""
    discount = int(line.get("line_discount", 0)) + int(line.get("ticket_discount", 0))
    return LineView(label=str(line["label"]), quantity_milli=int(line["quantity_milli"]),
                    unit_price=int(line["unit_price"]), total=int(line["net"]),
                    vat_rate=int(line["vat_rate"]), discount=discount)


def vat_views(breakdown: Any) -> tuple[VatView, ...]:
    """The per-rate VAT summary."""
    return tuple(VatView(int(v["rate"]), int(v["excl"]), int(v["vat"]), int(v["incl"]))
                 for v in breakdown)


def ticket_view(entry: Entry, context: ReceiptContext, lang: Lang = "fr") -> TicketView:
    """The view of a sale, return, training sale, invoice or credit note."""
    record = entry.record
    kind = DOCUMENT_KINDS.get(str(record["type"]))
    if kind is None:
        raise ValueError(f"entry {entry.seq} is a {record['type']}, not a ticket")
    lines = tuple(line_view(line) for line in record["lines"])
    return TicketView(
        merchant=context.merchant, kind=kind,
        ticket_number=ticket_number(entry), chain_seq=entry.chain_seq, at=local_time(entry),
        register=entry.register_id, operator=str(record["operator"]), lines=lines,
        vat=vat_views(record["breakdown"]), total_excl=int(record["total_excl"]),
        total_incl=int(record["total"]),
        payments=tuple(AmountView(tender_name(str(p["tender"]), lang), int(p["amount"]))
                       for p in record.get("payments", ())),
        change=int(record.get("change", 0)),
        line_count=int(record.get("line_count", len(lines))),
        signature_extract=entry.extract, software=context.software,
        training=bool(record.get("training", False)), customer=customer_of(record),
        receipt_url=e_receipt_url(entry, context.e_receipt_url),
        footer=(*reference_lines(entry, lang), *context.footer),
    )


def customer_of(record: Mapping[str, Any]) -> str | None:
    """The customer named on an invoice or credit note (tickets name nobody)."""
    party = record.get("customer")
    if not party:
        return None
    return ", ".join(str(part) for part in (party.get("name"), party.get("company")) if part)


def reference_lines(entry: Entry, lang: Lang) -> tuple[str, ...]:
    """The line naming the receipt a return or an invoice refers to (none otherwise)."""
    number = original_number(entry)
    kind = entry.record["type"]
    if number is None or kind not in ("return", "invoice", "credit_note"):
        return ()
    template = RETURN_OF if kind == "return" else INVOICE_OF
    return (template[lang].format(number),)


def copy_view(entry: Entry, original: Entry, context: ReceiptContext,
              lang: Lang = "fr") -> CopyView:
    """The view of a reprint: its original's ticket, copy number, date, operator, extract."""
    record = entry.record
    if record.get("type") != "copy" or int(record["original"]["seq"]) != original.seq:
        raise ValueError(f"entry {entry.seq} is not a copy of entry {original.seq}")
    return CopyView(original=ticket_view(original, context, lang),
                    copy_number=int(record["copy_number"]), at=local_time(entry),
                    operator=str(record["operator"]), signature_extract=entry.extract)


def tender_name(tender: str, lang: Lang) -> str:
    """A tender as the layout looks it up (its own texts, or ours for the journal's others)."""
    names = TENDER_NAMES.get(tender)
    return names[lang] if names else tender


def closure_view(entry: Entry, context: ReceiptContext, lang: Lang = "fr") -> ClosureView:
    """The view of a day (Z), month or year closure."""
    record = entry.record
    kind = CLOSURE_KINDS.get(str(record["type"]))
    if kind is None:
        raise ValueError(f"entry {entry.seq} is a {record['type']}, not a closure")
    return ClosureView(
        merchant=context.merchant, kind=kind,
        period_from=dt.date.fromisoformat(str(record["period_from"])),
        period_to=dt.date.fromisoformat(str(record["period_to"])), chain_seq=entry.chain_seq,
        at=local_time(entry), register=entry.register_id, operator=str(record["operator"]),
        vat=vat_views(record["breakdown"]), sales_total=int(record["sales_total"]),
        returns_total=int(record["returns_total"]), period_total=int(record["period_total"]),
        perpetual_total=int(record["perpetual_total"]),
        perpetual_abs=int(record["perpetual_abs"]), ticket_count=int(record["ticket_count"]),
        sale_count=int(record["sale_count"]), return_count=int(record["return_count"]),
        signature_extract=entry.extract, software=context.software,
        first_ticket_seq=record.get("first_ticket_seq"),
        last_ticket_seq=record.get("last_ticket_seq"),
        tenders=tuple(AmountView(tender_name(str(t["tender"]), lang), int(t["amount"]))
                      for t in record.get("tenders", ())),
        cash=tuple(AmountView(str(c["kind"]), int(c["amount"])) for c in record.get("cash", ())),
        automatic=bool(record.get("automatic", False)),
    )


def entry_document(entry: Entry, context: ReceiptContext, lang: Lang = "fr",
                   original: Entry | None = None) -> Document:
    """The document of any entry with a receipt (``original``: a copy's original entry)."""
    style = style_for(context, lang, currency_of(entry, original))
    kind = str(entry.record.get("type"))
    if kind in TICKET_TYPES:
        return ticket_document(ticket_view(entry, context, lang), style)
    if kind in CLOSURE_TYPES:
        return closure_document(closure_view(entry, context, lang), style)
    if kind == "copy":
        if original is None:
            raise ValueError(f"the copy {entry.seq} needs its original entry")
        return copy_document(copy_view(entry, original, context, lang), style)
    raise ValueError(f"entry {entry.seq} ({kind}) has no receipt")
