"""The ingest over a real Mosquitto into a real PostgreSQL: store once, ack by watermark."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from ingestkit import (
    DemoJournal,
    batch_payload,
    box_client,
    demo_journal,
    mosquitto,
    payloads,
    worker_config,
)
from pgkit import fetch_all, pg_schema

from cloud.ingest.worker import running_worker

BOX = "box-1"


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> DemoJournal:
    return demo_journal(tmp_path_factory.mktemp("demo"))


async def stored(schema: str) -> list[tuple[int, str]]:
    return [(int(seq), body) for seq, body in await fetch_all(
        schema, "SELECT seq, body FROM entries ORDER BY seq")]


async def test_batches_are_stored_once_and_acked(tmp_path: Path, journal: DemoJournal) -> None:
    """Every entry is stored exactly as sent, and the last ack covers the last seq."""
    last = len(journal.bodies)
    async with pg_schema() as schema, mosquitto(tmp_path) as port, \
            running_worker(worker_config(port, schema)), box_client(port, BOX) as box:
        for _, _, payload in payloads(BOX, journal, 10):
            await box.publish(payload)
        acks = await box.acked_through(last)
        rows = await stored(schema)
        boxes = await fetch_all(schema, "SELECT epoch, acked_through, certificates, store_id, "
                                        "register_id, state FROM boxes")
    assert acks == sorted(acks)
    assert acks[-1] == last
    assert rows == [(seq, body) for seq, body in enumerate(journal.bodies, 1)]
    assert boxes == [(journal.epoch, last, [journal.certificate], "demo-store", "R1", "ok")]


async def test_resent_batches_are_idempotent(tmp_path: Path, journal: DemoJournal) -> None:
    """A batch sent again, whole or overlapping, is acked with the watermark, stored once."""
    batches = payloads(BOX, journal, 10)
    overlap = batch_payload(BOX, journal.epoch, 5, journal.bodies[4:25])
    async with pg_schema() as schema, mosquitto(tmp_path) as port, \
            running_worker(worker_config(port, schema)), box_client(port, BOX) as box:
        for _, to_seq, payload in batches[:2]:
            await box.publish(payload)
            await box.acked_through(to_seq)
        await box.publish(batches[0][2])
        assert await box.answer() == ("ack", {"epoch": journal.epoch, "acked_through": 20})
        await box.publish(overlap)
        assert await box.answer() == ("ack", {"epoch": journal.epoch, "acked_through": 25})
        for _, _, payload in batches:
            await box.publish(payload)
        await box.acked_through(len(journal.bodies))
        rows = await stored(schema)
    assert [seq for seq, _ in rows] == list(range(1, len(journal.bodies) + 1))


async def test_batch_ahead_of_a_gap_waits_for_it(tmp_path: Path, journal: DemoJournal) -> None:
    """A batch after a gap is not acked until the gap is filled, then both are."""
    first, second, third = payloads(BOX, journal, 10)[:3]
    async with pg_schema() as schema, mosquitto(tmp_path) as port, \
            running_worker(worker_config(port, schema)), box_client(port, BOX) as box:
        await box.publish(first[2])
        await box.acked_through(10)
        await box.publish(third[2])
        await box.silence(0.3)
        assert [seq for seq, _ in await stored(schema)] == list(range(1, 11))
        await box.publish(second[2])
        assert await box.acked_through(30) == [20, 30]
        assert len(await stored(schema)) == 30


async def test_a_gap_that_stays_is_nacked(tmp_path: Path, journal: DemoJournal) -> None:
    """A batch whose gap is not filled within the timeout gets a nack naming the expected seq."""
    batches = payloads(BOX, journal, 10)
    async with pg_schema() as schema, mosquitto(tmp_path) as port:
        config = worker_config(port, schema, gap_timeout=0.3)
        async with running_worker(config), box_client(port, BOX) as box:
            await box.publish(batches[1][2])
            kind, nack = await box.answer()
            assert (kind, nack["expected_seq"], nack["reason"]) == ("nack", 1, "gap")
            await box.publish(batches[0][2])
            await box.publish(batches[1][2])
            assert (await box.acked_through(20))[-1] == 20


async def test_a_forged_entry_is_refused(tmp_path: Path, journal: DemoJournal) -> None:
    """A record changed after signing: nack with the expected seq, an alarm, nothing stored."""
    seq = next(i for i, body in enumerate(journal.bodies, 1) if '"type":"sale"' in body and i > 10)
    start = (seq - 1) // 10 * 10 + 1
    bodies = list(journal.bodies[start - 1:start + 9])
    envelope = orjson.loads(bodies[seq - start])
    label = envelope["record"]["lines"][0]["label"]
    bodies[seq - start] = bodies[seq - start].replace(f'"label":"{label}"',
                                                      f'"label":"{label}!"', 1)
    assert bodies[seq - start] != journal.bodies[seq - 1]
    async with pg_schema() as schema, mosquitto(tmp_path) as port, \
            running_worker(worker_config(port, schema)), box_client(port, BOX) as box:
        for _, _, payload in payloads(BOX, journal, 10)[:(start - 1) // 10]:
            await box.publish(payload)
        await box.acked_through(start - 1)
        await box.publish(batch_payload(BOX, journal.epoch, start, bodies))
        kind, nack = await box.answer()
        rows = await stored(schema)
        alarms = await fetch_all(schema, "SELECT kind, seq, count FROM alarms")
        state = await fetch_all(schema, "SELECT state, acked_through FROM boxes")
    assert kind == "nack"
    assert nack == {"epoch": journal.epoch, "expected_seq": start, "reason": "bad_signature",
                    "detail": nack["detail"]}
    assert "hash_mismatch" in nack["detail"]
    assert [s for s, _ in rows] == list(range(1, start))
    assert alarms == [("bad_signature", seq, 1)]
    assert state == [("alarm", start - 1)]


async def test_a_malformed_batch_is_refused(tmp_path: Path, journal: DemoJournal) -> None:
    """Entries sent as objects instead of the stored text: nack ``schema`` and an alarm."""
    document = {"box": BOX, "epoch": journal.epoch, "from_seq": 1, "to_seq": 1,
                "entries": [orjson.loads(journal.bodies[0])]}
    async with pg_schema() as schema, mosquitto(tmp_path) as port, \
            running_worker(worker_config(port, schema)), box_client(port, BOX) as box:
        await box.publish(orjson.dumps(document))
        kind, nack = await box.answer()
        alarms = await fetch_all(schema, "SELECT kind FROM alarms")
    assert (kind, nack["expected_seq"], nack["reason"]) == ("nack", 1, "schema")
    assert alarms == [("schema",)]


async def test_two_workers_share_the_subscription(tmp_path: Path, journal: DemoJournal) -> None:
    """Two workers on the shared subscription, batches in flight together: each entry once."""
    last = len(journal.bodies)
    async with pg_schema() as schema, mosquitto(tmp_path) as port, \
            running_worker(worker_config(port, schema, "a")) as a, \
            running_worker(worker_config(port, schema, "b")) as b, box_client(port, BOX) as box:
        for _, _, payload in payloads(BOX, journal, 5):
            await box.publish(payload)
        acks = await box.acked_through(last)
        rows = await stored(schema)
    assert acks[-1] == last
    assert a.stats["batches"] > 0
    assert b.stats["batches"] > 0
    assert rows == [(seq, body) for seq, body in enumerate(journal.bodies, 1)]


async def test_box_status_is_kept(tmp_path: Path) -> None:
    """A box's status message is kept on its row, a bare ``offline`` will included."""
    async with pg_schema() as schema, mosquitto(tmp_path) as port, \
            running_worker(worker_config(port, schema)), box_client(port, BOX) as box:
        status = {"state": "online", "epoch": "e", "version": "0.1.0", "last_seq": 7,
                  "backlog": 3}
        await box.client.publish(f"tillbox/v1/{BOX}/status", orjson.dumps(status), qos=1)
        await box.client.publish("tillbox/v1/box-2/status", b"offline", qos=1)
        for _ in range(100):
            rows = await fetch_all(schema, "SELECT box_id, status FROM boxes ORDER BY box_id")
            if len(rows) == 2:
                break
            await box.silence(0.02)
    assert rows == [(BOX, status), ("box-2", {"state": "offline"})]


async def test_two_workers_two_boxes_small_batches(tmp_path: Path, journal: DemoJournal) -> None:
    """Two boxes sending small batches at once to two workers: each journal stored whole."""
    last = len(journal.bodies)
    async with pg_schema() as schema, mosquitto(tmp_path) as port, \
            running_worker(worker_config(port, schema, "a")), \
            running_worker(worker_config(port, schema, "b")), \
            box_client(port, "box-x") as x, box_client(port, "box-y") as y:
        for (_, _, one), (_, _, other) in zip(payloads("box-x", journal, 2),
                                              payloads("box-y", journal, 2), strict=True):
            await x.publish(one)
            await y.publish(other)
        assert (await x.acked_through(last))[-1] == last
        assert (await y.acked_through(last))[-1] == last
        rows = await fetch_all(schema, "SELECT box_id, count(*), max(seq) FROM entries "
                                       "GROUP BY box_id ORDER BY box_id")
        alarms = await fetch_all(schema, "SELECT kind FROM alarms")
    assert rows == [("box-x", last, last), ("box-y", last, last)]
    assert alarms == []
