"""Child program of the crash-safety test: appends to a journal until it is killed.

Run it as ``python crash_child.py DATA_DIR SEED`` (reports on stdout), or call ``run`` in a
process forked from one that already imported everything (the test does that: no interpreter
start-up per round). It opens the journal in ``DATA_DIR`` and loops over operations — mostly
sales, and now and then a return, a cash movement, a day closure, a move to the next day (the
next sale then closes the previous day automatically), a key rotation or a clock jump back (a
1050 event and the sale commit together) — so that kills land in single and multi-entry
commits and between a rotation's files and its event alike.

After each operation returns it writes one line ``"<seq> <sig>\\n"`` per entry handed back to
it, all in one ``write`` (atomic on a pipe): those appends are confirmed, and must survive the
kill. On an unexpected error it writes ``"! <error>\\n"`` and exits with status 2.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from fiscal.chain import Entry
from fiscal.journal import Journal
from fiscal.requests import (
    CashMovementRequest,
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
    SaleRequest,
)

PARIS = ZoneInfo("Europe/Paris")
BASE = dt.datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)
RATES = (2000, 1000, 550, 210, 0)


class StepClock:
    """A clock that moves forward by a random step at every reading, and can be moved."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.current = BASE.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        self.current += dt.timedelta(milliseconds=self.rng.randint(1, 3000))
        return self.current

    def catch_up(self, journal: Journal) -> None:
        """Continue after the journal's last entry, on a business day still open."""
        last = journal.state.last_at_utc
        if last is not None:
            self.current = max(self.current, dt.datetime.fromisoformat(last))
        closed = journal.periods.closed_through
        if closed is not None and journal.business_date(self.current) <= closed:
            self.next_day(closed)

    def next_day(self, day: dt.date) -> None:
        """Jump to 10:00 local on the day after ``day``."""
        morning = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(10), PARIS)
        self.current = morning.astimezone(dt.UTC)


class Worker:
    """The operation loop of one child."""

    def __init__(self, journal: Journal, clock: StepClock, rng: random.Random, out: int) -> None:
        self.journal = journal
        self.clock = clock
        self.rng = rng
        self.out = out
        self.returnable: list[tuple[int, int]] = []  # (seq, net of line 1) of our sales

    def confirm(self, entries: Sequence[Entry]) -> None:
        """Tell the parent these appends returned (one atomic write)."""
        os.write(self.out, "".join(f"{e.seq} {e.sig}\n" for e in entries).encode())

    async def sell(self) -> None:
        """A sale of one to three lines, paid exactly in cash or card."""
        lines = tuple(LineRequest(label=f"Item {i}", unit_price=self.rng.randint(1, 50_000),
                                  vat_rate=self.rng.choice(RATES))
                      for i in range(self.rng.randint(1, 3)))
        total = sum(line.unit_price for line in lines)
        tender = self.rng.choice(("cash", "card"))
        entry = await self.journal.sell(SaleRequest(
            operator="crash", lines=lines,
            payments=(PaymentRequest(tender=tender, amount=total),)))
        self.returnable.append((entry.seq, lines[0].unit_price))
        self.confirm([entry])

    async def refund(self) -> None:
        """Return the first line of one of our earlier sales."""
        if not self.returnable:
            return await self.sell()
        seq, amount = self.returnable.pop(self.rng.randrange(len(self.returnable)))
        entry = await self.journal.refund(ReturnRequest(
            operator="crash", original_seq=seq,
            lines=(ReturnLineRequest(original_line_no=1, quantity_milli=1000),),
            refunds=(PaymentRequest(tender="cash", amount=amount),)))
        self.confirm([entry])
        return None

    async def cash_in(self) -> None:
        """A cash movement."""
        self.confirm([await self.journal.cash_movement(CashMovementRequest(
            kind="cash_in", operator="crash", amount=self.rng.randint(1, 10_000)))])

    async def close_day(self) -> None:
        """Close today (closure and event in one commit), then move to tomorrow."""
        self.confirm(await self.journal.periods.close_day("crash"))
        closed = self.journal.periods.closed_through
        assert closed is not None
        self.clock.next_day(closed)

    async def next_day(self) -> None:
        """Move to tomorrow without closing: the next sale closes today automatically."""
        self.clock.next_day(self.journal.business_date(self.clock.current))
        await self.sell()

    async def clock_back(self) -> None:
        """Move the clock back a few seconds, then sell (1050 event + sale in one commit)."""
        self.clock.current -= dt.timedelta(seconds=self.rng.randint(5, 60))
        await self.sell()

    async def rotate_key(self) -> None:
        """Rotate the box key (next key file, event, rename)."""
        self.confirm([await self.journal.rotate_key("crash")])

    async def step(self) -> None:
        """One random operation."""
        roll = self.rng.random()
        for threshold, operation in ((0.80, self.sell), (0.87, self.refund),
                                     (0.91, self.cash_in), (0.94, self.close_day),
                                     (0.96, self.next_day), (0.97, self.rotate_key)):
            if roll < threshold:
                return await operation()
        return await self.clock_back()


async def _loop(data_dir: Path, seed: int, out: int) -> None:
    rng = random.Random(seed)
    clock = StepClock(rng)
    journal = await Journal.open(data_dir, clock=clock)
    clock.catch_up(journal)
    worker = Worker(journal, clock, rng, out)
    while True:
        await worker.step()


def run(data_dir: Path, seed: int, out: int) -> int:
    """Append until killed; return an exit status only on an unexpected error."""
    try:
        asyncio.run(_loop(data_dir, seed, out))
    except BaseException as error:  # report anything: the parent fails the test with it
        message = "".join(traceback.format_exception_only(error)).strip().replace("\n", " | ")
        os.write(out, f"! {message}\n".encode())
        traceback.print_exc()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]), int(sys.argv[2]), sys.stdout.fileno()))
