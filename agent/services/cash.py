"""Cash sessions: open with a float, cash in/out, safe drop, X, close with the count → Z.

One cash session may be open at a time on the box (the journal is the register's). Opening it
journals the float as a cash movement; closing it (a manager) journals the counted amounts and
the variance per tender (JET 1140 "Cash count"), then the day closure of the session's business
date — the Z — and ends the session. After the Z that business date is closed: sales in it are
refused by the journal, and the next session opens on the next business day.

The same service closes periods on request (day, month, fiscal year) — refusing to close the
open session's business date behind its back (close the session instead, it counts the
drawer) — and opens the drawer without a sale (JET 1040, after the kick was sent).

Every journal write first passes ``ensure_fiscal_writes`` and carries the request's
idempotency key, suffixed with what is written (``key:float``, ``key:movement``, ``key:count``,
``key:close``, ``key:drawer``…) so that one key reused on another route never finds another
route's entry. Events on the bus:
``cash`` (``session_opened``, ``movement``, ``session_closed``, ``drawer_opened``) and
``closure`` (kind, seq, period).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from agent.boxdb import BoxDb, Row
from agent.errors import conflict, invalid
from agent.events import EventBus
from agent.observability import Health
from agent.services.access import Approval
from agent.services.guard import ensure_fiscal_writes
from agent.services.reports import (
    CLOSURE_TYPES,
    ClosureReport,
    TenderCount,
    XReport,
    closure_report,
    count_variances,
    x_report,
)
from fiscal.chain import Entry
from fiscal.closing import fiscal_year_bounds, month_bounds
from fiscal.errors import PeriodClosed
from fiscal.journal import Journal
from fiscal.money import check_text
from fiscal.requests import CashMovementRequest, EventRequest

MovementKind = Literal["cash_in", "cash_out", "safe_drop"]
PeriodKind = Literal["day", "month", "year"]
NEEDS_APPROVAL: frozenset[str] = frozenset({"cash_out", "safe_drop"})
MANAGER_OVERRIDE, DRAWER_NO_SALE, CASH_COUNT = 1020, 1040, 1140

SCHEMA = """
CREATE TABLE IF NOT EXISTS cash_sessions (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    business_date TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    float_amount INTEGER NOT NULL,
    from_seq INTEGER NOT NULL,
    float_seq INTEGER,
    closed_by TEXT,
    closed_at TEXT,
    count_seq INTEGER,
    closure_seq INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS cash_sessions_one_open ON cash_sessions (state)
    WHERE state = 'open';
"""
COLUMNS = ("id, state, business_date, opened_by, opened_at, float_amount, from_seq, float_seq, "
           "closed_by, closed_at, count_seq, closure_seq")


@dataclass(frozen=True)
class CashSession:
    """A cash session: who opened it when, with which float, from which journal entry."""

    id: int
    state: Literal["open", "closed"]
    business_date: str
    opened_by: str
    opened_at: str
    float_amount: int
    from_seq: int
    """The first journal entry that belongs to the session (its float, when there is one)."""
    float_seq: int | None = None
    closed_by: str | None = None
    closed_at: str | None = None
    count_seq: int | None = None
    closure_seq: int | None = None


@dataclass(frozen=True)
class SessionStatus:
    """The open session (if any), the cash expected in the drawer, whether a Z is due."""

    session: CashSession | None
    business_date: str
    expected_cash: int | None
    day_closure_due: bool


@dataclass(frozen=True)
class Movement:
    """A journaled cash movement and the cash expected in the drawer after it."""

    entry: Entry
    expected_cash: int
    approved_by: str | None


@dataclass(frozen=True)
class Closing:
    """A closed session: the count, the Z (null if the day closed without one), the count's seq."""

    session: CashSession
    counts: list[TenderCount]
    z: ClosureReport | None
    count_seq: int


def sub_key(key: str | None, suffix: str) -> str | None:
    """A derived idempotency key for the second write of one request."""
    return None if key is None else f"{key}:{suffix}"


def _session(row: Row) -> CashSession:
    return CashSession(*row)


class CashDesk:
    """The cash sessions of the till, the closures, the drawer opened without a sale."""

    def __init__(self, db: BoxDb, journal: Journal, health: Health, bus: EventBus) -> None:
        self.db, self.journal, self.health, self.bus = db, journal, health, bus
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, db: BoxDb, journal: Journal, health: Health,
                   bus: EventBus) -> CashDesk:
        """Create the tables if needed."""
        await db.create(SCHEMA)
        return cls(db, journal, health, bus)

    # -- reading ----------------------------------------------------------------------------

    async def current(self) -> CashSession | None:
        """The open cash session, if any (one query: cheap enough for every sale)."""
        row = await self.db.fetch_one(
            f"SELECT {COLUMNS} FROM cash_sessions WHERE state = 'open'")
        return None if row is None else _session(row)

    async def session(self, session_id: int) -> CashSession | None:
        """A session by id."""
        row = await self.db.fetch_one(f"SELECT {COLUMNS} FROM cash_sessions WHERE id = ?",
                                      (session_id,))
        return None if row is None else _session(row)

    def today(self) -> dt.date:
        """The business date now."""
        return self.journal.business_date(self.journal.now())

    async def status(self) -> SessionStatus:
        """The open session, its expected cash, and whether a day closure is due."""
        session = await self.current()
        today = self.today()
        due = any(day < today for day in self.journal.periods.open_days)
        if session is None:
            return SessionStatus(None, today.isoformat(), None, due)
        due = due or session.business_date < today.isoformat()
        expected = (await self.x_report(session)).expected_cash
        return SessionStatus(session, session.business_date, expected, due)

    async def x_report(self, session: CashSession) -> XReport:
        """The X report of a session: everything journaled since it opened."""
        through = self.journal.state.seq
        entries = [e async for e in self.journal.entries(session.from_seq, through)]
        return x_report(entries, business_date=dt.date.fromisoformat(session.business_date),
                        through_seq=through, from_seq=session.from_seq)

    async def require_open(self) -> CashSession:
        """The open session, or 409 ``no_cash_session``."""
        session = await self.current()
        if session is None:
            raise conflict("no_cash_session", "no cash session is open; open one with a float")
        return session

    # -- opening ----------------------------------------------------------------------------

    async def open_session(self, operator: str, float_amount: int,
                           key: str | None = None) -> CashSession:
        """Open a session: journal the float (when not zero), remember the session."""
        async with self._lock:
            if (replayed := await self._replayed_open(key)) is not None:
                return replayed
            if (current := await self.current()) is not None:
                raise conflict("cash_session_open", f"cash session {current.id} is open "
                               f"since {current.opened_at}")
            today = self.today()
            self._refuse_closed_day(today)
            ensure_fiscal_writes(self.health)
            from_seq, float_seq, day = self.journal.state.seq + 1, None, today.isoformat()
            if float_amount:
                entry = await self.journal.cash_movement(CashMovementRequest(
                    kind="float", operator=operator, amount=float_amount),
                    idempotency_key=sub_key(key, "float"))
                from_seq = float_seq = entry.seq
                day = str(entry.record["business_date"])
            session = await self._insert(operator, float_amount, from_seq, float_seq, day)
        self.bus.publish("cash", {"action": "session_opened", "session_id": session.id,
                                  "float": float_amount, "operator": operator,
                                  "business_date": day})
        return session

    async def _replayed_open(self, key: str | None) -> CashSession | None:
        """The session a retried open already created (the float is found by its key)."""
        found = self.journal.replay("cash", sub_key(key, "float"))
        if found is None:
            return None
        row = await self.db.fetch_one(f"SELECT {COLUMNS} FROM cash_sessions WHERE float_seq = ?",
                                      (found.seq,))
        return None if row is None else _session(row)

    def _refuse_closed_day(self, today: dt.date) -> None:
        closed = self.journal.periods.closed_through
        if closed is not None and today <= closed:
            raise conflict("day_closed", f"business day {today} is closed (closed through "
                           f"{closed}); the next session opens on the next business day")

    async def _insert(self, operator: str, float_amount: int, from_seq: int,
                      float_seq: int | None, day: str) -> CashSession:
        opened_at = self._now_text()
        await self.db.execute(
            "INSERT INTO cash_sessions (state, business_date, opened_by, opened_at, "
            "float_amount, from_seq, float_seq) VALUES ('open', ?, ?, ?, ?, ?, ?)",
            (day, operator, opened_at, float_amount, from_seq, float_seq))
        session = await self.current()
        assert session is not None
        return session

    def _now_text(self) -> str:
        return self.journal.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- movements --------------------------------------------------------------------------

    async def move(self, operator: str, kind: MovementKind, amount: int, reason: str | None,
                   approval: Approval | None, key: str | None = None) -> Movement:
        """Journal cash in, cash out or a safe drop in the open session.

        Cash out and safe drops need ``approval``; when the approver is not the operator, the
        approval is journaled too (JET 1020 "Manager override", naming the movement).
        """
        if kind in NEEDS_APPROVAL and approval is None:
            raise invalid("approval_missing", f"{kind} needs a manager's approval", "kind")
        async with self._lock:
            session = await self.require_open()
            ensure_fiscal_writes(self.health)
            entry = await self.journal.cash_movement(CashMovementRequest(
                kind=kind, operator=operator, amount=amount, reason=reason),
                idempotency_key=sub_key(key, "movement"))
            if approval is not None and approval.approver.id != operator:
                details = {**approval.details(), "movement_seq": entry.seq, "kind": kind,
                           "amount": amount}
                await self.journal.record_event(EventRequest(
                    code=MANAGER_OVERRIDE, operator=operator, details=details),
                    idempotency_key=sub_key(key, "approval"))
            expected = (await self.x_report(session)).expected_cash
        self.bus.publish("cash", {"action": "movement", "session_id": session.id, "kind": kind,
                                  "amount": amount, "seq": entry.seq, "operator": operator})
        return Movement(entry, expected, approval.approver.id if approval else None)

    # -- closing ----------------------------------------------------------------------------

    async def close_session(self, operator: str, counted: dict[str, int],
                            key: str | None = None) -> Closing:
        """Count (JET 1140), close the session's business day (the Z), end the session."""
        unknown = sorted(set(counted) - set(self.journal.settings.tenders))
        if unknown:
            raise invalid("unknown_tender", f"unknown tender {unknown[0]!r}",
                          f"counted.{unknown[0]}")
        async with self._lock:
            if (replayed := await self._replayed_close(key)) is not None:
                return replayed
            session = await self.require_open()
            ensure_fiscal_writes(self.health)
            count = await self._journal_count(session, operator, counted, key)
            closures = await self._close_day(session, operator, sub_key(key, "close"))
            z = await self._z_of(session.business_date)
            closed = await self._end(session, operator, count.seq, z)
        counts = [TenderCount(**row) for row in count.record["details"]["tenders"]]
        self.bus.publish("cash", {"action": "session_closed", "session_id": session.id,
                                  "operator": operator, "count_seq": count.seq,
                                  "closure_seq": z.seq if z else None})
        self._publish_closures(closures)
        return Closing(closed, counts, z, count.seq)

    async def _replayed_close(self, key: str | None) -> Closing | None:
        """The answer of a close already done under ``key`` (found by its count's entry)."""
        count = self.journal.replay("event", sub_key(key, "count"))
        if count is None:
            return None
        row = await self.db.fetch_one(f"SELECT {COLUMNS} FROM cash_sessions WHERE count_seq = ?",
                                      (count.seq,))
        if row is None:
            return None  # the count was journaled but the session not ended: finish the close
        session = _session(row)
        closure = await self.journal.get(session.closure_seq) if session.closure_seq else None
        counts = [TenderCount(**item) for item in count.record["details"]["tenders"]]
        return Closing(session, counts, closure_report(closure) if closure else None, count.seq)

    async def _journal_count(self, session: CashSession, operator: str,
                             counted: dict[str, int], key: str | None) -> Entry:
        counts = count_variances(await self.x_report(session), counted)
        details = {"session_id": session.id, "business_date": session.business_date,
                   "tenders": [row.model_dump() for row in counts]}
        return await self.journal.record_event(
            EventRequest(code=CASH_COUNT, operator=operator, details=details),
            idempotency_key=sub_key(key, "count"))

    async def _close_day(self, session: CashSession, operator: str,
                         key: str | None) -> list[Entry]:
        """Close the session's business day, unless something closed it already."""
        day = dt.date.fromisoformat(session.business_date)
        closed = self.journal.periods.closed_through
        if closed is not None and day <= closed:
            return []
        try:
            entries = await self.journal.periods.close_day(operator, day, idempotency_key=key)
        except PeriodClosed:
            return []
        return [e for e in entries if e.record["type"] in CLOSURE_TYPES]

    async def _z_of(self, day: str) -> ClosureReport | None:
        found = await self.journal.store.of_type_on("day_closure", day, day)
        return closure_report(found[-1]) if found else None

    async def _end(self, session: CashSession, operator: str, count_seq: int,
                   z: ClosureReport | None) -> CashSession:
        await self.db.execute(
            "UPDATE cash_sessions SET state = 'closed', closed_by = ?, closed_at = ?, "
            "count_seq = ?, closure_seq = ? WHERE id = ?",
            (operator, self._now_text(), count_seq, z.seq if z else None, session.id))
        closed = await self.session(session.id)
        assert closed is not None
        return closed

    def _publish_closures(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            record = entry.record
            self.bus.publish("closure", {
                "kind": record["type"], "seq": entry.seq, "period_from": record["period_from"],
                "period_to": record["period_to"], "automatic": record.get("automatic", False)})

    # -- closures on request ----------------------------------------------------------------

    async def close_period(self, kind: PeriodKind, operator: str, day: dt.date | None = None,
                           key: str | None = None) -> list[Entry]:
        """Close a day, month or fiscal year (default: the one of today); return the closures."""
        async with self._lock:
            target = await self._check_target(day)
            end = self._period_end(kind, target)
            await self._refuse_session_period(end)
            ensure_fiscal_writes(self.health)
            periods = self.journal.periods
            close = {"day": periods.close_day, "month": periods.close_month,
                     "year": periods.close_year}[kind]
            # any day of a month or year names it: pass its last day so far, never a closed one
            entries = await close(operator, min(end, self.today()), idempotency_key=key)
            closures = [e for e in entries if e.record["type"] in CLOSURE_TYPES]
            if not closures:  # a retry after a crash: the journal answered its last entry
                last = await self.journal.store.last_of_type(f"{kind}_closure")
                closures = [last] if last is not None else []
        self._publish_closures(closures)
        return closures

    async def _check_target(self, day: dt.date | None) -> dt.date:
        """Refuse dates in the future or before the journal began."""
        today = self.today()
        target = day or today
        if target > today:
            raise invalid("future_date", "cannot close a business date in the future", "date")
        first = await self.journal.get(1)
        if first is not None:
            start = self.journal.business_date(dt.datetime.fromisoformat(first.at_utc))
            if target < start:
                raise invalid("date_before_journal",
                              f"the journal begins on business date {start}", "date")
        return target

    def _period_end(self, kind: PeriodKind, target: dt.date) -> dt.date:
        """The last business date of the day, month or fiscal year of ``target``."""
        if kind == "day":
            return target
        if kind == "month":
            return month_bounds(target)[1]
        start_month = self.journal.settings.closure.fiscal_year_start_month
        return fiscal_year_bounds(target, start_month)[1]

    async def _refuse_session_period(self, end: dt.date) -> None:
        """409 ``cash_session_open`` if closing through ``end`` closes the session's day."""
        session = await self.current()
        if session is not None and end.isoformat() >= session.business_date:
            raise conflict("cash_session_open", f"cash session {session.id} of "
                           f"{session.business_date} is open: close it with the count (its Z "
                           "closes the day)")

    # -- drawer -----------------------------------------------------------------------------

    async def open_drawer(self, approval: Approval, reason: str | None,
                          kick: Callable[[], Awaitable[object]],
                          key: str | None = None) -> Entry:
        """Kick the drawer, then journal JET 1040 with the approval (nothing if the kick fails).

        A retry whose event is already in the journal does not kick again.
        """
        if reason is not None:
            check_text(reason, "reason")  # before the kick: the event must be writable
        ensure_fiscal_writes(self.health)
        key = sub_key(key, "drawer")
        if (found := self.journal.replay("event", key)) is not None:
            return found
        await kick()
        details: dict[str, object] = dict(approval.details())
        if reason is not None:
            details["reason"] = reason
        entry = await self.journal.record_event(EventRequest(
            code=DRAWER_NO_SALE, operator=approval.requested_by, details=details),
            idempotency_key=key)
        self.bus.publish("cash", {"action": "drawer_opened", "seq": entry.seq,
                                  "operator": approval.requested_by,
                                  "approved_by": approval.approver.id})
        return entry

