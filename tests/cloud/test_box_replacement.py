"""Issue 5's box replacement, end to end: a lost box's chains continue on its replacement.

Real pieces throughout: the fleet's TLS Mosquitto and ACL (``brokerkit``), an ingest worker with
the fleet's ingest identity on a freshly migrated PostgreSQL schema, boxes built by
``compose`` with their replicator. Box A sells, closes a day, sells again and replicates; A is
revoked; box B is enrolled with ``--replaces A``, provisioned, and its first start fetches A's
handover from the cloud, so that B's journal continues A's chains and perpetual totals; the
cloud stores B's journal with no alarm. Refusals (another successor, another store) and a
successor declaring another handover than the one it was given are checked too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from brokerkit import PLACEMENT, Broker, Fleet, Identity, make_fleet, running_broker
from pgkit import DSN, fetch_all, pg_schema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "agent"))  # the box's kits

from boxkit import running_box
from replkit import replicating

from agent.composition import Box
from agent.replication.handover import HandoverRefused, fetch_handover, request_handover
from agent.replication.replicator import Replicator
from agent.settings import CloudSettings, JournalSection, Settings, load_settings
from cloud.fleet.apply import apply_bundle
from cloud.fleet.boxkey import make_csr
from cloud.fleet.bundle import write_bundle
from cloud.fleet.enroll import Placement, enroll_box
from cloud.ingest.broker import BrokerAddress
from cloud.ingest.worker import IngestWorker, WorkerConfig, running_worker
from fiscal.handover import Handover
from fiscal.journal import Journal
from fiscal.requests import LineRequest, PaymentRequest, SaleRequest
from fiscal.testing import FakeClock

OLD, NEW = "shop1-a", "shop1-b"
DAY_1 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
WAIT = 20.0
TIMINGS: dict[str, Any] = {
    "ack_timeout_seconds": 1.0, "keepalive_seconds": 5, "backoff_min_seconds": 0.05,
    "backoff_max_seconds": 0.3, "session_expiry_seconds": 300, "refused_backoff_seconds": 0.3}


def sale(number: int) -> SaleRequest:
    """A one-line sale paid exactly in cash."""
    price = 120 + 37 * number
    return SaleRequest(operator="admin", lines=(LineRequest(label=f"Article {number}",
                                                            unit_price=price, vat_rate=2000),),
                       payments=(PaymentRequest(tender="cash", amount=price),))


def worker_config(broker: Broker, service: Identity, schema: str) -> WorkerConfig:
    """An ingest worker presenting the fleet's ingest service identity."""
    address = BrokerAddress(broker.host, broker.port, True, ca_file=service.ca_file,
                            cert_file=service.cert_file, key_file=service.key_file)
    return WorkerConfig(address, DSN, schema, service.name, gap_timeout=1.0,
                        sweep_interval=0.1)


def provision(cloud: Cloud, box_id: str, *, replaces: str | None = None,
              placement: Placement = PLACEMENT) -> CloudSettings:
    """CSR, enrollment (``--replaces``), bundle applied in the box's data dir; the box's
    ``[cloud]`` settings as read from the ``cloud.toml`` the bundle wrote, with test timings
    (and the test broker's port)."""
    data_dir, paths = cloud.tmp / box_id, cloud.fleet.paths
    enrolled = enroll_box(paths, make_csr(data_dir, box_id), placement, replaces=replaces)
    write_bundle(paths.bundle(box_id), enrolled.bundle)
    apply_bundle(data_dir, paths.bundle(box_id))
    fragment = load_settings(data_dir=data_dir).cloud
    broker = f"mqtts://{cloud.broker.host}:{cloud.broker.port}"
    return CloudSettings(**{**fragment.model_dump(), **TIMINGS, "broker": broker})


async def poll(condition: Callable[[], Awaitable[bool]], what: str,
               timeout: float = WAIT) -> None:
    """Await ``condition`` every 0.05 s for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def replicated(box: Box, schema: str, box_id: str) -> None:
    """Wait until the cloud holds the box's whole journal and the box knows it."""
    replicator = box.services.replicator
    assert isinstance(replicator, Replicator)
    last = box.journal.state.seq

    async def done() -> bool:
        rows = await fetch_all(schema, "SELECT acked_through FROM boxes WHERE box_id = %s",
                               box_id)
        return bool(rows) and rows[0][0] == last and replicator.acked_through == last

    await poll(done, f"{box_id}'s journal in the cloud")


async def entries(journal: Journal) -> list[dict[str, Any]]:
    """The journal's entries, in order, as JSON objects."""
    rows = await journal.store.raw_bodies(1, journal.state.seq)
    return [orjson.loads(body) for _, body in rows]


def last_of(envelopes: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The last entry whose record is of ``kind``."""
    return next(e for e in reversed(envelopes) if e["record"]["type"] == kind)


@dataclass
class Cloud:
    """The running cloud of a test: fleet, broker, schema, ingest worker."""

    fleet: Fleet
    broker: Broker
    schema: str
    worker: IngestWorker
    tmp: Path

    def settings(self, box_id: str, cloud: CloudSettings, **journal: str) -> Settings:
        """A box's settings (the test journal identity unless given)."""
        return Settings(data_dir=self.tmp / box_id, cloud=cloud,
                        journal=JournalSection(**journal))


@asynccontextmanager
async def running_cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    """Fleet, TLS broker, migrated schema and one ingest worker, all stopped on exit."""
    fleet = make_fleet(tmp_path / "fleet")
    service = fleet.service("cloud-ingest-1")
    with running_broker(fleet, tmp_path / "broker") as broker:
        async with pg_schema() as schema, \
                running_worker(worker_config(broker, service, schema)) as worker:
            yield Cloud(fleet, broker, schema, worker, tmp_path)


async def predecessor_history(cloud: Cloud) -> list[dict[str, Any]]:
    """Box A: three sales, the day closed, two sales the next day, all replicated; then A is
    revoked (as after a theft). Returns A's entries."""
    settings = provision(cloud, OLD)
    clock = FakeClock(DAY_1)
    async with running_box(cloud.tmp / OLD, clock, cloud=settings) as box:
        replicator = box.services.replicator
        assert isinstance(replicator, Replicator)
        async with replicating(replicator):
            for number in range(3):
                await box.journal.sell(sale(number))
            await box.journal.periods.close_day("admin")
            clock.jump(dt.timedelta(days=1))
            for number in range(3, 5):
                await box.journal.sell(sale(number))
            await replicated(box, cloud.schema, OLD)
        history = await entries(box.journal)
    cloud.fleet.revoke(OLD)
    await asyncio.to_thread(cloud.broker.reload)
    return history


async def test_a_replacement_box_continues_the_chains_of_the_box_it_replaces(
        tmp_path: Path) -> None:
    """B, enrolled with ``--replaces A`` on an empty data dir, fetches A's handover at its
    first start: its journal's seq 1 is the initialisation event declaring it; B's first ticket
    follows A's last (chain_seq + 1, prev_sig); B's day closure adds B's day to A's last
    perpetual totals; B's journal verifies clean and the cloud stores it with no alarm."""
    async with running_cloud(tmp_path) as cloud:
        history = await predecessor_history(cloud)
        settings = provision(cloud, NEW, replaces=OLD)
        assert settings.replaces == OLD  # from the bundle, through cloud.toml
        clock = FakeClock(DAY_1 + dt.timedelta(days=2))
        async with running_box(tmp_path / NEW, clock, cloud=settings) as box:
            replicator = box.services.replicator
            assert isinstance(replicator, Replicator)
            async with replicating(replicator):
                for number in range(10, 13):
                    await box.journal.sell(sale(number))
                await box.journal.periods.close_day("admin")
                await replicated(box, cloud.schema, NEW)
            successor = await entries(box.journal)
        stored = await fetch_all(cloud.schema, "SELECT body FROM entries WHERE box_id = %s "
                                 "ORDER BY seq", NEW)
        alarms = await fetch_all(cloud.schema, "SELECT box_id, kind, detail FROM alarms")
        given = await fetch_all(cloud.schema, "SELECT predecessor, successor, document "
                                "FROM handovers")
    verify = subprocess.run([sys.executable, "-m", "fiscal", "verify", "--data-dir",
                             str(tmp_path / NEW)], capture_output=True, text=True, timeout=120)

    genesis = successor[0]["record"]
    assert (genesis["type"], genesis["code"]) == ("event", 260)
    assert genesis["details"]["continues"]["box_id"] == OLD
    assert genesis["details"]["continues"]["last_seq"] == len(history)
    assert given == [(OLD, NEW, genesis["details"]["continues"])]
    old_ticket = last_of(history, "sale")
    new_ticket = next(e for e in successor if e["record"]["type"] == "sale")
    assert new_ticket["chain_seq"] == old_ticket["chain_seq"] + 1
    assert new_ticket["prev_sig"] == old_ticket["sig"]
    old_z, new_z = last_of(history, "day_closure")["record"], last_of(
        successor, "day_closure")["record"]
    old_tickets = [e["record"]["total"] for e in history if e["chain"] == "ticket"]
    assert sum(old_tickets) != old_z["perpetual_total"]  # A sold after its last Z
    day = sum(e["record"]["total"] for e in successor if e["record"]["type"] == "sale")
    assert new_z["period_total"] == day
    # the register's totals go on from everything A sold, its unclosed tail included
    assert new_z["perpetual_total"] == sum(old_tickets) + day
    assert new_z["perpetual_abs"] == sum(abs(t) for t in old_tickets) + day
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert [orjson.loads(body) for (body,) in stored] == successor
    assert alarms == []


async def test_a_box_is_handed_over_once_and_only_within_its_register(
        tmp_path: Path) -> None:
    """After B was given A's handover, a third box asking for A is refused
    (``already_replaced``), as is a box of another store (``placement_mismatch``); B asking
    again gets the same handover; ``fetch_handover`` keeps asking after a refusal."""
    async with running_cloud(tmp_path) as cloud:
        await predecessor_history(cloud)
        b = cloud.settings(NEW, provision(cloud, NEW, replaces=OLD))
        third = cloud.settings("shop1-c", provision(cloud, "shop1-c", replaces=OLD))
        elsewhere = cloud.settings("shop2-a", provision(cloud, "shop2-a").model_copy(
            update={"replaces": OLD}), store_id="store-2")
        first = await request_handover(b)
        again = await request_handover(b)
        refusals = {}
        for name, settings in (("third", third), ("elsewhere", elsewhere)):
            with pytest.raises(HandoverRefused) as refused:
                await request_handover(settings)
            refusals[name] = refused.value.code
        answered = cloud.worker.handovers.answered
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await fetch_handover(third)
        asked = cloud.worker.handovers.answered - answered
    assert first == again
    assert first["box_id"] == OLD
    assert refusals == {"third": "already_replaced", "elsewhere": "placement_mismatch"}
    assert asked >= 2  # refused, then asked again after cloud.refused_backoff_seconds


async def test_a_successor_declaring_another_handover_raises_an_alarm(
        tmp_path: Path) -> None:
    """B is given A's handover but its journal declares other tips (a doctored first start):
    the cloud stores B's validly signed entries and raises ``handover_mismatch``."""
    async with running_cloud(tmp_path) as cloud:
        await predecessor_history(cloud)
        settings = cloud.settings(NEW, provision(cloud, NEW, replaces=OLD))
        document = await request_handover(settings)
        doctored = {**document, "last_seq": document["last_seq"] - 1}
        clock = FakeClock(DAY_1 + dt.timedelta(days=2))
        async with await Journal.open(tmp_path / NEW, settings.journal.to_fiscal("test"),
                                      clock, handover=Handover.from_json(doctored)):
            pass
        async with running_box(tmp_path / NEW, clock, cloud=settings.cloud) as box:
            replicator = box.services.replicator
            assert isinstance(replicator, Replicator)
            async with replicating(replicator):
                await box.journal.sell(sale(20))
                await replicated(box, cloud.schema, NEW)
            last = box.journal.state.seq
        alarms = await fetch_all(cloud.schema, "SELECT box_id, kind, seq FROM alarms")
        state = await fetch_all(cloud.schema, "SELECT acked_through, state FROM boxes "
                                "WHERE box_id = %s", NEW)
    assert alarms == [(NEW, "handover_mismatch", 1)]
    assert state == [(last, "alarm")]
