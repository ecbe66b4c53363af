"""Properties of the verifier over real journals: any valid history verifies clean, and every way
an attacker with the journal file can alter it is reported at the entry it touched."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from journal_factory import (
    FakeClock,
    append_unchecked,
    build_rich,
    entry,
    invoice,
    last_seq,
    open_journal,
    other_key,
    parse_utc,
    raw_db,
    refund,
    resign,
    sale,
    small_sale,
)

from fiscal.errors import FiscalError
from fiscal.journal import Journal
from fiscal.records import CashKind, Event
from fiscal.requests import CashMovementRequest, EventRequest
from fiscal.verify import Report, verify_data_dir

PROPERTY = settings(deadline=None, max_examples=40,
                    suppress_health_check=[HealthCheck.too_slow])
COLUMNS = ("body", "seq", "chain", "chain_seq", "type", "business_date", "ref_seq", "sig",
           "at_utc")
"""The stored fields of an entry the verifier answers for (``idem_key`` is not fiscal data;
``head_sig`` only matters for a chain's last entry, checked through the heads table)."""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal with every kind of record, a key rotation and a clock moved back."""
    data_dir = tmp_path_factory.mktemp("template")
    asyncio.run(build_rich(data_dir))
    return data_dir


@contextmanager
def copy_of(template: Path) -> Iterator[Path]:
    """A scratch copy of the template journal."""
    with tempfile.TemporaryDirectory() as scratch:
        yield Path(shutil.copytree(template, Path(scratch) / "journal"))


def seqs_reported(report: Report) -> set[int | None]:
    """The seqs the findings point at."""
    return {finding.seq for finding in report.findings}


def check(data_dir: Path, acked_through: int | None = None) -> Report:
    """Verify in-process."""
    return verify_data_dir(data_dir, workers=1, acked_through=acked_through)


# -- (a) valid histories ---------------------------------------------------------------------

WAITS = st.sampled_from([dt.timedelta(minutes=7), dt.timedelta(hours=5), dt.timedelta(days=1),
                         dt.timedelta(days=3), dt.timedelta(days=35)])
SALES = st.one_of(st.tuples(st.just("sale"), st.integers(0, 6)),
                  st.tuples(st.just("small"), st.integers(50, 5000)))
OPERATIONS = st.lists(st.one_of(
    SALES, SALES, SALES,
    st.tuples(st.just("training"), st.just(0)),
    st.tuples(st.just("return"), st.integers(0, 40)),
    st.tuples(st.just("copy"), st.integers(0, 40)),
    st.tuples(st.just("invoice"), st.integers(0, 40)),
    st.tuples(st.just("cash"), st.sampled_from(["float", "cash_in", "cash_out", "safe_drop"])),
    st.tuples(st.just("event"), st.sampled_from([1000, 1010, 1040, 1060])),
    st.tuples(st.just("wait"), WAITS),
    st.tuples(st.just("back"), st.integers(1, 180)),
    st.tuples(st.just("close"), st.sampled_from(["day", "month", "year"])),
    st.tuples(st.just("rotate"), st.just(0)),
), min_size=3, max_size=30)


class History:
    """Plays operations on a journal; refused operations (closed period, over-return, …) are
    simply not written, as at a real till."""

    def __init__(self, journal: Journal, clock: FakeClock) -> None:
        self.journal, self.clock = journal, clock
        self.tickets: list[Any] = []

    async def play(self, name: str, arg: Any) -> None:
        """Run one operation."""
        with suppress(FiscalError):
            await getattr(self, f"_{name}")(arg)

    def _pick(self, index: int) -> Any:
        if not self.tickets:
            raise FiscalError("nothing to refer to yet")
        return self.tickets[index % len(self.tickets)]

    async def _sale(self, variant: int) -> None:
        self.tickets.append(await self.journal.sell(sale(variant=variant)))

    async def _small(self, price: int) -> None:
        self.tickets.append(await self.journal.sell(small_sale(price)))

    async def _training(self, _: int) -> None:
        await self.journal.sell(sale(training=True))

    async def _return(self, index: int) -> None:
        original = self._pick(index)
        line = original.record["lines"][0]
        self.tickets.append(await self.journal.refund(
            refund(original.seq, 1, line["quantity_milli"], line["net"])))

    async def _copy(self, index: int) -> None:
        await self.journal.copy(self._pick(index).seq, "carol")

    async def _invoice(self, index: int) -> None:
        await self.journal.invoice(invoice(self._pick(index).seq))

    async def _cash(self, kind: CashKind) -> None:
        await self.journal.cash_movement(CashMovementRequest(kind=kind, operator="alice",
                                                             amount=2500))

    async def _event(self, code: int) -> None:
        await self.journal.record_event(EventRequest(code=code, operator="alice"))

    async def _wait(self, delta: dt.timedelta) -> None:
        self.clock.jump(delta)

    async def _back(self, minutes: int) -> None:
        self.clock.jump(-dt.timedelta(minutes=minutes))

    async def _close(self, period: str) -> None:
        await getattr(self.journal.periods, f"close_{period}")("boss")

    async def _rotate(self, _: int) -> None:
        await self.journal.rotate_key("boss")


async def write_history(data_dir: Path, operations: list[tuple[str, Any]]) -> None:
    """Open a journal in ``data_dir`` and play ``operations`` on it."""
    clock = FakeClock()
    journal = await open_journal(data_dir, clock)
    try:
        history = History(journal, clock)
        for name, arg in operations:
            await history.play(name, arg)
    finally:
        await journal.close()


@PROPERTY
@given(OPERATIONS)
def test_any_valid_history_verifies_clean(operations: list[tuple[str, Any]]) -> None:
    """Whatever sales, returns, copies, invoices, cash, events, closures, key rotations and clock
    moves a till goes through, its journal verifies clean."""
    with tempfile.TemporaryDirectory() as scratch:
        asyncio.run(write_history(Path(scratch), operations))
        report = check(Path(scratch))
    assert report.ok, report.findings


# -- (b) flipped bytes -------------------------------------------------------------------------

def _flip_text(value: str, position: int, mask: int) -> str | bytes:
    data = bytearray(value.encode())
    data[position % len(data)] ^= mask
    try:
        return data.decode()
    except UnicodeDecodeError:
        return bytes(data)  # stored as a BLOB, as an attacker may


def flipped(value: Any, position: int, mask: int) -> Any:
    """``value`` with one byte (or one bit of an integer) changed."""
    if isinstance(value, int):
        return value ^ (1 << (position % 20))
    return _flip_text(value, position, mask)


@settings(PROPERTY, max_examples=150)
@given(st.data(), st.sampled_from(COLUMNS), st.integers(0, 10**6), st.integers(1, 255))
def test_any_flipped_byte_is_reported_at_its_entry(template: Path, data: st.DataObject,
                                                   column: str, position: int,
                                                   mask: int) -> None:
    """Changing any byte of any stored field of any entry is reported at that entry's seq."""
    seq = data.draw(st.integers(1, last_seq(template)), label="seq")
    with copy_of(template) as journal:
        with raw_db(journal) as db:
            value = db.execute(f"SELECT {column} FROM entries WHERE seq = ?", (seq,)).fetchone()[0]
            assume(value is not None)
            try:
                db.execute(f"UPDATE entries SET {column} = ? WHERE seq = ?",
                           (flipped(value, position, mask), seq))
            except sqlite3.IntegrityError:
                assume(False)  # the new seq or chain position is taken
        assert seq in seqs_reported(check(journal))


# -- (c) deleted entries ---------------------------------------------------------------------

@PROPERTY
@given(st.data())
def test_any_deleted_entry_is_reported(template: Path, data: st.DataObject) -> None:
    """Deleting any entry, in the middle or at the tail, is reported at its seq."""
    seq = data.draw(st.integers(1, last_seq(template)), label="seq")
    with copy_of(template) as journal:
        with raw_db(journal) as db:
            db.execute("DELETE FROM entries WHERE seq = ?", (seq,))
        assert seq in seqs_reported(check(journal))


def _restore_heads(db: sqlite3.Connection, chains: set[str]) -> None:
    for chain in chains:
        previous = db.execute("SELECT chain_seq, seq, sig, head_sig FROM entries WHERE chain = ?"
                              " ORDER BY chain_seq DESC LIMIT 1", (chain,)).fetchone()
        if previous is None:
            db.execute("DELETE FROM heads WHERE chain = ?", (chain,))
        else:
            db.execute("UPDATE heads SET chain_seq = ?, seq = ?, sig = ?, head_sig = ? "
                       "WHERE chain = ?", (*previous, chain))


@PROPERTY
@given(st.integers(1, 6))
def test_cut_tail_with_older_heads_needs_the_watermark(template: Path, count: int) -> None:
    """Cutting the last entries and putting back the older (validly signed) heads leaves a valid
    shorter journal: only the cloud's acknowledged watermark reveals it."""
    last = last_seq(template)
    with copy_of(template) as journal:
        with raw_db(journal) as db:
            chains = {row[0] for row in db.execute("SELECT chain FROM entries WHERE seq > ?",
                                                   (last - count,))}
            db.execute("DELETE FROM entries WHERE seq > ?", (last - count,))
            _restore_heads(db, chains)
        assert check(journal).ok
        watermark = check(journal, acked_through=last)
    assert [(f.code, f.seq) for f in watermark.findings] == [("below_watermark", last)]


# -- (d) reordered and duplicated entries ----------------------------------------------------

def _row(db: sqlite3.Connection, seq: int) -> tuple[Any, ...]:
    return tuple(db.execute("SELECT chain, chain_seq, type, business_date, ref_seq, sig, "
                            "head_sig, at_utc, body FROM entries WHERE seq = ?", (seq,)).fetchone())


def _put(db: sqlite3.Connection, seq: int, row: tuple[Any, ...]) -> None:
    db.execute("UPDATE entries SET chain = ?, chain_seq = ?, type = ?, business_date = ?, "
               "ref_seq = ?, sig = ?, head_sig = ?, at_utc = ?, body = ? WHERE seq = ?",
               (*row, seq))


@PROPERTY
@given(st.data())
def test_swapped_entries_are_reported(template: Path, data: st.DataObject) -> None:
    """Two entries stored in each other's place are both reported."""
    first = data.draw(st.integers(1, last_seq(template) - 1), label="first")
    second = data.draw(st.integers(first + 1, last_seq(template)), label="second")
    with copy_of(template) as journal:
        with raw_db(journal) as db:
            one, two = _row(db, first), _row(db, second)
            db.execute("UPDATE entries SET chain_seq = -chain_seq WHERE seq IN (?, ?)",
                       (first, second))
            _put(db, first, two)
            _put(db, second, one)
        assert {first, second} <= seqs_reported(check(journal))


@PROPERTY
@given(st.data())
def test_duplicated_entry_is_reported(template: Path, data: st.DataObject) -> None:
    """An entry stored again further on is reported at the seq it claims."""
    seq = data.draw(st.integers(1, last_seq(template)), label="seq")
    at = data.draw(st.integers(last_seq(template) + 1, last_seq(template) + 3), label="at")
    with copy_of(template) as journal:
        with raw_db(journal) as db:
            db.execute("INSERT INTO entries (seq, chain, chain_seq, type, business_date, ref_seq,"
                       " sig, head_sig, at_utc, body) SELECT ?, chain, chain_seq + 1000, type, "
                       "business_date, ref_seq, sig, head_sig, at_utc, body FROM entries "
                       "WHERE seq = ?", (at, seq))
        assert seq in seqs_reported(check(journal))


# -- (e) another key ---------------------------------------------------------------------------

@PROPERTY
@given(st.data())
def test_entry_signed_by_another_key_is_reported(template: Path, data: st.DataObject) -> None:
    """An entry rebuilt and validly signed by a key the journal never established is reported
    as such at its seq."""
    seq = data.draw(st.integers(1, last_seq(template)), label="seq")
    with copy_of(template) as journal:
        resign(journal, seq, other_key())
        report = check(journal)
    assert seq in {f.seq for f in report.findings if f.code == "unknown_key"}


# -- (f) the clock ---------------------------------------------------------------------------

@settings(deadline=None, max_examples=10)
@given(st.integers(1, 60 * 24 * 40))
def test_clock_back_without_event_is_reported(template: Path, minutes: int) -> None:
    """An entry dated before its predecessor, with no clock event (1050) before it, is
    reported at its seq; the journal's own clock events make the same move legal."""
    with copy_of(template) as journal:
        last = parse_utc(entry(journal, last_seq(journal)).at_utc)
        crafted = asyncio.run(append_unchecked(journal, Event(
            code=1040, operator="eve", description="Drawer opened without sale"),
            now=last - dt.timedelta(minutes=minutes)))
        report = check(journal)
    assert [(f.code, f.seq) for f in report.findings] == [("clock_backwards", crafted.seq)]


def test_fill_rich_moves_the_clock_back_legally(template: Path) -> None:
    """The template itself holds a clock moved back (with its 1050 event) and verifies clean."""
    codes = [entry(template, seq).record.get("code") for seq in range(1, last_seq(template) + 1)]
    assert 1050 in codes
    assert check(template).ok
