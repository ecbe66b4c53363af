"""The ingest's reads and writes in PostgreSQL: box state, chain tips, entries, alarms.

Every write of a batch happens inside one transaction that first locks the box's row
(``SELECT … FOR UPDATE``), so workers side by side apply a box's batches one at a time. A
stored run notifies ``tillbox_ingest`` with the box id (delivered at commit) so that workers
holding later batches of that box try them again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from cloud.ingest.checks import Tip, Verdict
from cloud.ingest.rows import COLUMNS, EntryRow

Connection = psycopg.AsyncConnection[Any]
CHANNEL = "tillbox_ingest"


@dataclass(frozen=True)
class BoxState:
    """What the ingest needs to know of a box before applying its next batch."""

    box_id: str
    epoch: str | None
    acked_through: int
    certificates: tuple[str, ...]
    store_id: str | None
    register_id: str | None


async def ensure_box(conn: Connection, box_id: str) -> None:
    """Create the box's row on its first message."""
    await conn.execute("INSERT INTO boxes (box_id) VALUES (%s) ON CONFLICT DO NOTHING",
                       (box_id,))


_READ_BOX = ("SELECT epoch, acked_through, certificates, store_id, register_id FROM boxes "
             "WHERE box_id = %s")
_LOCK_BOX = _READ_BOX + " FOR UPDATE"


async def box_state(conn: Connection, box_id: str) -> BoxState | None:
    """Read a box's state (no lock: a snapshot)."""
    row = await (await conn.execute(_READ_BOX, (box_id,))).fetchone()
    return _state(box_id, row)


def _state(box_id: str, row: tuple[Any, ...] | None) -> BoxState | None:
    if row is None:
        return None
    return BoxState(box_id, row[0], int(row[1]), tuple(row[2]), row[3], row[4])


async def lock_box(conn: Connection, box_id: str, epoch: str) -> tuple[BoxState,
                                                                        dict[str, Tip]]:
    """Lock the box's row until the transaction ends (created on first use).

    Returns its state and the chain tips of its journal ``epoch``, read in one round trip
    after the lock is held (so that they are the last committed ones).
    """
    found = await _locked(conn, box_id, epoch)
    if found is None:
        await ensure_box(conn, box_id)  # waits for a concurrent creation to commit
        found = await _locked(conn, box_id, epoch)
    assert found is not None
    return found


async def _locked(conn: Connection, box_id: str, epoch: str) -> tuple[
        BoxState, dict[str, Tip]] | None:
    async with conn.pipeline():
        locked = await conn.execute(_LOCK_BOX, (box_id,))
        tips = await conn.execute(_TIPS_OF, (box_id, epoch))
        state = _state(box_id, await locked.fetchone())
        rows = await tips.fetchall()
    if state is None:
        return None
    return state, {str(chain): Tip(int(chain_seq), int(seq), str(sig))
                   for chain, chain_seq, seq, sig in rows}


async def epoch_seen(conn: Connection, box_id: str, epoch: str) -> bool:
    """Whether entries of this epoch of the box are stored."""
    row = await (await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM entries WHERE box_id = %s AND epoch = %s)",
        (box_id, epoch))).fetchone()
    return bool(row and row[0])


async def switch_epoch(conn: Connection, box_id: str, epoch: str) -> None:
    """Start replicating a new journal of the box: watermark 0, trust on first use again."""
    await conn.execute(
        "UPDATE boxes SET epoch = %s, acked_through = 0, certificates = '{}', store_id = NULL,"
        " register_id = NULL, last_entry_utc = NULL WHERE box_id = %s", (epoch, box_id))


_TIPS_OF = "SELECT chain, chain_seq, seq, sig FROM chain_tips WHERE box_id = %s AND epoch = %s"


_INSERT = """
INSERT INTO entries (box_id, epoch, seq, chain, chain_seq, record_type, event_code,
    business_date, at_utc, store_id, register_id, operator, training, ref_seq, total,
    total_excl, total_vat, vat, tenders, period_from, period_to, perpetual_total,
    perpetual_abs, sig, body)
SELECT %s, %s, u.* FROM unnest(%b::bigint[], %b::text[], %b::bigint[], %b::text[], %b::int[],
    %b::date[], %b::timestamptz[], %b::text[], %b::text[], %b::text[], %b::bool[],
    %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::jsonb[], %b::jsonb[],
    %b::date[], %b::date[], %b::bigint[], %b::bigint[], %b::text[], %b::text[]) AS u
ON CONFLICT DO NOTHING
"""
_COPY = f"COPY entries (box_id, epoch, {', '.join(COLUMNS)}) FROM STDIN"

_TIPS = """
INSERT INTO chain_tips (box_id, epoch, chain, chain_seq, seq, sig)
SELECT %s, %s, * FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::text[])
ON CONFLICT (box_id, epoch, chain) DO UPDATE
SET chain_seq = EXCLUDED.chain_seq, seq = EXCLUDED.seq, sig = EXCLUDED.sig
"""

_ADVANCE = """
UPDATE boxes SET epoch = %s, acked_through = %s, certificates = %s, acked_at = now(),
    store_id = coalesce(store_id, %s), register_id = coalesce(register_id, %s),
    last_entry_utc = %s::timestamptz
WHERE box_id = %s
"""


async def store_run(conn: Connection, state: BoxState, epoch: str, rows: Sequence[EntryRow],
                    tips: Mapping[str, Tip], certificates: Sequence[str], *,
                    skip_stored: bool = False) -> None:
    """Insert a verified run, move the chain tips and the watermark, notify the workers.

    The rows go by ``COPY``: the run starts above the watermark, read under the box's lock, so
    none of them is stored yet, and a row already there raises ``UniqueViolation``. With
    ``skip_stored`` (the caller's second attempt after that error, which never happens in
    normal operation) they go by ``INSERT … ON CONFLICT DO NOTHING`` instead.
    """
    if not skip_stored:
        await _copy_entries(conn, state.box_id, epoch, rows)
    moved = {chain: tip for chain, tip in tips.items() if tip.seq >= rows[0].seq}
    last = rows[-1]
    async with conn.pipeline():  # one round trip
        if skip_stored:
            await conn.execute(_INSERT, (state.box_id, epoch,
                                         *([row[i] for row in rows] for i in range(len(COLUMNS)))))
        await conn.execute(_TIPS, (state.box_id, epoch, list(moved),
                                   [t.chain_seq for t in moved.values()],
                                   [t.seq for t in moved.values()],
                                   [t.sig for t in moved.values()]))
        await conn.execute(_ADVANCE, (epoch, last.seq, list(certificates), last.store_id,
                                      last.register_id, last.at_utc, state.box_id))
        await conn.execute("SELECT pg_notify(%s, %s)",
                           (CHANNEL, state.box_id))


async def _copy_entries(conn: Connection, box_id: str, epoch: str,
                        rows: Sequence[EntryRow]) -> None:
    """``COPY`` the rows into ``entries`` (cheaper than an ``INSERT`` on both sides)."""
    width = len(COLUMNS)
    async with conn.cursor().copy(_COPY) as copy:
        for row in rows:
            await copy.write_row((box_id, epoch, *row[:width]))


_ALARM = """
INSERT INTO alarms (box_id, epoch, kind, seq, detail, findings)
VALUES (%s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (box_id, kind, (coalesce(seq, 0))) WHERE cleared_at IS NULL
DO UPDATE SET count = alarms.count + 1, last_at = now(), detail = EXCLUDED.detail,
    findings = EXCLUDED.findings, epoch = EXCLUDED.epoch
"""


async def raise_alarm(conn: Connection, box_id: str, epoch: str | None, kind: str,
                      verdict: Verdict) -> None:
    """Record an alarm (or count it again while open) and put the box in the alarm state."""
    await conn.execute(_ALARM, (box_id, epoch, kind, verdict.seq, verdict.detail,
                                orjson.dumps(verdict.findings).decode()))
    await conn.execute("UPDATE boxes SET state = 'alarm' WHERE box_id = %s", (box_id,))


async def record_status(conn: Connection, box_id: str, status: Mapping[str, Any]) -> None:
    """Keep a box's last status message (state, epoch, last_seq, backlog…)."""
    await conn.execute(
        "INSERT INTO boxes (box_id, status, status_at) VALUES (%s, %s::jsonb, now()) "
        "ON CONFLICT (box_id) DO UPDATE SET status = EXCLUDED.status, status_at = now()",
        (box_id, orjson.dumps(status).decode()))
