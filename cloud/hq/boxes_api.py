"""HQ routes about the fleet's boxes: watermark and lag, alarms, and a box's journal export.

One box also shows the handover (box replacement) it took part in: ``replaces`` and
``replaced_by``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from cloud.hq import exports, queries
from cloud.hq.context import ConnectionDep, pool_of
from cloud.hq.models import NO_NUL, Alarm, Box, BoxDetail, BoxId, Ident
from cloud.hq.problems import not_found
from cloud.hq.queries import Scope

router = APIRouter()
MAX_SEQ = 2**53
NDJSON = "application/x-ndjson"


@router.get("/boxes", summary="Boxes with their watermark, lag and state")
async def boxes(conn: ConnectionDep, tenant: Ident = None, store: Ident = None) -> list[Box]:
    """Every box (of a tenant, of a store), by id."""
    return await queries.boxes(conn, Scope(tenant=tenant, store=store))


class ReplacedBoxDetail(BoxDetail):
    """A box with its chain tips, open alarms, and the boxes it replaced / replaced it."""

    replaces: str | None = None
    """The box whose chains this box continues (handed over by the cloud)."""
    replaced_by: str | None = None
    """The box the cloud handed this box's chains over to."""


_HANDOVERS = ("SELECT (SELECT predecessor FROM handovers WHERE successor = %(box)s), "
              "(SELECT successor FROM handovers WHERE predecessor = %(box)s)")


@router.get("/boxes/{box_id}", summary="A box with its chain tips and open alarms")
async def box(conn: ConnectionDep, box_id: BoxId) -> ReplacedBoxDetail:
    """One box (404 ``box_not_found``), with ``replaces``/``replaced_by`` after a handover."""
    detail = await queries.box_detail(conn, box_id)
    if detail is None:
        raise not_found("box", box_id, "box_id")
    row = await (await conn.execute(_HANDOVERS, {"box": box_id})).fetchone()
    replaces, replaced_by = row if row is not None else (None, None)
    return ReplacedBoxDetail(**detail.model_dump(), replaces=replaces, replaced_by=replaced_by)


async def _lines(request: Request, box_id: str, epoch: str, from_seq: int,
                 to_seq: int) -> AsyncIterator[bytes]:
    async with pool_of(request).connection() as conn:
        async for chunk in exports.journal_lines(conn, box_id, epoch, from_seq, to_seq):
            yield chunk


@router.get("/boxes/{box_id}/journal", summary="A box's journal, exactly as signed (JSONL)",
            response_class=StreamingResponse,
            responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}}}})
async def journal(request: Request, conn: ConnectionDep, box_id: BoxId,
                  epoch: Annotated[str | None, Query(min_length=1, max_length=128,
                                                     pattern=NO_NUL)] = None,
                  from_seq: Annotated[int, Query(ge=1, le=MAX_SEQ)] = 1,
                  to_seq: Annotated[int, Query(ge=1, le=MAX_SEQ)] = MAX_SEQ,
                  ) -> StreamingResponse:
    """The stored entry bodies of a box's journal, one per line, in seq order.

    The box's current journal unless ``epoch`` names another; re-verify the file with
    ``tillbox cloud verify-export``.
    """
    found = await queries.boxes(conn, Scope(box=box_id))
    if not found or found[0].epoch is None:
        raise not_found("box", box_id, "box_id")
    chosen = epoch or found[0].epoch
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{box_id}-{chosen}-{from_seq}.jsonl")
    return StreamingResponse(_lines(request, box_id, chosen, from_seq, to_seq),
                             media_type=NDJSON,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/alarms", summary="Alarms, newest first")
async def alarms(conn: ConnectionDep, box: Ident = None,
                 open_only: Annotated[bool, Query(alias="open")] = True,
                 limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[Alarm]:
    """Alarms of every box (or one), only the open ones unless ``open=false``."""
    return await queries.alarms(conn, box, open_only=open_only, limit=limit)


@router.post("/alarms/{alarm_id}/clear", summary="Clear an alarm")
async def clear_alarm(conn: ConnectionDep,
                      alarm_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Alarm:
    """Mark an alarm as handled; the box is ``ok`` again once no alarm is left open."""
    cleared = await queries.clear_alarm(conn, alarm_id)
    if cleared is None:
        raise not_found("alarm", alarm_id, "alarm_id")
    return cleared
