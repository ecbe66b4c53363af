"""Applying batches in PostgreSQL: key rotations, epochs, pinned keys, chains across batches."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from ingestkit import DEMO_START, DemoJournal, batch_payload, demo_journal, read_journal
from pgkit import connect, fetch_all, pg_schema

from cloud.ingest.apply import Answer, Applier, Checked
from cloud.ingest.wire import Batch, parse_batch
from fiscal.demo import SETTINGS, generate
from fiscal.journal import Journal
from fiscal.testing import FakeClock

BOX = "box-7"


def batches(journal: DemoJournal, size: int, box: str = BOX) -> list[Batch]:
    return [parse_batch(batch_payload(box, journal.epoch, start + 1,
                                      journal.bodies[start:start + size]), box)
            for start in range(0, len(journal.bodies), size)]


@asynccontextmanager
async def applier() -> AsyncIterator[tuple[str, Applier]]:
    async with pg_schema() as schema, await connect(schema) as conn:
        yield schema, Applier(conn)


async def apply_all(target: Applier, items: Sequence[Batch]) -> list[Answer]:
    return [(await target.receive(batch))[0] for batch in items]


async def rotated_journal(directory: Path) -> DemoJournal:
    """A day of history, a key rotation in the evening, another day signed by the new key."""
    await generate(directory, days=1, sales_per_day=8, seed=3, start=DEMO_START)
    evening = dt.datetime(2026, 3, 30, 21, 0, tzinfo=dt.UTC)
    async with await Journal.open(directory, SETTINGS, clock=FakeClock(evening)) as journal:
        await journal.rotate_key("admin")
    await generate(directory, days=1, sales_per_day=8, seed=4)
    return read_journal(directory)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> DemoJournal:
    return demo_journal(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> DemoJournal:
    return asyncio.run(rotated_journal(tmp_path_factory.mktemp("rotated")))


@pytest.fixture(scope="module")
def forks(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoJournal, DemoJournal]:
    """Two journals sharing their key, epoch and first day, different afterwards."""
    first = tmp_path_factory.mktemp("fork-a") / "data"
    asyncio.run(generate(first, days=1, sales_per_day=6, seed=1, start=DEMO_START))
    second = first.parent.parent / "fork-b"
    shutil.copytree(first, second)
    asyncio.run(generate(first, days=1, sales_per_day=6, seed=2))
    asyncio.run(generate(second, days=1, sales_per_day=6, seed=3))
    return read_journal(first), read_journal(second)


async def test_a_key_rotation_is_followed(rotated: DemoJournal) -> None:
    """Entries signed by the rotated key are accepted; the new certificate becomes trusted."""
    rotation = next(i for i, r in enumerate(rotated.records(), 1) if r.get("code") == 1080)
    items = batches(rotated, 7)
    async with applier() as (schema, target):
        answers = await apply_all(target, items)
        (certificates,) = await fetch_all(schema, "SELECT certificates FROM boxes")
    assert [a.kind for a in answers] == ["ack"] * len(items)
    assert answers[-1].seq == len(rotated.bodies)
    assert rotation > 7
    assert certificates == ([rotated.certificate],)
    assert rotated.certificate != rotated.records()[0]["details"]["certificate_pem"]


async def test_a_batch_held_across_a_rotation_is_checked_again(rotated: DemoJournal) -> None:
    """A batch verified before the rotation preceding it was stored is re-verified, then stored."""
    rotation = next(i for i, r in enumerate(rotated.records(), 1) if r.get("code") == 1080)
    cut = rotation + 5

    def run(start: int, end: int) -> Batch:
        return parse_batch(batch_payload(BOX, rotated.epoch, start,
                                         rotated.bodies[start - 1:end]), BOX)

    async with applier() as (_, target):
        assert (await target.receive(run(1, 3)))[0] == Answer("ack", rotated.epoch, 3)
        later = run(cut + 1, cut + 10)
        ahead, held = await target.receive(later)
        assert held is not None
        assert not held.verdict.ok  # checked with the genesis key, the only one trusted then
        assert (await target.receive(run(4, cut)))[0] == Answer("ack", rotated.epoch, cut)
        answer, _ = await target.receive(later, held)
    assert ahead.kind == "ahead"
    assert answer == Answer("ack", rotated.epoch, cut + 10)


async def test_a_forked_history_breaks_the_chain(
        forks: tuple[DemoJournal, DemoJournal]) -> None:
    """Validly signed entries that do not continue the stored chains are refused."""
    mine, other = forks
    shared = next(i for i, (a, b) in enumerate(zip(mine.bodies, other.bodies, strict=False))
                  if a != b)
    start = shared + 3
    async with applier() as (schema, target):
        head = parse_batch(batch_payload(BOX, mine.epoch, 1, mine.bodies[:start - 1]), BOX)
        tail = parse_batch(batch_payload(BOX, other.epoch, start,
                                         other.bodies[start - 1:start + 9]), BOX)
        assert (await target.receive(head))[0].kind == "ack"
        answer, _ = await target.receive(tail)
        count = await fetch_all(schema, "SELECT count(*) FROM entries")
    assert (answer.kind, answer.seq, answer.reason) == ("nack", start, "chain_break")
    assert count == [(start - 1,)]


async def test_a_new_journal_starts_a_new_epoch(journal: DemoJournal,
                                                rotated: DemoJournal) -> None:
    """A new epoch from seq 1 is accepted with an alarm; the earlier epoch is then refused."""
    old, new = batches(journal, 10), batches(rotated, 10)
    async with applier() as (schema, target):
        await apply_all(target, old)
        switched = await target.receive(new[0])
        stale = await target.receive(old[-1])
        alarms = await fetch_all(schema, "SELECT kind FROM alarms ORDER BY alarm_id")
        state = await fetch_all(schema, "SELECT epoch, acked_through FROM boxes")
        epochs = await fetch_all(schema, "SELECT epoch, count(*) FROM entries GROUP BY epoch "
                                         "ORDER BY count(*)")
    assert switched[0] == Answer("ack", rotated.epoch, 10)
    assert (stale[0].kind, stale[0].reason) == ("nack", "epoch")
    assert alarms == [("new_epoch",), ("stale_epoch",)]
    assert state == [(rotated.epoch, 10)]
    assert sorted(epochs) == sorted([(rotated.epoch, 10), (journal.epoch, len(journal.bodies))])


async def test_a_pinned_certificate_refuses_another_genesis_key(
        journal: DemoJournal, rotated: DemoJournal) -> None:
    """With a certificate pinned for the box, a journal made with another key is refused."""
    async with applier() as (schema, target):
        await target.conn.execute("INSERT INTO boxes (box_id, certificates) VALUES (%s, %s)",
                                  (BOX, [rotated.certificate]))
        answer, _ = await target.receive(batches(journal, 10)[0])
        stored = await fetch_all(schema, "SELECT count(*) FROM entries")
    assert (answer.kind, answer.seq, answer.reason) == ("nack", 1, "bad_signature")
    assert "untrusted_key" in answer.detail
    assert stored == [(0,)]


async def test_a_first_batch_must_start_with_the_genesis(journal: DemoJournal) -> None:
    """A box's first stored batch must begin at seq 1; a later one waits (ahead of the gap)."""
    async with applier() as (_, target):
        answer, held = await target.receive(batches(journal, 10)[1])
    assert answer == Answer("ahead", journal.epoch, 1)
    assert isinstance(held, Checked)


async def test_the_reporting_columns_are_extracted(journal: DemoJournal) -> None:
    """Sales rows carry their date, operator, totals and tenders net of change."""
    async with applier() as (schema, target):
        await apply_all(target, batches(journal, 50))
        rows = await fetch_all(schema, "SELECT seq, business_date, operator, total, tenders "
                                       "FROM entries WHERE record_type = 'sale' ORDER BY seq")
    sales = [(i, r) for i, r in enumerate(journal.records(), 1) if r["type"] == "sale"]
    assert [row[0] for row in rows] == [i for i, _ in sales]
    for (seq, day, operator, total, tenders), (_, record) in zip(rows, sales, strict=True):
        assert (seq, day.isoformat(), operator, total) == (
            seq, record["business_date"], record["operator"], record["total"])
        assert sum(t["amount"] for t in tenders) == record["total"]
