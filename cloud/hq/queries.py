"""The HQ's reads: sales, closures, perpetual totals, boxes and alarms, from the stored journal.

Sales count sales and returns (training tickets excluded) of every journal a box has had; the
figures are those the boxes signed, re-verified on arrival.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from cloud.hq.models import (
    Alarm,
    Box,
    BoxDetail,
    ChainTip,
    Closure,
    ClosureKind,
    Dimension,
    PerpetualTotal,
    SalesRow,
)

Connection = psycopg.AsyncConnection[Any]

_DIMENSIONS: dict[str, tuple[str, str]] = {
    "tenant": ("b.tenant_id", "tenant_id"), "store": ("e.store_id", "store_id"),
    "box": ("e.box_id", "box_id"), "register": ("e.register_id", "register_id"),
    "operator": ("e.operator", "operator"), "day": ("e.business_date", "business_date"),
}
CLOSURE_TYPES: dict[str, ClosureKind] = {"day_closure": "day", "month_closure": "month",
                                         "year_closure": "year"}


@dataclass(frozen=True)
class Scope:
    """Which entries a report covers: business dates (inclusive) and tenant / store / box."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    tenant: str | None = None
    store: str | None = None
    box: str | None = None

    def where(self, date_column: str) -> tuple[sql.Composable, list[Any]]:
        """The ``AND …`` conditions of the scope and their parameters."""
        parts: list[sql.Composable] = []
        params: list[Any] = []
        for value, condition in ((self.date_from, f"{date_column} >= %s"),
                                 (self.date_to, f"{date_column} <= %s"),
                                 (self.tenant, "b.tenant_id = %s"),
                                 (self.store, "e.store_id = %s"), (self.box, "e.box_id = %s")):
            if value is not None:
                parts.append(sql.SQL(" AND " + condition))
                params.append(value)
        return sql.Composed(parts), params


_SALES = """
SELECT {keys} count(*) FILTER (WHERE e.record_type = 'sale') AS sale_count,
    count(*) FILTER (WHERE e.record_type = 'return') AS return_count,
    coalesce(sum(e.total) FILTER (WHERE e.record_type = 'sale'), 0)::bigint AS sales_total,
    coalesce(sum(e.total) FILTER (WHERE e.record_type = 'return'), 0)::bigint AS returns_total,
    coalesce(sum(e.total), 0)::bigint AS net_total,
    coalesce(sum(e.total_excl), 0)::bigint AS total_excl,
    coalesce(sum(e.total_vat), 0)::bigint AS total_vat
FROM entries e JOIN boxes b ON b.box_id = e.box_id
WHERE e.record_type IN ('sale', 'return') AND NOT e.training {scope}
{group}
"""


async def sales(conn: Connection, by: Sequence[Dimension], scope: Scope) -> list[SalesRow]:
    """Sales and returns grouped by ``by`` (no dimension: one row of totals)."""
    columns = [sql.SQL(f"{_DIMENSIONS[d][0]} AS {_DIMENSIONS[d][1]}") for d in by]
    keys = sql.SQL(", ").join(columns) + sql.SQL(", ") if columns else sql.SQL("")
    numbers = sql.SQL(", ").join(sql.SQL(str(i)) for i in range(1, len(by) + 1))
    group = (sql.SQL("GROUP BY {n} ORDER BY {n}").format(n=numbers) if by else sql.SQL(""))
    condition, params = scope.where("e.business_date")
    query = sql.SQL(_SALES).format(keys=keys, scope=condition, group=group)
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return [SalesRow.model_validate(row) for row in await cursor.fetchall()]


_CLOSURES = """
SELECT e.box_id, e.epoch, e.store_id, e.register_id, e.record_type, e.chain_seq AS number,
    e.seq, e.at_utc, e.period_from, e.period_to, e.operator, e.total AS period_total,
    e.perpetual_total, e.perpetual_abs, e.vat, e.tenders, e.body::jsonb -> 'record' AS record
FROM entries e JOIN boxes b ON b.box_id = e.box_id
WHERE e.record_type = ANY(%s) {scope}
ORDER BY e.period_to, e.box_id, e.seq
LIMIT %s
"""


def _closure(row: dict[str, Any]) -> Closure:
    record, kind = row.pop("record"), CLOSURE_TYPES[row.pop("record_type")]
    breakdown, tenders = row.pop("vat") or [], row.pop("tenders") or []
    return Closure(
        **row, kind=kind, automatic=bool(record.get("automatic")),
        ticket_count=record["ticket_count"], sale_count=record["sale_count"],
        return_count=record["return_count"], sales_total=record["sales_total"],
        returns_total=record["returns_total"], breakdown=breakdown, tenders=tenders)


async def closures(conn: Connection, kinds: Sequence[ClosureKind], scope: Scope,
                   limit: int) -> list[Closure]:
    """Closures of the kinds asked for whose period ends within the scope's dates."""
    types = [t for t, k in CLOSURE_TYPES.items() if k in kinds]
    condition, params = scope.where("e.period_to")
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(sql.SQL(_CLOSURES).format(scope=condition),
                             [types, *params, limit])
        return [_closure(row) for row in await cursor.fetchall()]


_PERPETUAL = """
SELECT DISTINCT ON (e.box_id, e.record_type) e.box_id, e.epoch, e.store_id, e.register_id,
    e.record_type, e.seq, e.period_to, e.perpetual_total, e.perpetual_abs
FROM entries e JOIN boxes b ON b.box_id = e.box_id AND b.epoch = e.epoch
WHERE e.record_type IN ('day_closure', 'month_closure', 'year_closure') {scope}
ORDER BY e.box_id, e.record_type, e.seq DESC
"""


async def perpetual_totals(conn: Connection, scope: Scope) -> list[PerpetualTotal]:
    """Each box's perpetual totals at its latest closure of each kind."""
    condition, params = scope.where("e.period_to")
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(sql.SQL(_PERPETUAL).format(scope=condition), params)
        rows = await cursor.fetchall()
    return [PerpetualTotal(**{**row, "kind": CLOSURE_TYPES[row.pop("record_type")]})
            for row in rows]


_BOXES = """
SELECT b.box_id, b.tenant_id, b.store_id, b.register_id, b.epoch, b.acked_through, b.acked_at,
    b.last_entry_utc AS last_entry_at, b.status, b.status_at, b.state,
    (SELECT count(*) FROM alarms a WHERE a.box_id = b.box_id AND a.cleared_at IS NULL)
        AS open_alarms
FROM boxes b
WHERE (%(box)s::text IS NULL OR b.box_id = %(box)s) AND (%(tenant)s::text IS NULL
    OR b.tenant_id = %(tenant)s) AND (%(store)s::text IS NULL OR b.store_id = %(store)s)
ORDER BY b.box_id
"""


def _box(row: dict[str, Any]) -> Box:
    status = row.pop("status") or {}
    last_seq = status.get("last_seq")
    same = status.get("epoch") == row["epoch"] and type(last_seq) is int
    link = status.get("state")
    return Box(**row, reported_last_seq=last_seq if same else None,
               lag=max(0, last_seq - row["acked_through"]) if same else None,
               link=link if isinstance(link, str) else None)


async def boxes(conn: Connection, scope: Scope) -> list[Box]:
    """The boxes in scope with their watermark, lag and state."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_BOXES, {"box": scope.box, "tenant": scope.tenant,
                                      "store": scope.store})
        return [_box(row) for row in await cursor.fetchall()]


async def box_detail(conn: Connection, box_id: str) -> BoxDetail | None:
    """One box with its chain tips (current journal) and open alarms."""
    found = await boxes(conn, Scope(box=box_id))
    if not found:
        return None
    box = found[0]
    rows = await (await conn.execute(
        "SELECT chain, chain_seq, seq, sig FROM chain_tips WHERE box_id = %s AND epoch = %s "
        "ORDER BY seq", (box_id, box.epoch))).fetchall()
    chains = [ChainTip(chain=c, chain_seq=cs, seq=s, sig=sig) for c, cs, s, sig in rows]
    return BoxDetail(**box.model_dump(), chains=chains,
                     alarms=await alarms(conn, box_id, open_only=True, limit=100))


_ALARMS = """
SELECT alarm_id, box_id, epoch, kind, seq, detail, count, first_at, last_at, cleared_at
FROM alarms
WHERE (%(box)s::text IS NULL OR box_id = %(box)s) AND (NOT %(open)s OR cleared_at IS NULL)
ORDER BY alarm_id DESC LIMIT %(limit)s
"""
_ALARM = """
SELECT alarm_id, box_id, epoch, kind, seq, detail, count, first_at, last_at, cleared_at
FROM alarms WHERE alarm_id = %s
"""


async def alarms(conn: Connection, box_id: str | None, *, open_only: bool,
                 limit: int) -> list[Alarm]:
    """Alarms, newest first."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_ALARMS, {"box": box_id, "open": open_only, "limit": limit})
        return [Alarm(**row) for row in await cursor.fetchall()]


async def clear_alarm(conn: Connection, alarm_id: int) -> Alarm | None:
    """Clear an alarm; the box returns to ``ok`` when none is left open."""
    async with conn.transaction():
        row = await (await conn.execute(
            "UPDATE alarms SET cleared_at = coalesce(cleared_at, now()) WHERE alarm_id = %s "
            "RETURNING box_id", (alarm_id,))).fetchone()
        if row is None:
            return None
        await conn.execute(
            "UPDATE boxes SET state = 'ok' WHERE box_id = %s AND NOT EXISTS (SELECT 1 FROM "
            "alarms WHERE box_id = %s AND cleared_at IS NULL)", (row[0], row[0]))
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_ALARM, (alarm_id,))
        cleared = await cursor.fetchone()
    return None if cleared is None else Alarm(**cleared)
