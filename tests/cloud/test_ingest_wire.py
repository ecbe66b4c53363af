"""The wire contract's parsing, the continuity checks and the parking of batches (no I/O)."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from ingestkit import DemoJournal, batch_payload, demo_journal

from cloud.ingest import wire
from cloud.ingest.apply import check
from cloud.ingest.checks import Tip, follow, trusted_after
from cloud.ingest.parking import Parking
from cloud.ingest.rows import entry_row

BOX = "box-w"


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> DemoJournal:
    return demo_journal(tmp_path_factory.mktemp("demo"), days=1)


def document(**changes: object) -> bytes:
    base: dict[str, object] = {"box": BOX, "epoch": "e1", "from_seq": 3, "to_seq": 4,
                               "entries": ["{}", "{}"]}
    return orjson.dumps({**base, **changes})


@pytest.mark.parametrize(("payload", "message"), [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (document(box="box-other"), "names box"),
    (document(epoch=""), "epoch"),
    (document(from_seq=0), "from_seq"),
    (document(to_seq=True), "to_seq"),
    (document(to_seq=5), "3 entries"[1:]),
    (document(entries=[]), "non-empty"),
    (document(entries=[{}, {}]), "JSON string"),
    (b" " * (wire.MAX_PAYLOAD + 1), "over"),
])
def test_malformed_batches_are_refused(payload: bytes, message: str) -> None:
    """Each malformed batch is refused with the ``schema`` reason and a detail."""
    with pytest.raises(wire.BatchError) as refused:
        wire.parse_batch(payload, BOX)
    assert refused.value.reason == "schema"
    assert message in refused.value.detail


def test_topics_name_the_box() -> None:
    """Only ``tillbox/v1/{box}/journal/up`` (or the leaf asked for) names a box."""
    assert wire.box_of("tillbox/v1/b-1/journal/up") == "b-1"
    assert wire.box_of("tillbox/v1/b-1/status", "status") == "b-1"
    assert wire.box_of("tillbox/v1/b-1/journal/up/x") is None
    assert wire.box_of("other/v1/b-1/journal/up") is None
    assert wire.box_of("tillbox/v1//journal/up") is None


def test_acks_and_nacks_are_the_contract() -> None:
    """Ack and nack payloads carry exactly the fields of DESIGN §8 (and a detail)."""
    assert orjson.loads(wire.ack_payload("e", 7)) == {"epoch": "e", "acked_through": 7}
    assert orjson.loads(wire.nack_payload("e", 8, "gap", "x" * 900)) == {
        "epoch": "e", "expected_seq": 8, "reason": "gap", "detail": "x" * 500}


def test_continuity_with_the_stored_tips(journal: DemoJournal) -> None:
    """A run must start at the expected seq, continue each chain's tip and keep the identity."""
    rows = [entry_row(body) for body in journal.bodies]
    head, tail = rows[:10], rows[10:20]
    stored = follow(head, 1, {}, (None, None), journal.epoch)
    assert stored.verdict.ok
    assert follow(tail, 11, stored.tips, ("demo-store", "R1"), journal.epoch).verdict.ok
    skipped = follow(tail[1:], 12, stored.tips, ("demo-store", "R1"), journal.epoch)
    assert skipped.verdict.reason == "chain_break"
    assert follow(tail, 12, stored.tips, (None, None), journal.epoch).verdict.reason == "schema"
    other = follow(tail, 11, stored.tips, ("other-store", "R1"), journal.epoch)
    assert other.verdict.reason == "identity"
    assert follow(head, 1, {}, (None, None), "another").verdict.reason == "epoch"
    moved = {chain: replace(tip, sig="x") for chain, tip in stored.tips.items()}
    assert follow(tail, 11, moved, (None, None), journal.epoch).verdict.reason == "chain_break"
    assert isinstance(stored.tips["event"], Tip)


def test_the_genesis_certificate_becomes_trusted(journal: DemoJournal) -> None:
    """After the initialisation event, its certificate is the one trusted."""
    rows = [entry_row(body) for body in journal.bodies[:5]]
    assert trusted_after(rows, ()) == (journal.certificate,)
    assert trusted_after(rows[1:], ("pinned",)) == ("pinned",)


def test_parking_holds_and_times_out(journal: DemoJournal) -> None:
    """Held batches come back in seq order; a box waiting too long is dropped once."""
    def held(start: int) -> wire.Batch:
        return wire.parse_batch(batch_payload(BOX, "e", start, journal.bodies[start - 1:
                                                                             start + 2]), BOX)

    parking = Parking(max_per_box=2)
    assert parking.hold(check(held(7), 7, ()), now=0.0)
    assert parking.hold(check(held(4), 4, ()), now=1.0)
    assert not parking.hold(check(held(10), 10, ()), now=1.0)
    assert [p.checked.batch.from_seq for p in parking.take(BOX)] == [4, 7]
    assert parking.hold(check(held(4), 4, ()), now=5.0)
    assert parking.overdue(now=5.5, timeout=1.0) == []
    assert parking.overdue(now=7.0, timeout=1.0) == [(BOX, "e")]
    assert len(parking) == 0
