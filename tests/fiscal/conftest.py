"""Shared fixtures of the journal tests: a fake clock, a fresh journal, a sale builder.

Fixtures (generic on purpose, other test modules may use them):

* ``clock`` — a ``FakeClock`` starting on Friday 2026-11-20 at 10:00 in Paris; every reading
  advances it by one second, ``advance``/``set``/``set_local`` move it.
* ``open_journal`` — ``await open_journal(settings=None, data_dir=None, clock=None)`` opens a
  ``Journal`` (default: in ``tmp_path/"journal"`` with the ``clock``); everything it opened is
  closed at teardown, and the test fails if the journal code left a SQLite connection open
  (a leaked aiosqlite worker thread would hang the interpreter at exit).
* ``journal`` — a fresh ``Journal`` opened by ``open_journal()``.
* ``sale_request`` — ``sale_request(*prices, ...)`` builds a ``SaleRequest`` paid exactly.
* ``snapshot`` — ``snapshot(journal)`` returns what must not change when a write is refused:
  the state's sequence, its heads, and the rows and heads stored in SQLite.
"""

from __future__ import annotations

import datetime as dt
import gc
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite
import pytest

import fiscal.testing as fiscal_testing
from fiscal.journal import DB_FILE, Journal
from fiscal.pricing import price_ticket
from fiscal.requests import Discount, LineRequest, PaymentRequest, SaleRequest
from fiscal.settings import JournalSettings

PARIS = ZoneInfo("Europe/Paris")
START = dt.datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)


def FakeClock(start: dt.datetime = START) -> fiscal_testing.FakeClock:  # noqa: N802
    """The shared fake clock, starting on 2026-11-20 10:00 Paris, one second per reading."""
    return fiscal_testing.FakeClock(start)


OpenJournal = Callable[..., Awaitable[Journal]]


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 2026-11-20 10:00 Paris time."""
    return FakeClock()


@pytest.fixture
async def open_journal(tmp_path: Path, clock: FakeClock) -> AsyncIterator[OpenJournal]:
    """A factory opening journals (closed at teardown)."""
    opened: list[Journal] = []

    async def _open(settings: JournalSettings | None = None, data_dir: Path | None = None,
                    clock_: Callable[[], dt.datetime] | None = None) -> Journal:
        journal = await Journal.open(data_dir or tmp_path / "journal", settings,
                                     clock=clock_ or clock)
        opened.append(journal)
        return journal

    before = set(threading.enumerate())
    yield _open
    for journal in opened:
        await journal.close()
    leaked = await close_leaked_connections(before)
    if leaked:
        pytest.fail(f"the journal code left {leaked} SQLite connection(s) open", pytrace=False)


async def close_leaked_connections(before: set[threading.Thread]) -> int:
    """Stop the aiosqlite connections started after ``before`` and still open; count them.

    A connection nobody closed keeps a non-daemon worker thread blocked forever (its
    ``__del__`` warns first and, with warnings as errors, never stops it): close what is still
    reachable, and wake orphan workers with aiosqlite's stop sentinel (private API, test only).
    """
    workers = [t for t in threading.enumerate()
               if t not in before and "_connection_worker_thread" in t.name]
    for worker in workers:
        worker.join(0.5)  # workers of properly closed connections are finishing
    leaked = [t for t in workers if t.is_alive()]
    if not leaked:
        return 0
    for connection in gc.get_objects():
        if isinstance(connection, aiosqlite.Connection) and connection._thread in leaked:
            await connection.close()
    stop = aiosqlite.core._STOP_RUNNING_SENTINEL
    for worker in leaked:
        if worker.is_alive():
            worker._args[0].put((None, lambda: stop))  # type: ignore[attr-defined]
            worker.join(5)
    return len(leaked)


@pytest.fixture
async def journal(open_journal: OpenJournal) -> Journal:
    """A fresh journal with default settings and the fake clock."""
    return await open_journal()


def build_sale(*prices: int, rate: int = 2000, lines: Sequence[LineRequest] | None = None,
               payments: Sequence[PaymentRequest] | None = None, tender: str = "cash",
               discount: Discount | None = None, training: bool = False,
               operator: str = "alice", settings: JournalSettings | None = None) -> SaleRequest:
    """Build a sale of one line per price (one piece each), paid exactly in ``tender``
    (no payment when the total is zero).

    Computing the exact payment prices the lines, which raises ``InvalidInput`` for bad lines:
    give ``payments`` explicitly to build a request the journal itself must refuse.
    """
    if lines is None:
        lines = [LineRequest(label=f"Item {i + 1}", unit_price=price, vat_rate=rate)
                 for i, price in enumerate(prices or (1000,))]
    if payments is None:
        total = price_ticket(lines, discount, settings or JournalSettings()).total
        payments = [PaymentRequest(tender=tender, amount=total)] if total else []
    return SaleRequest(operator=operator, lines=tuple(lines), discount=discount,
                       payments=tuple(payments), training=training)


@pytest.fixture
def sale_request() -> Callable[..., SaleRequest]:
    """The sale builder (see ``build_sale``)."""
    return build_sale


def take_snapshot(journal: Journal) -> tuple[Any, ...]:
    """Return the journal's sequence, heads, and its stored rows and heads (read from disk)."""
    with sqlite3.connect(f"file:{journal.data_dir / DB_FILE}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT count(*), max(seq) FROM entries").fetchone()
        heads = db.execute("SELECT * FROM heads ORDER BY chain").fetchall()
    db.close()
    return journal.state.seq, dict(journal.heads()), rows, heads


@pytest.fixture
def snapshot() -> Callable[[Journal], tuple[Any, ...]]:
    """The snapshot function (see ``take_snapshot``)."""
    return take_snapshot
