"""Issue 5's end-to-end proof: box → TLS broker (killed, restarted, stopped) → ingest → PostgreSQL.

A provisioned box (fleet certificate, ``mqtts://``) makes 10,000 real sales through its journal
while its replicator runs; the fleet's Mosquitto is killed and restarted 10 times and stopped
once for a few seconds; an ingest worker (fleet service identity, shared subscription) verifies
and stores the batches in a freshly migrated PostgreSQL schema. At the end the cloud holds the
box's journal exactly: every seq once, each body byte for byte as the box stored it, no alarm,
and the stored journal re-verifies as a whole.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from brokerkit import Broker, Identity, make_fleet, running_broker
from pgkit import DSN, fetch_all, pg_schema

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "agent"))  # the box's kits

from boxkit import running_box
from replkit import replicating, stored_bodies

from agent.composition import Box
from agent.replication.replicator import Replicator
from agent.settings import CloudSettings
from cloud.ingest.broker import BrokerAddress
from cloud.ingest.worker import IngestWorker, WorkerConfig, running_worker
from fiscal.requests import LineRequest, PaymentRequest, SaleRequest
from fiscal.verify import verify_entries

BOX_ID = "shop1-r1"
SALES = 10_000
RESTARTS = 10
STOP_SECONDS = 3.0
SALES_PER_SECOND = 900.0
"""The shop's pace (a busy day compressed): sales keep coming while the broker is away."""
RECONNECT_WAIT = 10.0
DRAIN_WAIT = 30.0


def cloud_settings(broker: Broker, box: Identity) -> CloudSettings:
    """The box's ``[cloud]`` section as ``tillbox fleet apply`` writes it, with test timings."""
    return CloudSettings(
        enabled=True, broker=f"mqtts://{broker.host}:{broker.port}", box_id=box.name,
        ca_file=box.ca_file, cert_file=box.cert_file, key_file=box.key_file,
        ack_timeout_seconds=1.0, keepalive_seconds=5, backoff_min_seconds=0.05,
        backoff_max_seconds=0.3, session_expiry_seconds=300)


def worker_config(broker: Broker, service: Identity, schema: str) -> WorkerConfig:
    """An ingest worker presenting the fleet's ingest service identity."""
    address = BrokerAddress(broker.host, broker.port, True, ca_file=service.ca_file,
                            cert_file=service.cert_file, key_file=service.key_file)
    return WorkerConfig(address, DSN, schema, service.name, gap_timeout=1.0,
                        sweep_interval=0.1)


def sale(number: int) -> SaleRequest:
    """A one- or two-line sale paid exactly, in cash or by card."""
    lines = tuple(LineRequest(label=f"Article {number % 97}-{index}",
                              unit_price=50 + (number * 37 + index * 11) % 4950,
                              vat_rate=(550, 1000, 2000)[(number + index) % 3])
                  for index in range(1 + number % 2))
    total = sum(line.unit_price for line in lines)
    tender = "cash" if number % 3 else "card"
    return SaleRequest(operator="admin", lines=lines,
                       payments=(PaymentRequest(tender=tender, amount=total),))


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 20 ms for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Chaos:
    """The broker's bad day: kills and one outage, each at a given number of sales made."""

    broker: Broker
    replicator: Replicator
    worker: IngestWorker
    plan: list[tuple[int, str]]
    """``(after so many sales, "kill" | "stop")``, in order."""
    slack: int = 0
    """Sales the shop may make past an action's point before that action has begun."""
    sold: int = 0
    started: int = 0
    last_sale_at: float = 0.0
    done: list[str] = field(default_factory=list)
    moments: list[int] = field(default_factory=list)
    """The sales made when each outage began."""

    @classmethod
    def planned(cls, broker: Broker, replicator: Replicator, worker: IngestWorker) -> Chaos:
        """10 kills and one stop, spread over the sales with a little seeded jitter."""
        rng = random.Random(5)
        actions = ["kill"] * RESTARTS
        actions.insert(RESTARTS // 2, "stop")
        step = SALES // (len(actions) + 1)
        plan = [(step * (index + 1) + rng.randint(-step // 4, step // 4), action)
                for index, action in enumerate(actions)]
        return cls(broker, replicator, worker, plan, slack=step // 2)

    def limit(self) -> int:
        """How many sales the shop may have made now: every outage begins while it sells."""
        return self.plan[self.started][0] + self.slack if self.started < len(self.plan) \
            else SALES

    async def run(self) -> None:
        """Act at each point of the plan, once both ends are connected again after the last."""
        acked = 0
        for at, action in self.plan:
            await until(lambda: self.sold >= at, 60, f"{at} sales")  # noqa: B023
            await until(lambda: self._flowing(acked), RECONNECT_WAIT,  # noqa: B023
                        "both ends connected and the cloud acknowledging again")
            acked = self.replicator.acked_through
            await self._act(action)

    async def _act(self, action: str) -> None:
        """Kill and restart the broker, or stop it for a while; wait for the box to reconnect."""
        connections = self.replicator.counters.connections
        self.started += 1
        self.moments.append(self.sold)
        if action == "kill":
            await asyncio.to_thread(self.broker.restart, kill=True)
        else:
            await asyncio.to_thread(self.broker.stop, kill=True)
            await asyncio.sleep(STOP_SECONDS)
            await asyncio.to_thread(self.broker.start)
        self.done.append(action)
        await until(lambda: self.replicator.counters.connections > connections,
                    RECONNECT_WAIT, "the box to reconnect")

    def _flowing(self, acked: int) -> bool:
        """Both ends connected, and an ack came since the last outage (when there is news)."""
        return (self.replicator.link_state == "connected" and self.worker.ready.is_set()
                and (self.replicator.acked_through > acked
                     or self.replicator.acked_through == self.replicator.journal.state.seq))


async def sell(box: Box, chaos: Chaos) -> None:
    """Make the sales at the shop's pace, counting them for the chaos."""
    journal, started = box.services.journal, time.monotonic()
    for number in range(SALES):
        if number >= chaos.limit():
            await until(lambda: number < chaos.limit(), 30, "the next outage")  # noqa: B023
        await journal.sell(sale(number))
        chaos.sold = number + 1
        ahead = started + chaos.sold / SALES_PER_SECOND - time.monotonic()
        if ahead > 0 or number % 20 == 0:
            await asyncio.sleep(max(0.0, ahead))
    chaos.last_sale_at = time.monotonic()


async def cloud_watermark(schema: str) -> int:
    """The cloud's acked_through for the box (0 before its first batch)."""
    rows = await fetch_all(schema, "SELECT acked_through FROM boxes WHERE box_id = %s", BOX_ID)
    return int(rows[0][0]) if rows else 0


async def poll(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Await ``condition`` every 0.1 s for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


def replicator_of(box: Box) -> Replicator:
    """The box's replicator (composed because ``[cloud] enabled``)."""
    replicator = box.services.replicator
    assert isinstance(replicator, Replicator)
    return replicator


@pytest.mark.slow
async def test_ten_thousand_sales_reach_postgresql_through_broker_restarts(
        tmp_path: Path) -> None:
    """10,000 sales, 10 broker kills and an outage: PostgreSQL holds the journal exactly."""
    fleet = make_fleet(tmp_path / "fleet")
    data_dir = tmp_path / "box"
    # MQTT key and bundle in a directory of their own: the journal's first start deletes every
    # *.pem it finds in its data dir's keys/ (see the report of this test's author)
    identity = fleet.box(BOX_ID, data_dir=tmp_path / "provisioning")
    service = fleet.service("cloud-ingest-1")
    with running_broker(fleet, tmp_path / "broker") as broker:
        async with pg_schema() as schema, \
                running_worker(worker_config(broker, service, schema)) as worker, \
                running_box(data_dir, cloud=cloud_settings(broker, identity)) as box:
            replicator, journal = replicator_of(box), box.services.journal
            started = time.monotonic()
            async with replicating(replicator):
                chaos = Chaos.planned(broker, replicator, worker)
                async with asyncio.TaskGroup() as group:
                    group.create_task(sell(box, chaos))
                    group.create_task(chaos.run())
                last = journal.state.seq

                async def drained() -> bool:
                    return (await cloud_watermark(schema) == last
                            and replicator.acked_through == last)

                await poll(drained, DRAIN_WAIT, "the cloud to hold the whole journal")
            ended = time.monotonic()
            duration, selling, drain = (ended - started, chaos.last_sale_at - started,
                                        ended - chaos.last_sale_at)
            expected = dict(await stored_bodies(journal))
            certificate = (data_dir / "keys" / "box-cert.pem").read_text(encoding="ascii")
            rows = await fetch_all(schema, "SELECT seq, body FROM entries WHERE box_id = %s "
                                           "ORDER BY seq", BOX_ID)
            others = await fetch_all(schema, "SELECT count(*) FROM entries WHERE box_id <> %s",
                                     BOX_ID)
            alarms = await fetch_all(schema, "SELECT kind, seq, detail FROM alarms")
            boxes = await fetch_all(schema, "SELECT box_id, state, acked_through FROM boxes")
            acked = await replicator.watermarks.load(replicator.epoch)
    print(f"\n{SALES} sales, journal seq {last}, {len(chaos.done)} broker outages "
          f"({chaos.done.count('kill')} kills, {chaos.done.count('stop')} stop of "
          f"{STOP_SECONDS:.0f} s, after sales {chaos.moments}): {duration:.1f} s "
          f"({selling:.1f} s selling, the cloud complete {drain:.1f} s after the last sale), "
          f"{last / duration:.0f} entries/s; box "
          f"{replicator.counters.connections} connections, {replicator.counters.ack_timeouts} "
          f"ack timeouts, {replicator.counters.nacks} nacks; ingest {dict(worker.stats)}")
    assert chaos.done.count("kill") == RESTARTS
    assert chaos.done.count("stop") == 1
    assert max(chaos.moments) < SALES  # every outage while the shop was selling
    assert last == SALES + 1  # the initialisation event, then the sales
    assert [int(seq) for seq, _ in rows] == list(range(1, last + 1))  # contiguous, once each
    assert others == [(0,)]
    assert {int(seq): body for seq, body in rows} == expected  # byte for byte
    assert alarms == []
    assert boxes == [(BOX_ID, "ok", last)]
    report = verify_entries([body for _, body in rows], trusted_certificates=[certificate],
                            partial=False, workers=1)
    assert list(report.findings) == []
    assert acked.acked_through == last


async def test_the_ingest_is_back_soon_after_each_broker_kill(tmp_path: Path) -> None:
    """Killed and restarted again and again, the broker has the worker back within a second
    each time (its backoff starts again from the shortest delay after a connection that came
    up), and the worker leaves no unretrieved exception behind (warnings are errors)."""
    fleet = make_fleet(tmp_path / "fleet")
    service = fleet.service("cloud-ingest-1")
    with running_broker(fleet, tmp_path / "broker") as broker:
        async with pg_schema() as schema, \
                running_worker(worker_config(broker, service, schema)) as worker:
            for _ in range(4):
                await asyncio.to_thread(broker.restart, kill=True)
                await until(lambda: not worker.ready.is_set(), 2, "the worker to notice")
                await until(worker.ready.is_set, 1.0, "the worker to be back")
