"""Box replacement in PostgreSQL: the handover computed from what is stored, who gets it, and
the ingest of a successor's journal (no broker: the applier and the desk's answers directly)."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from ingestkit import DEMO_START, DemoJournal, batch_payload, demo_journal, read_journal
from pgkit import DSN, connect, fetch_all, pg_schema
from psycopg_pool import AsyncConnectionPool
from typer.testing import CliRunner

from agent.cli import app
from cloud.db import connection_kwargs
from cloud.hq.app import create_app
from cloud.ingest.apply import Applier
from cloud.ingest.handover import (
    ALREADY_REPLACED,
    ALREADY_SUCCESSOR,
    PLACEMENT_MISMATCH,
    PREDECESSOR_UNKNOWN,
    SAME_BOX,
    HandoverRefused,
    Request,
    grant,
    handover_of,
)
from cloud.ingest.handover_desk import answer, parse_request
from cloud.ingest.store import Connection
from cloud.ingest.wire import parse_batch
from fiscal.demo import SETTINGS, generate
from fiscal.handover import Handover
from fiscal.journal import Journal
from fiscal.testing import FakeClock

OLD, NEW = "box-old", "box-new"
SUCCESSOR_START = dt.datetime(2026, 4, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def predecessor(tmp_path_factory: pytest.TempPathFactory) -> DemoJournal:
    """Two days (30 and 31 March): sales, two day closures and March's closure."""
    return demo_journal(tmp_path_factory.mktemp("old"), days=2, sales_per_day=5)


async def store_journal(conn: Connection, box: str, journal: DemoJournal,
                        size: int = 15) -> None:
    """Apply the whole journal as the ingest would, in batches; every batch acked."""
    applier = Applier(conn)
    for start in range(0, len(journal.bodies), size):
        payload = batch_payload(box, journal.epoch, start + 1, journal.bodies[start:start + size])
        result, _ = await applier.receive(parse_batch(payload, box))
        assert result.kind == "ack", result


def expected_handover(journal: DemoJournal, box: str) -> dict[str, Any]:
    """The handover computed from the journal's own bodies."""
    envelopes = journal.envelopes()
    chains = {e["chain"]: {"chain_seq": e["chain_seq"], "seq": e["seq"], "sig": e["sig"]}
              for e in envelopes}
    closures = {e["record"]["type"]: {name: e["record"][name] for name in (
        "period_from", "period_to")}
        for e in envelopes if e["record"]["type"].endswith("_closure")}
    totals = [e["record"]["total"] for e in envelopes if e["chain"] == "ticket"]
    return {"box_id": box, "epoch": journal.epoch, "store_id": "demo-store",
            "register_id": "R1", "last_seq": len(envelopes), "key_id": envelopes[-1]["key_id"],
            "chains": dict(sorted(chains.items())),
            "perpetual": {"total": sum(totals), "abs": sum(abs(t) for t in totals)},
            "closures": closures}


@asynccontextmanager
async def cloud_with(journal: DemoJournal) -> AsyncIterator[tuple[str, Connection]]:
    """A schema holding the predecessor's whole journal."""
    async with pg_schema() as schema, await connect(schema) as conn:
        await store_journal(conn, OLD, journal)
        yield schema, conn


def request(successor: str = NEW, *, store: str = "demo-store",
            predecessor: str = OLD) -> Request:
    return Request(successor, predecessor, store, "R1")


async def test_the_handover_is_computed_from_the_stored_journal(
        predecessor: DemoJournal) -> None:
    """Tips of every chain, watermark, last key, last day and month closures: as the bodies
    say; no year closure (none was made); a box with nothing stored has no handover."""
    async with cloud_with(predecessor) as (_, conn):
        document = await handover_of(conn, OLD)
        nothing = await handover_of(conn, "box-none")
    assert document == expected_handover(predecessor, OLD)
    assert set(document["closures"]) == {"day_closure", "month_closure"}
    assert document["closures"]["day_closure"]["period_from"] == "2026-03-31"
    Handover.from_json(document)  # valid for the box's journal
    assert nothing is None


async def test_a_handover_is_given_once_and_recorded(predecessor: DemoJournal) -> None:
    """The first successor gets it (recorded with the document), gets the same again when it
    asks again; another box asking for the same predecessor is refused."""
    async with cloud_with(predecessor) as (schema, conn):
        first = await grant(conn, request())
        again = await grant(conn, request())
        with pytest.raises(HandoverRefused) as refused:
            await grant(conn, request("box-other"))
        rows = await fetch_all(schema, "SELECT predecessor, successor, epoch, document, asked "
                               "FROM handovers")
    assert first == again == expected_handover(predecessor, OLD)
    assert rows == [(OLD, NEW, predecessor.epoch, first, 2)]
    assert refused.value.code == ALREADY_REPLACED


@pytest.mark.parametrize(("req", "code"), [
    (request(store="other-store"), PLACEMENT_MISMATCH),
    (request(predecessor="box-none"), PREDECESSOR_UNKNOWN),
    (request(OLD), SAME_BOX),
])
async def test_refused_requests(predecessor: DemoJournal, req: Request, code: str) -> None:
    """Another store, an unknown predecessor, a box replacing itself: refused, nothing given."""
    async with cloud_with(predecessor) as (schema, conn):
        with pytest.raises(HandoverRefused) as refused:
            await grant(conn, req)
        rows = await fetch_all(schema, "SELECT count(*) FROM handovers")
    assert refused.value.code == code
    assert rows == [(0,)]


async def test_tenants_known_on_both_sides_must_match(predecessor: DemoJournal) -> None:
    """With the tenants of both boxes set (provisioning or by hand), another tenant's box is
    refused; the same tenant's is given the handover."""
    async with cloud_with(predecessor) as (_, conn):
        await conn.execute("UPDATE boxes SET tenant_id = 'acme' WHERE box_id = %s", (OLD,))
        await conn.execute("INSERT INTO boxes (box_id, tenant_id) VALUES (%s, 'globex'), "
                           "('box-acme', 'acme')", (NEW,))
        with pytest.raises(HandoverRefused) as refused:
            await grant(conn, request())
        given = await grant(conn, request("box-acme"))
    assert refused.value.code == PLACEMENT_MISMATCH
    assert given["box_id"] == OLD


async def test_a_box_continues_one_predecessor_only(predecessor: DemoJournal,
                                                    tmp_path: Path) -> None:
    """A box given a handover cannot take over a second box's journal."""
    await generate(tmp_path / "second", days=1, sales_per_day=2, seed=8, start=DEMO_START)
    other = read_journal(tmp_path / "second")
    async with cloud_with(predecessor) as (_, conn):
        await store_journal(conn, "box-second", other)
        await grant(conn, request())
        with pytest.raises(HandoverRefused) as refused:
            await grant(conn, request(predecessor="box-second"))
    assert refused.value.code == ALREADY_SUCCESSOR


@pytest.mark.parametrize(("payload", "kind"), [
    (b'{"replaces": "box-old", "store_id": "demo-store", "register_id": "R1"}', "ok"),
    (b'{"replaces": "box/old", "store_id": "demo-store", "register_id": "R1"}', "invalid"),
    (b'{"replaces": "box-old", "store_id": "", "register_id": "R1"}', "invalid"),
    (b'["box-old"]', "invalid"),
    (b"not json", "invalid"),
])
async def test_the_desk_answers_every_request(predecessor: DemoJournal, payload: bytes,
                                              kind: str) -> None:
    """A well-formed request is answered with the handover, anything else with
    ``invalid_request``: an answer always, never an exception."""
    async with cloud_with(predecessor) as (_, conn):
        reply = orjson.loads(await answer(conn, NEW, payload))
    if kind == "ok":
        assert reply == {"ok": True, "handover": expected_handover(predecessor, OLD)}
    else:
        assert reply["ok"] is False
        assert reply["error"]["code"] == "invalid_request"


def test_a_request_names_the_requester_from_the_topic() -> None:
    """The successor is the topic's box, whatever the payload says."""
    parsed = parse_request(b'{"replaces": "a", "store_id": "s", "register_id": "r", '
                           b'"box": "x"}', "b")
    assert parsed == Request("b", "a", "s", "r")


async def successor_journal(directory: Path, document: dict[str, Any]) -> DemoJournal:
    """A replacement box's journal: initialised with the handover, then a day of sales."""
    async with await Journal.open(directory, SETTINGS, clock=FakeClock(SUCCESSOR_START),
                                  handover=Handover.from_json(document)):
        pass
    await generate(directory, days=1, sales_per_day=4, seed=11)
    return read_journal(directory)


async def alarms_of(schema: str, box: str) -> list[tuple[str, int]]:
    return [(kind, seq) for kind, seq in await fetch_all(
        schema, "SELECT kind, seq FROM alarms WHERE box_id = %s", box)]


async def test_the_successor_journal_is_stored_from_the_handed_over_tips(
        predecessor: DemoJournal, tmp_path: Path) -> None:
    """The successor's chains start after the predecessor's tips: accepted, no alarm; its
    chain tips continue the predecessor's numbering."""
    async with cloud_with(predecessor) as (schema, conn):
        document = await grant(conn, request())
        successor = await successor_journal(tmp_path / "new", document)
        await store_journal(conn, NEW, successor, size=7)
        tips = dict(await fetch_all(schema, "SELECT chain, chain_seq FROM chain_tips WHERE "
                                    "box_id = %s", NEW))
        state = await fetch_all(schema, "SELECT acked_through, state FROM boxes WHERE "
                                "box_id = %s", NEW)
        alarms = await alarms_of(schema, NEW)
    envelopes = successor.envelopes()
    assert envelopes[0]["record"]["details"]["continues"] == Handover.from_json(
        document).details()
    first_ticket = next(e for e in envelopes if e["chain"] == "ticket")
    assert first_ticket["chain_seq"] == document["chains"]["ticket"]["chain_seq"] + 1
    written = {e["chain"]: e["chain_seq"] for e in envelopes}
    inherited = {chain: tip["chain_seq"] for chain, tip in document["chains"].items()}
    assert tips == {**inherited, **written}  # a chain not written yet keeps the handed-over tip
    assert state == [(len(envelopes), "ok")]
    assert alarms == []


async def test_a_successor_declaring_another_handover_is_alarmed(
        predecessor: DemoJournal, tmp_path: Path) -> None:
    """A journal continuing tips other than those handed over, or continuing a box while no
    handover was given to it: stored (validly signed), alarm ``handover_mismatch``."""
    async with cloud_with(predecessor) as (schema, conn):
        document = await grant(conn, request())
        forged = {**document, "last_seq": document["last_seq"] - 1}
        mismatched = await successor_journal(tmp_path / "forged", forged)
        await store_journal(conn, NEW, mismatched)
        unrecorded = await successor_journal(tmp_path / "unrecorded", document)
        await store_journal(conn, "box-stranger", unrecorded)
        stored = await fetch_all(schema, "SELECT box_id, acked_through FROM boxes WHERE "
                                 "box_id <> %s ORDER BY box_id", OLD)
        alarms = await alarms_of(schema, NEW) + await alarms_of(schema, "box-stranger")
    assert stored == [("box-new", len(mismatched.bodies)),
                      ("box-stranger", len(unrecorded.bodies))]
    assert alarms == [("handover_mismatch", 1), ("handover_mismatch", 1)]



def fleet_cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["fleet", *map(str, args)])
    return result.exit_code, result.output


def test_enroll_replaces_only_a_revoked_box_of_the_same_register(tmp_path: Path) -> None:
    """``enroll --replaces OLD`` needs OLD enrolled, revoked, of the same tenant, store and
    register; the bundle then carries ``replaces``, which ``apply`` writes into cloud.toml."""
    fleet = tmp_path / "fleet"
    fleet_cli("init", "--dir", fleet, "--broker-host", "mqtt.example.com")
    for box in ("old", "new"):
        fleet_cli("csr", "--data-dir", tmp_path / box, "--box-id", box, "--out",
                  tmp_path / f"{box}.csr")
    placement = ("--tenant", "acme", "--store", "lyon", "--register", "R1")
    assert fleet_cli("enroll", "--dir", fleet, "--csr", tmp_path / "old.csr", *placement)[0] == 0

    def enroll_new(*extra: str) -> tuple[int, str]:
        return fleet_cli("enroll", "--dir", fleet, "--csr", tmp_path / "new.csr", "--renew",
                         *extra)

    refusals = [enroll_new(*placement, "--replaces", "ghost"),
                enroll_new(*placement, "--replaces", "old")]  # still active
    fleet_cli("revoke", "--dir", fleet, "old")
    refusals += [enroll_new("--tenant", "acme", "--store", "paris", "--register", "R1",
                            "--replaces", "old"),
                 enroll_new(*placement, "--replaces", "new")]
    code, out = enroll_new(*placement, "--replaces", "old")
    applied = fleet_cli("apply", "--data-dir", tmp_path / "new", out.strip())
    cloud = tomllib.loads((tmp_path / "new" / "cloud.toml").read_text())["cloud"]
    assert [code for code, _ in refusals] == [1] * 4
    reasons = ("must name an enrolled box", "revoke it first", "same placement",
               "cannot replace itself")
    assert all(reason in message for reason, (_, message) in zip(reasons, refusals,
                                                                    strict=True)), refusals
    assert (code, applied[0]) == (0, 0)
    assert (cloud["box_id"], cloud["replaces"]) == ("new", "old")


async def test_hq_shows_who_replaced_whom(predecessor: DemoJournal) -> None:
    """After a handover, ``GET /v1/boxes/{id}`` of the predecessor names its successor, and the
    successor's names its predecessor; a box without a handover shows neither."""
    async with cloud_with(predecessor) as (schema, conn):
        await grant(conn, request())
        await conn.execute("INSERT INTO boxes (box_id, epoch) VALUES (%s, 'e')", (NEW,))
        pool = AsyncConnectionPool(DSN, kwargs=connection_kwargs(schema), min_size=1,
                                   max_size=1, open=False)
        await pool.open()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(pool)),
                                         base_url="http://hq") as client:
                old, new = [(await client.get(f"/v1/boxes/{box}")).json()
                            for box in (OLD, NEW)]
        finally:
            await pool.close()
    assert (old["replaces"], old["replaced_by"]) == (None, NEW)
    assert (new["replaces"], new["replaced_by"]) == (OLD, None)
