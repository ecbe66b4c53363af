"""The fixed scenario behind the golden vectors: one record of every type, chained and signed.

``build()`` starts from a fresh ``ChainState``, builds each record with fiscal's pure builders
from fixed requests, appends it with ``fiscal.chain.append`` at a fixed instant and signs it with
the fixed test key (``test-key.pem``). Deterministic ECDSA makes the result byte-identical on
every run. ``test_golden.py`` compares it with the checked-in ``*.json``; ``regenerate.py``
rewrites them. Nothing here reads a clock, the environment or a random source.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiscal import keys
from fiscal.chain import ChainHead, ChainState, Entry, append
from fiscal.closing import fold_day, fold_period
from fiscal.documents import build_copy, build_invoice, build_return, build_sale
from fiscal.records import AnyRecord, ArchiveRecord, CashMovement, Event, OriginalRef, Party
from fiscal.requests import (
    Discount,
    InvoiceRequest,
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
    SaleRequest,
)
from fiscal.settings import ClosurePolicy, JournalSettings

HERE = Path(__file__).parent
KEY_FILE = HERE / "test-key.pem"
SETTINGS = JournalSettings(
    store_id="golden-store", register_id="R1", timezone="Europe/Paris",
    closure=ClosurePolicy(fiscal_year_start_month=4),
)
DAY = dt.date(2026, 3, 31)
"""Last day of March and of the fiscal year starting in April: every closure kind applies."""
START = dt.datetime(2026, 3, 31, 6, 0, 0, 123456, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Vector:
    """One golden vector: the instant, the entry and its signed chain head."""

    name: str
    now: dt.datetime
    entry: Entry
    head: ChainHead

    def to_json(self) -> dict[str, Any]:
        """Return what the vector file holds."""
        return {
            "name": self.name, "now": self.now.isoformat(), "seq": self.entry.seq,
            "chain": self.entry.chain, "chain_seq": self.entry.chain_seq,
            "record": dict(self.entry.record), "data_to_sign": self.entry.data_to_sign,
            "content_hash": self.entry.content_hash, "sig": self.entry.sig,
            "head_sig": self.head.head_sig, "body": self.entry.body().decode("utf-8"),
        }

    @property
    def file_name(self) -> str:
        """The vector's file name, ordered by global sequence."""
        return f"{self.entry.seq:02d}-{self.name}.json"


def load_key() -> keys.BoxKey:
    """Load the fixed test key (its certificate is random but never enters a vector)."""
    return keys.from_private_pem(KEY_FILE.read_bytes(), "golden R1", START)


def _ref(entry: Entry) -> OriginalRef:
    return OriginalRef(seq=entry.seq, chain=entry.chain, chain_seq=entry.chain_seq,
                       register_id=entry.register_id)


def _sale_request(*, training: bool = False) -> SaleRequest:
    return SaleRequest(
        operator="alice", training=training,
        lines=(
            LineRequest(label="Baguette", unit_price=120, vat_rate=550, quantity_milli=3000),
            LineRequest(label="Vin rouge, AOC", unit_price=1299, vat_rate=2000, sku="VIN-01",
                        discount=Discount(kind="percent", value=1000, reason="promo")),
            LineRequest(label="Comté", unit_price=2490, vat_rate=550, quantity_milli=255,
                        barcode="2001234000007",
                        discount=Discount(kind="amount", value=35)),
        ),
        discount=Discount(kind="amount", value=50, reason="fidélité"),
        payments=(PaymentRequest(tender="card", amount=1000),
                  PaymentRequest(tender="cash", amount=1100)),
    )


class _Run:
    """Appends records one after another, the clock moving by fixed steps."""

    def __init__(self) -> None:
        self.key = load_key()
        self.state = ChainState(store_id=SETTINGS.store_id, register_id=SETTINGS.register_id,
                                timezone=SETTINGS.timezone)
        self.vectors: list[Vector] = []

    def add(self, name: str, record: AnyRecord, minutes: int) -> Entry:
        now = START + dt.timedelta(minutes=minutes)
        self.state, entry, head = append(self.state, record, self.key, now)
        self.vectors.append(Vector(name, now, entry, head))
        return entry


def _tickets(run: _Run) -> tuple[Entry, Entry]:
    sale = run.add("sale", build_sale(_sale_request(), SETTINGS, DAY), 72)
    run.add("copy", build_copy(sale.record, _ref(sale), 0, "Zoé", "client request"), 75)
    customer = Party(name="ACME, SA | 50% off", siret="12345678900012")
    invoice_request = InvoiceRequest(operator="alice", source_seq=sale.seq, customer=customer)
    invoice = run.add("invoice", build_invoice(invoice_request, sale.record, _ref(sale), None,
                                               DAY), 80)
    refund = ReturnRequest(operator="bob", original_seq=sale.seq, reason="damaged",
                           lines=(ReturnLineRequest(original_line_no=1, quantity_milli=1000),),
                           refunds=(PaymentRequest(tender="cash", amount=117),))
    ret = run.add("return", build_return(refund, sale.record, _ref(sale), (), SETTINGS, DAY),
                  150)
    credit_request = InvoiceRequest(operator="bob", source_seq=ret.seq, customer=customer)
    run.add("credit-note", build_invoice(credit_request, ret.record, _ref(ret), _ref(invoice),
                                         DAY), 155)
    run.add("training-sale", build_sale(_sale_request(training=True), SETTINGS, DAY), 200)
    return sale, ret


def _cash(run: _Run, kind: str, amount: int, minutes: int) -> Entry:
    record = CashMovement.model_validate({"kind": kind, "operator": "alice", "amount": amount,
                                          "reason": "drawer", "business_date": DAY.isoformat()})
    return run.add(f"cash-{kind.replace('_', '-')}", record, minutes)


def _closures(run: _Run, tickets: tuple[Entry, Entry], cash: list[Entry]) -> None:
    folded = [(entry.chain_seq, entry.record) for entry in tickets]
    day = fold_day(DAY, folded, [entry.record for entry in cash], None, operator="boss")
    day_entry = run.add("day-closure", day, 930)
    month = fold_period("month_closure", (dt.date(2026, 3, 1), DAY), [day_entry.record], None,
                        operator="boss")
    month_entry = run.add("month-closure", month, 931)
    year = fold_period("year_closure", (dt.date(2025, 4, 1), DAY), [month_entry.record], None,
                       operator="boss")
    run.add("year-closure", year, 932)


def _initialisation(key_id: str) -> Event:
    details = {"key_id": key_id, "certificate_pem": "(fixed: a real certificate is random)",
               "store_id": SETTINGS.store_id, "register_id": SETTINGS.register_id,
               "software": "tillbox 0.1.0", "epoch": "0123456789abcdef0123456789abcdef",
               "timezone": SETTINGS.timezone}
    return Event(code=260, operator="system", description="Initialisation", details=details)


def _archive() -> ArchiveRecord:
    return ArchiveRecord(operator="boss", period_from="2025-04-01", period_to=DAY.isoformat(),
                         manifest_sha256="ab" * 32, entry_count=12, last_seq=12,
                         file_name="archive-R1-20250401-20260331.zip")


def build() -> list[Vector]:
    """Build the whole scenario and return its vectors in journal order."""
    run = _Run()
    run.add("event-260", _initialisation(run.key.key_id), 0)
    cash = [_cash(run, "float", 15000, 5)]
    tickets = _tickets(run)
    cash.append(_cash(run, "safe_drop", 10000, 900))
    _closures(run, tickets, cash)
    run.add("archive", _archive(), 940)
    return run.vectors
