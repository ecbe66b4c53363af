"""Closing periods: day, month and fiscal-year closures, and the policy that enforces them.

Keeps, for the journal, the last closure of each kind, the date through which everything is
closed, and the business dates that hold activity not yet closed. A day closure first closes any
earlier open day; a month closure first closes the days, and any earlier month; a year closure
first closes day and month. Sales dated in a closed period are refused (``PeriodClosed``); a
previous business day still open past the grace is closed automatically or refuses sales
(``DayNotClosed``), as the store's policy says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fiscal import jet
from fiscal.closing import ClosureKind, fiscal_year_bounds, fold_day, fold_period, month_bounds
from fiscal.errors import DayNotClosed, InvalidInput, PeriodClosed
from fiscal.records import Closure, Event

if TYPE_CHECKING:
    from fiscal.chain import Entry
    from fiscal.journal import Journal, Pending

Bounds = Callable[[dt.date], tuple[dt.date, dt.date]]
KINDS: tuple[ClosureKind, ...] = ("day_closure", "month_closure", "year_closure")


class Periods:
    """Closure bookkeeping of one journal."""

    def __init__(self, journal: Journal, last: dict[str, Mapping[str, Any] | None],
                 open_days: set[dt.date]) -> None:
        self._journal = journal
        self.last = last
        self.open_days = open_days

    @classmethod
    async def load(cls, journal: Journal) -> Periods:
        """Read the last closures and the open business dates from the store."""
        last: dict[str, Mapping[str, Any] | None] = {}
        for kind in KINDS:
            entry = await journal.store.last_of_type(kind)
            last[kind] = entry.record if entry else _handed_over(journal, kind)
        periods = cls(journal, last, set())
        after = periods.closed_through.isoformat() if periods.closed_through else "0000-00-00"
        periods.open_days = {dt.date.fromisoformat(d)
                             for d in await journal.store.open_dates(after)}
        return periods

    @property
    def closed_through(self) -> dt.date | None:
        """The last business date covered by a closure of any kind."""
        ends = [dt.date.fromisoformat(r["period_to"]) for r in self.last.values()
                if r and "period_to" in r]
        return max(ends, default=None)

    def note_activity(self, day: dt.date) -> None:
        """Remember that ``day`` holds records a day closure must fold."""
        self.open_days.add(day)

    async def ensure_open(self, day: dt.date, now: dt.datetime) -> None:
        """Refuse writes into closed periods; apply the open-day policy (lock held)."""
        closed = self.closed_through
        if closed is not None and day <= closed:
            raise PeriodClosed(f"business date {day} is in a closed period (closed through "
                               f"{closed})", field="business_date")
        policy = self._journal.settings.closure
        grace = dt.timedelta(hours=policy.grace_hours)
        stale = sorted(d for d in self.open_days
                       if d < day and now >= self._journal.day_end(d) + grace)
        if not stale:
            return
        if not policy.auto_close:
            raise DayNotClosed(f"business day {stale[-1]} is not closed; close it first",
                               field="business_date")
        pending = await self._day_closures(stale[-1], "system", automatic=True, explicit=False)
        await self._commit(pending, None, now)

    # -- the three closures -----------------------------------------------------------------

    async def close_day(self, operator: str, day: dt.date | None = None, *,
                        idempotency_key: str | None = None) -> list[Entry]:
        """Close ``day`` (default: today's business date) and any earlier open day."""
        async with self._journal.lock:
            if (found := self._journal.replay("close_day", idempotency_key)) is not None:
                return [found]
            now = self._journal.now()
            target = self._target(day, now)
            pending = await self._day_closures(target, operator, automatic=False, explicit=True)
            return await self._commit(pending, _idem("close_day", idempotency_key), now)

    async def close_month(self, operator: str, day: dt.date | None = None, *,
                          idempotency_key: str | None = None) -> list[Entry]:
        """Close the month of ``day`` (default: today), its open days and earlier months."""
        async with self._journal.lock:
            if (found := self._journal.replay("close_month", idempotency_key)) is not None:
                return [found]
            now = self._journal.now()
            today = self._journal.business_date(now)
            period = month_bounds(self._target(day, now))
            self._refuse_closed(period[1])
            pending = await self._day_closures(min(period[1], today), operator,
                                               automatic=False, explicit=False)
            pending += await self._period_closures("month_closure", "day_closure", month_bounds,
                                                   period, pending, operator)
            return await self._commit(pending, _idem("close_month", idempotency_key), now)

    async def close_year(self, operator: str, day: dt.date | None = None, *,
                         idempotency_key: str | None = None) -> list[Entry]:
        """Close the fiscal year of ``day`` (default: today), with its open days and months."""
        async with self._journal.lock:
            if (found := self._journal.replay("close_year", idempotency_key)) is not None:
                return [found]
            now = self._journal.now()
            today = self._journal.business_date(now)
            start_month = self._journal.settings.closure.fiscal_year_start_month
            year = fiscal_year_bounds(self._target(day, now), start_month)
            self._refuse_closed(year[1])
            last_day = min(year[1], today)
            pending = await self._day_closures(last_day, operator, automatic=False,
                                               explicit=False)
            pending += await self._period_closures("month_closure", "day_closure", month_bounds,
                                                   month_bounds(last_day), pending, operator)
            pending += await self._period_closures(
                "year_closure", "month_closure",
                lambda d: fiscal_year_bounds(d, start_month), year, pending, operator)
            return await self._commit(pending, _idem("close_year", idempotency_key), now)

    # -- building closures ------------------------------------------------------------------

    def _target(self, day: dt.date | None, now: dt.datetime) -> dt.date:
        today = self._journal.business_date(now)
        target = day or today
        if target > today:
            raise InvalidInput("cannot close a business date in the future", code="future_date",
                               field="day")
        self._refuse_closed(target)
        return target

    def _refuse_closed(self, day: dt.date) -> None:
        closed = self.closed_through
        if closed is not None and day <= closed:
            raise PeriodClosed(f"{day} is already closed (closed through {closed})",
                               field="day")

    async def _day_closures(self, through: dt.date, operator: str, *, automatic: bool,
                            explicit: bool) -> list[Pending]:
        days = sorted(d for d in self.open_days if d <= through)
        if explicit and through not in days:
            days.append(through)
        pending: list[Pending] = []
        previous = self.last["day_closure"]
        for day in days:
            text = day.isoformat()
            store = self._journal.store
            tickets = [(e.chain_seq, e.record) for e in await store.tickets_on(text)]
            cash = [e.record for e in await store.of_type_on("cash_movement", text, text)]
            closure = fold_day(day, tickets, cash, previous, operator=operator,
                               automatic=automatic)
            pending += _closure_pending(closure)
            previous = closure.model_dump(mode="json")
        return pending

    async def _period_closures(self, kind: ClosureKind, child: str, bounds: Bounds,
                               target: tuple[dt.date, dt.date], earlier: list[Pending],
                               operator: str) -> list[Pending]:
        previous = self.last[kind]
        after = (previous or {}).get("period_to", "0000-00-00")
        stored = await self._journal.store.of_type_on(child, after, target[1].isoformat())
        children = [e.record for e in stored if e.record["period_from"] > after]
        children += [p.record.model_dump(mode="json") for p in earlier
                     if p.record.type == child and p.record.period_from > after]  # type: ignore[union-attr]
        groups: dict[tuple[dt.date, dt.date], list[Mapping[str, Any]]] = {target: []}
        for record in children:
            groups.setdefault(bounds(dt.date.fromisoformat(record["period_from"])), []).append(
                record)
        pending: list[Pending] = []
        for period in sorted(groups):
            closure = fold_period(kind, period, groups[period], previous, operator=operator)
            pending += _closure_pending(closure)
            previous = closure.model_dump(mode="json")
        return pending

    async def _commit(self, pending: list[Pending], idem: str | None,
                      now: dt.datetime) -> list[Entry]:
        entries = await self._journal.commit(pending, idem, now)
        for entry in entries:
            kind = entry.record["type"]
            if kind in KINDS:
                self.last[kind] = entry.record
                if kind == "day_closure":
                    self.open_days.discard(dt.date.fromisoformat(entry.record["period_from"]))
        return entries


def _idem(operation: str, key: str | None) -> str | None:
    return None if key is None else f"{operation}:{key}"


def _closure_pending(closure: Closure) -> list[Pending]:
    from fiscal.journal import Pending  # local: the journal module imports this one lazily

    event = Event(code=jet.PERIOD_CLOSING, operator=closure.operator,
                  description=jet.label(jet.PERIOD_CLOSING),
                  details={"type": closure.type, "period_from": closure.period_from,
                           "period_to": closure.period_to})
    return [Pending(closure, closure.period_from), Pending(event)]


def _handed_over(journal: Journal, kind: str) -> Mapping[str, Any] | None:
    """What the first closure of ``kind`` here continues in a replacement box's journal."""
    handover = journal.continuation
    return handover.previous(kind) if handover is not None else None
