"""A replacement box continues the replaced box's chains and perpetual totals, and verifies."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from journal_factory import FakeClock, open_journal, sale, small_sale

from fiscal.chain import Entry, append
from fiscal.documents import build_sale
from fiscal.errors import InvalidInput, PeriodClosed
from fiscal.handover import Handover
from fiscal.journal import Journal
from fiscal.requests import CashMovementRequest
from fiscal.settings import JournalSettings
from fiscal.store import Row
from fiscal.verify import verify_data_dir
from fiscal.verify.continuation import seeds_of

DAY_1 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY_2 = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)


async def handover_of(journal: Journal, box_id: str = "lyon-r1-old") -> dict[str, Any]:
    """The document the cloud would hand over for ``journal``'s box."""
    closures = {kind: {name: record[name] for name in ("period_from", "period_to")}
                for kind, record in journal.periods.last.items() if record}
    totals = [int(e.record["total"]) async for e in journal.entries()
              if e.chain == "ticket"]
    return {"box_id": box_id, "epoch": await journal.epoch(),
            "store_id": journal.settings.store_id, "register_id": journal.settings.register_id,
            "last_seq": journal.state.seq, "key_id": journal.key.key_id,
            "chains": {chain: {"chain_seq": h.chain_seq, "seq": h.seq, "sig": h.sig}
                       for chain, h in journal.heads().items()},
            "perpetual": {"total": sum(totals), "abs": sum(abs(t) for t in totals)},
            "closures": closures}


async def close_day(journal: Journal, operator: str) -> Entry:
    """Close today's business day; return its day closure."""
    entries = await journal.periods.close_day(operator)
    return next(e for e in entries if e.record["type"] == "day_closure")


async def predecessor(data_dir: Path) -> tuple[dict[str, Any], int]:
    """Box A: two sales and a Z on day 1, a sale and a cash float on day 2 (not closed).

    Returns the handover and A's last Z perpetual total.
    """
    journal = await open_journal(data_dir, FakeClock(DAY_1))
    try:
        await journal.sell(sale())
        await journal.sell(small_sale())
        z = await close_day(journal, "alice")
        journal._clock = FakeClock(DAY_2)  # type: ignore[method-assign]
        await journal.sell(small_sale(400))
        await journal.cash_movement(CashMovementRequest(kind="float", operator="alice",
                                                        amount=10_000))
        return await handover_of(journal), int(z.record["perpetual_total"])
    finally:
        await journal.close()


async def test_a_replacement_continues_every_chain_and_the_perpetual_totals(
        tmp_path: Path) -> None:
    doc, perpetual = await predecessor(tmp_path / "a")
    handover = Handover.from_json(doc)
    clock = FakeClock(DAY_2 + dt.timedelta(hours=2))
    journal = await Journal.open(tmp_path / "b", JournalSettings(), clock, handover=handover)
    try:
        first = await journal.get(1)
        assert first is not None
        assert first.record["code"] == 260
        assert first.record["details"]["continues"] == handover.details()
        assert (first.chain_seq, first.prev_sig) == (doc["chains"]["event"]["chain_seq"] + 1,
                                                     doc["chains"]["event"]["sig"])
        ticket = await journal.sell(small_sale(700))
        assert (ticket.chain_seq, ticket.prev_sig, ticket.first) == (
            doc["chains"]["ticket"]["chain_seq"] + 1, doc["chains"]["ticket"]["sig"], False)
        z = await close_day(journal, "bob")
        assert z.chain_seq == doc["chains"]["closure"]["chain_seq"] + 1
        # the register's totals go on: A's Z, A's unclosed day-2 sale (400), B's day
        assert doc["perpetual"]["total"] == perpetual + 400
        assert (z.record["perpetual_total"], z.record["perpetual_abs"]) == (
            perpetual + 400 + 700, doc["perpetual"]["abs"] + 700)
        assert z.record["sales_total"] == 700
    finally:
        await journal.close()
    report = verify_data_dir(tmp_path / "b", workers=1)
    assert report.ok, report.findings


async def test_a_restarted_replacement_still_continues_chains_it_has_not_used_yet(
        tmp_path: Path) -> None:
    doc, _ = await predecessor(tmp_path / "a")
    settings, clock = JournalSettings(), FakeClock(DAY_2 + dt.timedelta(hours=2))
    journal = await Journal.open(tmp_path / "b", settings, clock,
                                 handover=Handover.from_json(doc))
    await journal.close()
    journal = await Journal.open(tmp_path / "b", settings, clock)
    try:
        assert set(journal.heads()) == {"event"}  # the tips are not this journal's heads
        drop = await journal.cash_movement(CashMovementRequest(kind="safe_drop",
                                                               operator="bob", amount=5_000))
        assert (drop.chain_seq, drop.prev_sig) == (doc["chains"]["cash"]["chain_seq"] + 1,
                                                   doc["chains"]["cash"]["sig"])
    finally:
        await journal.close()
    assert verify_data_dir(tmp_path / "b", workers=1).ok


async def test_a_replacement_cannot_sell_into_a_day_the_replaced_box_closed(
        tmp_path: Path) -> None:
    doc, _ = await predecessor(tmp_path / "a")
    clock = FakeClock(DAY_1 + dt.timedelta(hours=3))
    journal = await Journal.open(tmp_path / "b", JournalSettings(), clock,
                                 handover=Handover.from_json(doc))
    try:
        with pytest.raises(PeriodClosed):
            await journal.sell(small_sale())
        assert journal.state.seq == 1
    finally:
        await journal.close()


async def test_a_journal_that_forgets_its_handover_is_reported(tmp_path: Path) -> None:
    doc, _ = await predecessor(tmp_path / "a")
    journal = await Journal.open(tmp_path / "b", JournalSettings(),
                                 FakeClock(DAY_2 + dt.timedelta(hours=2)),
                                 handover=Handover.from_json(doc))
    try:  # a ticket chained as if the register were new: chain_seq 1, no prev_sig
        heads = {c: h for c, h in journal.state.heads.items() if c != "ticket"}
        state = replace(journal.state, heads=MappingProxyType(heads))
        record = build_sale(small_sale(), journal.settings, dt.date(2026, 3, 3))
        _, entry, head = append(
            state, record, journal.key, DAY_2 + dt.timedelta(hours=3))
        await journal.store.insert([Row(entry, head, "2026-03-03")])
    finally:
        await journal.close()
    codes = {(f.code, f.chain, f.chain_seq) for f in verify_data_dir(tmp_path / "b",
                                                                      workers=1).findings}
    assert ("chain_gap", "ticket", 1) in codes


async def test_a_handover_for_another_register_is_refused_and_writes_nothing(
        tmp_path: Path) -> None:
    doc, _ = await predecessor(tmp_path / "a")
    with pytest.raises(InvalidInput) as raised:
        await Journal.open(tmp_path / "b", JournalSettings(register_id="R2"),
                           FakeClock(DAY_2), handover=Handover.from_json(doc))
    assert raised.value.code == "handover_placement"
    journal = await Journal.open(tmp_path / "b", JournalSettings(register_id="R2"),
                                 FakeClock(DAY_2))
    try:  # a plain start afterwards: a new register's journal, chains from 1
        assert journal.continuation is None
        assert journal.heads()["event"].chain_seq == 1
    finally:
        await journal.close()


@pytest.mark.parametrize(("change", "field"), [
    ({"chains": {}}, "handover.chains"),
    ({"chains": {"bogus": {"chain_seq": 1, "seq": 1, "sig": "A" * 86}}}, "handover.chains"),
    ({"chains": {"ticket": {"chain_seq": 0, "seq": 1, "sig": "A" * 86}}},
     "handover.chains.ticket.chain_seq"),
    ({"chains": {"ticket": {"chain_seq": 2, "seq": 3, "sig": "not base64!"}}},
     "handover.chains.ticket.sig"),
    ({"chains": {"ticket": {"chain_seq": 2.0, "seq": 3, "sig": "A" * 86}}},
     "handover.chains.ticket.chain_seq"),
    ({"closures": {"day_closure": {"period_from": "2026-03-02", "period_to": "2026-02-30"}}},
     "handover.closures.day_closure.period_to"),
    ({"perpetual": {"total": 10, "abs": 5}}, "handover.perpetual.abs"),
    ({"perpetual": {"total": 1.5, "abs": 5}}, "handover.perpetual.total"),
    ({"perpetual": None}, "handover.perpetual"),
    ({"box_id": "../etc"}, "handover.box_id"),
    ({"last_seq": "12"}, "handover.last_seq"),
])
def test_a_malformed_handover_is_refused_naming_the_field(change: dict[str, Any],
                                                          field: str) -> None:
    doc = {"box_id": "old", "epoch": "e1", "store_id": "demo-store", "register_id": "R1",
           "last_seq": 9, "key_id": "k1",
           "chains": {"ticket": {"chain_seq": 4, "seq": 9, "sig": "A" * 86}},
           "perpetual": {"total": 100, "abs": 120}, "closures": {}}
    with pytest.raises(InvalidInput) as raised:
        Handover.from_json({**doc, **change})
    assert raised.value.field == field


@pytest.mark.parametrize("continues", [
    "yes", {"chains": {}}, {"chains": {"ticket": {"chain_seq": "4", "seq": 9, "sig": "x"}}},
    {"chains": {"ticket": {"chain_seq": 4, "seq": 9, "sig": "x"}}},
    {"chains": {"ticket": {"chain_seq": 4, "seq": 9, "sig": "x"}},
     "perpetual": {"total": 1, "abs": 1},
     "closures": {"day_closure": {"period_from": "2026-03-02"}}},
])
def test_the_verifier_reports_a_malformed_continuation(continues: Any) -> None:
    first = {"seq": 1, "chain": "event", "chain_seq": 5,
             "record": {"type": "event", "code": 260, "details": {"continues": continues}}}
    seeds = seeds_of(first)
    assert [f.code for f in seeds.findings][:1] == ["bad_continuation"]
    assert all(f.seq == 1 for f in seeds.findings)


async def test_a_register_never_closed_goes_on_from_all_it_sold_for_every_closure_kind(
        tmp_path: Path) -> None:
    journal = await open_journal(tmp_path / "a", FakeClock(DAY_1))
    try:
        await journal.sell(sale())
        await journal.sell(small_sale(300))
        doc = await handover_of(journal)
    finally:
        await journal.close()
    assert doc["closures"] == {}
    journal = await Journal.open(tmp_path / "b", JournalSettings(), FakeClock(DAY_2),
                                 handover=Handover.from_json(doc))
    try:
        await journal.sell(small_sale(900))
        closures = {e.record["type"]: e.record
                    for e in await journal.periods.close_month("bob")
                    if e.record["type"].endswith("_closure")}
    finally:
        await journal.close()
    for kind in ("day_closure", "month_closure"):
        assert closures[kind]["perpetual_total"] == doc["perpetual"]["total"] + 900
        assert closures[kind]["perpetual_abs"] == doc["perpetual"]["abs"] + 900
    assert verify_data_dir(tmp_path / "b", workers=1).ok
