"""Storing runs by COPY, and the commit notices."""

from __future__ import annotations

import asyncio

import pytest
from ingestkit import DemoJournal, batch_payload, demo_journal
from pgkit import connect, fetch_all, pg_schema

from cloud.ingest.apply import Answer, Applier, check
from cloud.ingest.store import CHANNEL
from cloud.ingest.wire import Batch, parse_batch

BOX = "box-copy"


def batch(journal: DemoJournal, start: int, size: int, epoch: str | None = None) -> Batch:
    payload = batch_payload(BOX, epoch or journal.epoch, start,
                            journal.bodies[start - 1:start - 1 + size])
    return parse_batch(payload, BOX)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> DemoJournal:
    return demo_journal(tmp_path_factory.mktemp("demo"))


async def test_a_run_partly_stored_already_is_stored_without_its_duplicates(
        journal: DemoJournal) -> None:
    """Rows of a run found in the table (COPY refuses them) are skipped, the rest stored, acked."""
    async with pg_schema() as schema, await connect(schema) as conn:
        target = Applier(conn)
        assert (await target.receive(batch(journal, 1, 10)))[0].kind == "ack"
        tips = await fetch_all(schema, "SELECT chain, chain_seq, seq, sig FROM chain_tips")
        assert (await target.receive(batch(journal, 11, 10)))[0] == Answer(
            "ack", journal.epoch, 20)
        # as if the watermark and tips had not moved past seq 10 but seq 11-15 were stored
        await conn.execute("DELETE FROM entries WHERE seq > 15")
        await conn.execute("UPDATE boxes SET acked_through = 10")
        await conn.execute("DELETE FROM chain_tips")
        for tip in tips:
            await conn.execute("INSERT INTO chain_tips (box_id, epoch, chain, chain_seq, seq, sig)"
                               " VALUES (%s, %s, %s, %s, %s, %s)", (BOX, journal.epoch, *tip))
        answer, _ = await target.receive(batch(journal, 11, 10))
        stored = await fetch_all(schema, "SELECT seq, body FROM entries ORDER BY seq")
    assert answer == Answer("ack", journal.epoch, 20)
    assert stored == [(seq, body) for seq, body in enumerate(journal.bodies[:20], 1)]


async def test_the_stored_columns_are_the_rows(journal: DemoJournal) -> None:
    """What COPY stores is the extracted row, column for column, with box and epoch."""
    async with pg_schema() as schema, await connect(schema) as conn:
        checked = check(batch(journal, 1, 30), 1, ())
        await Applier(conn).receive(checked.batch, checked)
        stored = await fetch_all(
            schema, "SELECT box_id, epoch, seq, chain, chain_seq, record_type, event_code, "
                    "business_date::text, training, total, total_excl, total_vat, sig, body "
                    "FROM entries ORDER BY seq")
    assert stored == [(BOX, journal.epoch, row.seq, row.chain, row.chain_seq, row.record_type,
                       row.event_code, row.business_date, row.training, row.total,
                       row.total_excl, row.total_vat, row.sig, row.body)
                      for row in checked.rows]


async def test_a_commit_announces_the_box(journal: DemoJournal) -> None:
    """The NOTIFY of a stored run names the box (workers holding its later batches retry)."""
    async with pg_schema() as schema, await connect(schema) as listener, \
            await connect(schema) as conn:
        await listener.execute(f"LISTEN {CHANNEL}")
        await Applier(conn).receive(batch(journal, 1, 12))
        async with asyncio.timeout(5):
            notice = await anext(aiter(listener.notifies()))
    assert notice.payload == BOX
