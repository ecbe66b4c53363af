"""Build real journals through the ``Journal`` API, and tamper with them the way an attacker would.

Helpers for the verifier's tests and benchmark: a fake clock, request builders, a rich journal
with every kind of record, a sales-only journal of any size, and raw SQLite edits (triggers
dropped first, as an attacker with file access would do).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import fiscal.testing as fiscal_testing
from fiscal.chain import ChainHead, ChainState, Entry, append
from fiscal.journal import DB_FILE, Journal
from fiscal.keys import BoxKey, Signer, generate
from fiscal.records import (
    AnyRecord,
    ArchiveRecord,
    CashMovement,
    Closure,
    Copy,
    Event,
    Invoice,
    Ticket,
)
from fiscal.requests import (
    CashMovementRequest,
    Discount,
    EventRequest,
    InvoiceRequest,
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
    SaleRequest,
)
from fiscal.settings import JournalSettings
from fiscal.store import Row, decode

RECORD_TYPES: dict[str, Any] = {
    "sale": Ticket, "return": Ticket, "invoice": Invoice, "credit_note": Invoice, "copy": Copy,
    "day_closure": Closure, "month_closure": Closure, "year_closure": Closure,
    "archive": ArchiveRecord, "event": Event, "cash_movement": CashMovement,
}

START = dt.datetime(2026, 1, 28, 8, 0, tzinfo=dt.UTC)


def FakeClock(start: dt.datetime = START,  # noqa: N802
              step: dt.timedelta = dt.timedelta(seconds=30)) -> fiscal_testing.FakeClock:
    """A clock stepping ``step`` per reading; its first reading is ``start + step``."""
    return fiscal_testing.FakeClock(start + step, step)


def sale(operator: str = "alice", *, cash: int = 5000, training: bool = False,
         variant: int = 0) -> SaleRequest:
    """A two-rate sale with discounts, paid by card and cash (change given)."""
    lines = (
        LineRequest(label="Baguette", unit_price=120 + variant, vat_rate=550,
                    quantity_milli=3000),
        LineRequest(label="Vin, rouge | 75cl", unit_price=1299, vat_rate=2000,
                    discount=Discount(kind="percent", value=1000)),
    )
    return SaleRequest(operator=operator, lines=lines, discount=Discount(kind="amount", value=50),
                       payments=(PaymentRequest(tender="card", amount=1000),
                                 PaymentRequest(tender="cash", amount=cash)),
                       training=training)


def small_sale(price: int = 250, rate: int = 1000, tender: str = "cash") -> SaleRequest:
    """A one-line sale paid exactly."""
    line = LineRequest(label="Café", unit_price=price, vat_rate=rate)
    return SaleRequest(operator="bob", lines=(line,),
                       payments=(PaymentRequest(tender=tender, amount=price),))


def refund(original_seq: int, line_no: int, quantity_milli: int, amount: int) -> ReturnRequest:
    """A return of part of one line, refunded in cash."""
    return ReturnRequest(operator="bob", original_seq=original_seq,
                         lines=(ReturnLineRequest(original_line_no=line_no,
                                                  quantity_milli=quantity_milli),),
                         refunds=(PaymentRequest(tender="cash", amount=amount),),
                         reason="damaged")


def invoice(source_seq: int) -> InvoiceRequest:
    """An invoice (or credit note) for a named company."""
    return InvoiceRequest.model_validate({"operator": "alice", "source_seq": source_seq,
                                          "customer": {"name": "ACME, SA | Paris"}})


async def open_journal(data_dir: Path, clock: FakeClock,
                       settings: JournalSettings | None = None) -> Journal:
    """Open (creating) a journal in ``data_dir`` on the fake clock."""
    return await Journal.open(data_dir, settings or JournalSettings(), clock=clock)


async def fill_rich(journal: Journal, clock: FakeClock) -> None:
    """Write every kind of record: sales, returns, copies, invoices, cash, events, day/month/year
    closures, a key rotation and a clock moved backwards."""
    first = await journal.sell(sale())
    await journal.sell(sale(training=True))
    returned = await journal.refund(refund(first.seq, 1, 1000, 116))
    await journal.copy(first.seq, "alice")
    await journal.copy(first.seq, "carol")
    issued = await journal.invoice(invoice(first.seq))
    await journal.copy(issued.seq, "alice")
    await journal.invoice(invoice(returned.seq))
    await journal.cash_movement(CashMovementRequest(kind="float", operator="alice", amount=10000))
    await journal.cash_movement(CashMovementRequest(kind="safe_drop", operator="alice",
                                                    amount=3000))
    await journal.record_event(EventRequest(code=1040, operator="alice"))
    await journal.periods.close_day("boss")
    clock.jump(dt.timedelta(days=1))
    await journal.sell(small_sale())
    clock.jump(dt.timedelta(minutes=-20))
    await journal.sell(small_sale(399, 2000, "card"))
    await journal.rotate_key("boss")
    await journal.sell(sale(variant=3))
    clock.jump(dt.timedelta(days=4))
    await journal.sell(small_sale(120, 550))
    await journal.periods.close_month("boss")
    clock.jump(dt.timedelta(days=30))
    await journal.sell(small_sale(700))
    await journal.periods.close_year("boss")


async def build_rich(data_dir: Path) -> FakeClock:
    """Create a rich journal in ``data_dir`` (closed afterwards); return its clock."""
    clock = FakeClock()
    journal = await open_journal(data_dir, clock)
    try:
        await fill_rich(journal, clock)
    finally:
        await journal.close()
    return clock


async def build_sales(data_dir: Path, count: int) -> None:
    """Create a journal of ``count`` sales over several days (closed automatically)."""
    clock = FakeClock()
    journal = await open_journal(data_dir, clock)
    try:
        for index in range(count):
            request = sale(variant=index % 7) if index % 3 else small_sale(100 + index % 50)
            await journal.sell(request)
    finally:
        await journal.close()


# -- raw access, as an attacker ---------------------------------------------------------------

ENTRY_COLUMNS = ("seq", "chain", "chain_seq", "type", "business_date", "ref_seq", "idem_key",
                 "sig", "head_sig", "at_utc", "body")


@contextmanager
def raw_db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """Open the journal file with plain sqlite3, triggers dropped, committing on exit."""
    db = sqlite3.connect(data_dir / DB_FILE, isolation_level=None)
    try:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute(f"DROP TRIGGER {name}")
        yield db
    finally:
        db.close()


@contextmanager
def read_db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """Open the journal file read-only."""
    db = sqlite3.connect(f"{(data_dir / DB_FILE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def bodies(data_dir: Path) -> list[str]:
    """Return the stored entry bodies in seq order."""
    with read_db(data_dir) as db:
        return [str(row[0]) for row in db.execute("SELECT body FROM entries ORDER BY seq")]


def heads(data_dir: Path) -> dict[str, tuple[int, int, str, str]]:
    """Return the heads table as ``verify_entries`` takes it."""
    with read_db(data_dir) as db:
        rows = db.execute("SELECT chain, chain_seq, seq, sig, head_sig FROM heads").fetchall()
    return {str(r[0]): (int(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows}


def row(data_dir: Path, seq: int) -> dict[str, Any]:
    """Return one entries row as a dict."""
    with read_db(data_dir) as db:
        found = db.execute(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries WHERE seq = ?",
                           (seq,)).fetchone()
    return dict(zip(ENTRY_COLUMNS, found, strict=True))


def last_seq(data_dir: Path) -> int:
    """Return the highest stored seq."""
    with read_db(data_dir) as db:
        return int(db.execute("SELECT max(seq) FROM entries").fetchone()[0])


# -- crafting validly signed entries that break the rules ----------------------------------------

def parse_utc(text: str) -> dt.datetime:
    """Parse an entry's ``at_utc``."""
    return dt.datetime.fromisoformat(text)


async def append_unchecked(data_dir: Path, record: AnyRecord, *, business_date: str | None = None,
                           ref_seq: int | None = None, now: dt.datetime | None = None,
                           signer: Signer | None = None,
                           settings: JournalSettings | None = None) -> Entry:
    """Chain, sign and store ``record`` as the journal would, skipping its rules.

    Signed with the box key unless ``signer``; no clock event (1050) is written either.
    """
    journal = await open_journal(data_dir, FakeClock(), settings)
    try:
        state = journal.state
        moment = now or parse_utc(state.last_at_utc or START.isoformat()) + dt.timedelta(
            seconds=1)
        _, entry, head = append(state, record, signer or journal.key, moment)
        await journal.store.insert([Row(entry, head, business_date, ref_seq)])
    finally:
        await journal.close()
    return entry


def entry(data_dir: Path, seq: int) -> Entry:
    """Return the stored entry ``seq``."""
    return decode(row(data_dir, seq)["body"])


def resign(data_dir: Path, seq: int, signer: Signer) -> Entry:
    """Rebuild entry ``seq`` as if ``signer`` had signed it, and store it in place."""
    original = entry(data_dir, seq)
    with read_db(data_dir) as db:
        found = db.execute("SELECT chain_seq, seq, sig, head_sig FROM entries WHERE chain = ? "
                           "AND chain_seq = ?", (original.chain, original.chain_seq - 1)).fetchone()
    heads = {} if found is None else {original.chain: ChainHead(original.chain, *found)}
    state = ChainState(store_id=original.store_id, register_id=original.register_id,
                       timezone="Europe/Paris", seq=seq - 1, heads=MappingProxyType(heads))
    record = RECORD_TYPES[original.record["type"]].model_validate(dict(original.record),
                                                                  strict=False)
    _, rebuilt, _ = append(state, record, signer, parse_utc(original.at_utc))
    with raw_db(data_dir) as db:
        db.execute("UPDATE entries SET body = ?, sig = ? WHERE seq = ?",
                   (rebuilt.body().decode(), rebuilt.sig, seq))
    return rebuilt


def other_key() -> BoxKey:
    """A P-256 key that is not the journal's."""
    return generate("intruder", START)
