"""Box replacement, cloud side: the handover a replaced box leaves to its successor (DESIGN §8).

A box replaced after loss or theft is provisioned anew and asks the cloud for the register's
chain tips and perpetual totals so that its journal continues them. ``handover_of`` computes
that document from what is stored of the predecessor's current journal: its watermark
(``last_seq``), the chain tips, the key that signed its last stored entry, the register's
perpetual totals (its last day closure's, plus every ticket dated after it: the days it never
closed count too) and the period of its last closure of each kind (a kind the predecessor never
closed itself comes from the handover its own journal continued, if any)::

    {"box_id", "epoch", "store_id", "register_id", "last_seq", "key_id",
     "chains": {chain: {"chain_seq", "seq", "sig"}},
     "perpetual": {"total", "abs"},
     "closures": {kind: {"period_from", "period_to"}}}

``grant`` decides a request under the predecessor's row lock and records what it gave in
``handovers``: a predecessor is handed over once, to one successor (who gets the same document
when it asks again). Refusals are ``HandoverRefused`` with a stable code. ``check_successor``
compares what a successor's journal declares it continues (its initialisation event's
``details.continues``) with the handover recorded for it, and raises ``handover_mismatch``
when they differ (the entries are stored all the same: they are validly signed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg.types.json import Jsonb

from cloud.ingest.checks import refuse
from cloud.ingest.rows import EntryRow
from cloud.ingest.store import Connection, raise_alarm
from fiscal.errors import InvalidInput
from fiscal.handover import Handover

CLOSURE_KINDS = ("day_closure", "month_closure", "year_closure")
CLOSURE_FIELDS = ("period_from", "period_to")

# refusal codes (stable: the box logs them, the fleet manager acts on them)
INVALID_REQUEST = "invalid_request"
"""The request is not ``{"replaces", "store_id", "register_id"}`` with identifiers."""
PREDECESSOR_UNKNOWN = "predecessor_unknown"
"""The cloud has no stored journal entry of the box to replace."""
PLACEMENT_MISMATCH = "placement_mismatch"
"""Store, register or tenant differ from the replaced box's."""
ALREADY_REPLACED = "already_replaced"
"""The box was handed over to another box already."""
ALREADY_SUCCESSOR = "already_successor"
"""The requesting box already continues another box's journal."""
SAME_BOX = "same_box"
"""A box cannot replace itself."""
HANDOVER_MISMATCH = "handover_mismatch"
"""Alarm: a successor's journal declares another handover than the one it was given."""


class HandoverRefused(Exception):
    """A handover request the cloud refuses: a stable code and a detail."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Request:
    """A box (``successor``, from the topic) asking to continue ``predecessor``'s journal."""

    successor: str
    predecessor: str
    store_id: str
    register_id: str


# -- the document ---------------------------------------------------------------------------

_PREDECESSOR = ("SELECT epoch, acked_through, store_id, register_id, tenant_id FROM boxes "
                "WHERE box_id = %s")
_TIPS = ("SELECT chain, chain_seq, seq, sig FROM chain_tips WHERE box_id = %s AND epoch = %s "
         "ORDER BY chain")
_BODY = "SELECT body FROM entries WHERE box_id = %s AND epoch = %s AND seq = %s"
_CLOSURES = """
SELECT k.kind, (SELECT body FROM entries WHERE box_id = %s AND epoch = %s
                AND record_type = k.kind ORDER BY seq DESC LIMIT 1)
FROM unnest(%s::text[]) AS k(kind)
"""


_LAST_Z = ("SELECT period_to, perpetual_total, perpetual_abs FROM entries WHERE box_id = %s "
           "AND epoch = %s AND record_type = 'day_closure' ORDER BY seq DESC LIMIT 1")
_TAIL = ("SELECT coalesce(sum(total), 0), coalesce(sum(abs(total)), 0) FROM entries "
         "WHERE box_id = %s AND epoch = %s AND record_type IN ('sale', 'return') "
         "AND NOT training AND (%s::date IS NULL OR business_date > %s::date)")


async def handover_of(conn: Connection, box_id: str) -> dict[str, Any] | None:
    """The handover of ``box_id``'s current journal as stored, or ``None`` if nothing is."""
    row = await (await conn.execute(_PREDECESSOR, (box_id,))).fetchone()
    if row is None or row[0] is None or int(row[1]) < 1:
        return None
    epoch, last_seq, store_id, register_id = str(row[0]), int(row[1]), row[2], row[3]
    tips = await (await conn.execute(_TIPS, (box_id, epoch))).fetchall()
    last = await _body(conn, box_id, epoch, last_seq)
    inherited = _continued(await _body(conn, box_id, epoch, 1))
    closures = await _closures(conn, box_id, epoch, inherited)
    perpetual = await _perpetual(conn, box_id, epoch, inherited)
    return {"box_id": box_id, "epoch": epoch, "store_id": store_id, "register_id": register_id,
            "last_seq": last_seq, "key_id": last["key_id"],
            "chains": {str(chain): {"chain_seq": int(chain_seq), "seq": int(seq),
                                    "sig": str(sig)}
                       for chain, chain_seq, seq, sig in tips},
            "perpetual": perpetual, "closures": closures}


async def _body(conn: Connection, box_id: str, epoch: str, seq: int) -> dict[str, Any]:
    row = await (await conn.execute(_BODY, (box_id, epoch, seq))).fetchone()
    assert row is not None, f"entry {seq} of {box_id} under its watermark is not stored"
    envelope: dict[str, Any] = orjson.loads(row[0])
    return envelope


async def _closures(conn: Connection, box_id: str, epoch: str,
                    continued: Mapping[str, Any]) -> dict[str, Any]:
    """The period of the last stored closure of each kind, else the one the journal continued."""
    rows = await (await conn.execute(_CLOSURES, (box_id, epoch, list(CLOSURE_KINDS)))).fetchall()
    inherited = continued.get("closures", {})
    closures: dict[str, Any] = {}
    for kind, body in rows:
        if body is not None:
            record = orjson.loads(body)["record"]
            closures[kind] = {name: record[name] for name in CLOSURE_FIELDS}
        elif isinstance(inherited, Mapping) and isinstance(inherited.get(kind), Mapping):
            closures[kind] = {name: inherited[kind].get(name) for name in CLOSURE_FIELDS}
    return closures


async def _perpetual(conn: Connection, box_id: str, epoch: str,
                     continued: Mapping[str, Any]) -> dict[str, int]:
    """The register's perpetual totals through everything ``box_id`` recorded.

    The last day closure's totals plus the tickets dated after it; with no day closure, the
    totals the journal continued (or zero) plus all its tickets.
    """
    row = await (await conn.execute(_LAST_Z, (box_id, epoch))).fetchone()
    if row is not None:
        after, total, absolute = row[0], int(row[1]), int(row[2])
    else:
        base = continued.get("perpetual")
        base = base if isinstance(base, Mapping) else {}
        after, total, absolute = None, int(base.get("total", 0)), int(base.get("abs", 0))
    tail = await (await conn.execute(_TAIL, (box_id, epoch, after, after))).fetchone()
    assert tail is not None  # an aggregate always answers one row
    return {"total": total + int(tail[0]), "abs": absolute + int(tail[1])}


def _continued(genesis: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``continues`` declaration of a journal's initialisation event, or ``{}``."""
    details = genesis.get("record", {}).get("details")
    continues = details.get("continues") if isinstance(details, Mapping) else None
    return continues if isinstance(continues, Mapping) else {}


# -- granting -------------------------------------------------------------------------------

_GIVEN = "SELECT successor, document FROM handovers WHERE predecessor = %s"
_TAKEN = "SELECT predecessor FROM handovers WHERE successor = %s"
_TENANT = "SELECT tenant_id FROM boxes WHERE box_id = %s"
_ASKED_AGAIN = ("UPDATE handovers SET asked = asked + 1, last_asked_at = now() "
                "WHERE predecessor = %s")
_RECORD = ("INSERT INTO handovers (predecessor, successor, epoch, document) "
           "VALUES (%s, %s, %s, %s)")


async def grant(conn: Connection, request: Request) -> dict[str, Any]:
    """The handover for ``request`` (recorded on first grant), or ``HandoverRefused``."""
    if request.successor == request.predecessor:
        raise HandoverRefused(SAME_BOX, f"box {request.successor} cannot replace itself")
    async with conn.transaction():
        predecessor = await (await conn.execute(_PREDECESSOR + " FOR UPDATE",
                                                (request.predecessor,))).fetchone()
        if predecessor is None or predecessor[0] is None or int(predecessor[1]) < 1:
            raise HandoverRefused(PREDECESSOR_UNKNOWN, f"nothing of box {request.predecessor}"
                                  " is stored in the cloud")
        await _check_placement(conn, request, predecessor)
        given = await (await conn.execute(_GIVEN, (request.predecessor,))).fetchone()
        if given is not None:
            return await _given_again(conn, request, str(given[0]), given[1])
        await _check_not_successor(conn, request)
        document = await handover_of(conn, request.predecessor)
        assert document is not None  # the row is locked and holds entries
        await conn.execute(_RECORD, (request.predecessor, request.successor,
                                     document["epoch"], Jsonb(document)))
        return document


async def _check_placement(conn: Connection, request: Request,
                           predecessor: tuple[Any, ...]) -> None:
    store_id, register_id, tenant = predecessor[2], predecessor[3], predecessor[4]
    if (store_id, register_id) != (request.store_id, request.register_id):
        raise HandoverRefused(PLACEMENT_MISMATCH, f"box {request.predecessor} was register "
                              f"{register_id} of store {store_id}, not register "
                              f"{request.register_id} of store {request.store_id}")
    row = await (await conn.execute(_TENANT, (request.successor,))).fetchone()
    successor_tenant = row[0] if row is not None else None
    if tenant is not None and successor_tenant is not None and tenant != successor_tenant:
        raise HandoverRefused(PLACEMENT_MISMATCH, f"box {request.predecessor} belongs to "
                              f"tenant {tenant}, box {request.successor} to {successor_tenant}")


async def _given_again(conn: Connection, request: Request, successor: str,
                       document: dict[str, Any]) -> dict[str, Any]:
    if successor != request.successor:
        raise HandoverRefused(ALREADY_REPLACED, f"box {request.predecessor} was handed over "
                              f"to box {successor} already")
    await conn.execute(_ASKED_AGAIN, (request.predecessor,))
    return document


async def _check_not_successor(conn: Connection, request: Request) -> None:
    row = await (await conn.execute(_TAKEN, (request.successor,))).fetchone()
    if row is not None:
        raise HandoverRefused(ALREADY_SUCCESSOR, f"box {request.successor} continues box "
                              f"{row[0]} already")


# -- the successor's journal ----------------------------------------------------------------

def declared(rows: Sequence[EntryRow]) -> Mapping[str, Any] | None:
    """What a run starting with a journal's initialisation event declares it continues."""
    first = rows[0] if rows else None
    if first is None or first.seq != 1 or first.key_event is None:
        return None
    continues = first.key_event.get("continues")
    return continues if isinstance(continues, Mapping) else None


def _normalised(document: Any) -> dict[str, Any] | None:
    """The document in the form the journal records it, or ``None`` if it is malformed."""
    try:
        return Handover.from_json(document).details()
    except InvalidInput:
        return None


def mismatch(continues: Mapping[str, Any], recorded: Any, first: EntryRow) -> str | None:
    """Why a declared continuation is not the recorded handover (``None`` when it is)."""
    if recorded is None:
        return "the journal continues a replaced box, but no handover was given to this box"
    declared_doc, given = _normalised(continues), _normalised(recorded)
    if declared_doc is None or declared_doc != given:
        return (f"the journal declares it continues box {continues.get('box_id')!r} from "
                f"seq {continues.get('last_seq')!r}; the cloud handed over box "
                f"{recorded.get('box_id')!r} through seq {recorded.get('last_seq')!r}"
                " (the chain tips or closures differ)")
    if (first.store_id, first.register_id) != (given["store_id"], given["register_id"]):
        return (f"the journal is register {first.register_id} of store {first.store_id}; the "
                f"handover was of register {given['register_id']} of store "
                f"{given['store_id']}")
    return None


async def check_successor(conn: Connection, box_id: str, epoch: str,
                          rows: Sequence[EntryRow]) -> None:
    """Alarm ``handover_mismatch`` when a journal's declared continuation is not its handover."""
    continues = declared(rows)
    if continues is None:
        return
    row = await (await conn.execute("SELECT document FROM handovers WHERE successor = %s",
                                    (box_id,))).fetchone()
    problem = mismatch(continues, row[0] if row is not None else None, rows[0])
    if problem is not None:
        await raise_alarm(conn, box_id, epoch, HANDOVER_MISMATCH,
                          refuse(HANDOVER_MISMATCH, problem, 1))
