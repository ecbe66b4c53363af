"""One ingest worker: an MQTT 5 client on the shared subscription, feeding PostgreSQL.

The worker receives ``journal/up`` batches (``$share/ingest/…``, QoS 1) and handles them in two
stages joined by a short queue, so that verifying a batch (CPU) overlaps storing the one before
(database): the *check* stage reads the box's state, acks duplicates and runs the verifier; the
*store* stage applies each checked batch under the box's row lock (``cloud.ingest.apply``) and
only after the commit answers with the ack — or the nack of a refused batch. Answers go through
an ``Outbox`` and its sender task: no stage ever waits for a PUBACK, so the message loop sees a
lost broker at once (an answer lost with it is harmless: the box resends). Batches ahead of a
gap wait in its ``Parking`` until a commit announced on ``tillbox_ingest`` (``LISTEN``) lets
them through, or the gap timeout nacks the box. It also keeps each box's last ``status`` and
hands replacement boxes their predecessor's chains (``cloud.ingest.handover_desk``).

Its loops run in one ``asyncio.TaskGroup`` per connection; a lost broker or database ends the
group and the worker reconnects with exponential backoff and jitter (from the shortest delay
again after each connection that came up, so a restarted broker is found again promptly).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiomqtt
import psycopg
import structlog

from cloud.db import connect
from cloud.db.migrate import require_current
from cloud.ingest import wire
from cloud.ingest.apply import Answer, Applier, Checked
from cloud.ingest.broker import BrokerAddress, mqtt_client
from cloud.ingest.checks import refuse
from cloud.ingest.handover_desk import REQUEST_FILTER, REQUEST_LEAF, HandoverDesk
from cloud.ingest.outbox import Outbox
from cloud.ingest.parking import Parking
from cloud.ingest.store import CHANNEL, ensure_box, raise_alarm, record_status

log = structlog.get_logger("tillbox.cloud.ingest")

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
CHECKED_AHEAD = 2
"""Batches the check stage may have verified before the store stage takes them."""


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker connects to and how long a batch may wait for the gap before it."""

    broker: BrokerAddress
    dsn: str
    schema: str
    client_id: str
    gap_timeout: float = 5.0
    sweep_interval: float = 0.5


@dataclass(frozen=True)
class Refusal:
    """A batch that could not be read, on its way to be alarmed and nacked."""

    box: str
    payload: bytes
    error: wire.BatchError


@dataclass
class Session:
    """One connection's worth of resources: the MQTT client and the two database sides."""

    client: aiomqtt.Client
    reader: Applier
    """Snapshots, statuses and gap nacks (single statements, no transaction)."""
    writer: Applier
    """Transactions, used under the worker's lock."""
    queue: asyncio.Queue[Checked | Refusal]
    outbox: Outbox
    """Acks and nacks on their way out (see ``cloud.ingest.outbox``)."""


class IngestWorker:
    """Receives, applies and answers batches; see the module docstring."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.parking = Parking()
        self._lock = asyncio.Lock()
        self._checker = ThreadPoolExecutor(1, thread_name_prefix="ingest-check")
        """Where batches are verified: off the event loop, one at a time."""
        self.ready = asyncio.Event()
        self.stats: Counter[str] = Counter()
        """Batches received, held, acks and nacks sent, since the worker started."""
        self.handovers = HandoverDesk(config.dsn, config.schema)
        """Replacement boxes' requests (``cloud.ingest.handover_desk``)."""

    async def run(self) -> None:
        """Work until cancelled, reconnecting to the broker and the database as needed."""
        try:
            await self._reconnecting()
        finally:
            self._checker.shutdown(wait=False, cancel_futures=True)

    async def _reconnecting(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            started = time.monotonic()
            try:
                await self._connected()
            except* (aiomqtt.MqttError, psycopg.OperationalError, OSError) as group:
                if self.ready.is_set() or time.monotonic() - started > BACKOFF_MAX:
                    delay = BACKOFF_FIRST  # it was up: try again soon
                self.ready.clear()
                log.warning("ingest_disconnected", error=repr(group.exceptions[0]),
                            retry_in=round(delay, 2))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _connected(self) -> None:
        config = self.config
        async with await connect(config.dsn, config.schema) as reader, \
                await connect(config.dsn, config.schema) as writer, \
                await connect(config.dsn, config.schema) as listener:
            await require_current(reader)
            await listener.execute(f"LISTEN {CHANNEL}")
            async with mqtt_client(config.broker, config.client_id) as client:
                await _subscribe(client, wire.UP_FILTER, required=True)
                await _subscribe(client, wire.STATUS_FILTER, required=False)
                await _subscribe(client, REQUEST_FILTER, required=False)
                session = Session(client, Applier(reader), Applier(writer),
                                  asyncio.Queue(CHECKED_AHEAD), Outbox())
                self.ready.set()
                log.info("ingest_ready", client_id=config.client_id)
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._check_stage(session))
                    tasks.create_task(self._store_stage(session))
                    tasks.create_task(self._listen(session, listener))
                    tasks.create_task(self._sweep(session))
                    tasks.create_task(session.outbox.send(client))
                    tasks.create_task(self.handovers.serve(client))

    # -- check stage ------------------------------------------------------------------------

    async def _check_stage(self, session: Session) -> None:
        async for message in session.client.messages:
            payload = message.payload
            data = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
            topic = message.topic.value
            if (box := wire.box_of(topic)) is not None:
                self.stats["batches"] += 1
                await self._check(session, box, data)
            elif (box := wire.box_of(topic, "status")) is not None:
                await record_status(session.reader.conn, box, wire.parse_status(data))
            elif (box := wire.box_of(topic, REQUEST_LEAF)) is not None:
                self.handovers.offer(box, message)

    async def _check(self, session: Session, box: str, payload: bytes) -> None:
        try:
            batch = wire.parse_batch(payload, box)
        except wire.BatchError as error:
            await session.queue.put(Refusal(box, payload, error))
            return
        prepared = await session.reader.prepare(batch, self._checker)
        if isinstance(prepared, Answer):  # a duplicate: the current watermark
            self._answer(session, box, prepared)
        else:
            await session.queue.put(prepared)

    # -- store stage ------------------------------------------------------------------------

    async def _store_stage(self, session: Session) -> None:
        while True:
            item = await session.queue.get()
            if isinstance(item, Refusal):
                await self._refuse(session, item)
            else:
                await self._apply(session, item, time.monotonic())

    async def _apply(self, session: Session, checked: Checked, since: float) -> bool:
        """Store a checked batch and answer it; ``False`` when it is (still) ahead of a gap."""
        batch = checked.batch
        async with self._lock:
            answer, held = await self._store(session, checked)
            if held is not None:  # held under the lock: see ``_listen``
                self.stats["held"] += 1
                if not self.parking.hold(held, time.monotonic(), since):
                    log.warning("ingest_parking_full", box=batch.box, from_seq=batch.from_seq)
                return False
        self._answer(session, batch.box, answer)
        if answer.kind == "ack" and batch.box in self.parking:
            await self._retry(session, batch.box)
        return True

    async def _store(self, session: Session, checked: Checked) -> tuple[Answer, Checked | None]:
        """Apply a checked batch in a transaction (held if the box's lock finds a gap)."""
        try:
            return await session.writer.apply(checked)
        except (psycopg.DataError, psycopg.IntegrityError) as error:
            return await self._unstorable(session, checked.batch, error), None

    async def _retry(self, session: Session, box: str) -> None:
        """Try the batches held for ``box`` again, in order, until one is still ahead."""
        held = self.parking.take(box)
        for index, parked in enumerate(held):
            if not await self._apply(session, parked.checked, parked.since):
                for later in held[index + 1:]:
                    self.parking.hold(later.checked, time.monotonic(), later.since)
                return

    async def _refuse(self, session: Session, refusal: Refusal) -> None:
        """Alarm and nack a batch that cannot be read."""
        epoch, error, conn = wire.loose_epoch(refusal.payload), refusal.error, session.writer.conn
        async with self._lock, conn.transaction():
            await ensure_box(conn, refusal.box)
            await raise_alarm(conn, refusal.box, epoch or None, error.reason,
                              refuse(error.reason, error.detail))
        expected = await session.reader.expected(refusal.box, epoch)
        self._answer(session, refusal.box, Answer("nack", epoch, expected.seq,
                                                  error.reason, error.detail))

    async def _unstorable(self, session: Session, batch: wire.Batch,
                          error: psycopg.Error) -> Answer:
        """A verified batch the database refuses (a value out of its range): alarm, nack."""
        detail = f"the database refused the batch: {error}"
        async with session.writer.conn.transaction():
            await raise_alarm(session.writer.conn, batch.box, batch.epoch, wire.INVALID,
                              refuse(wire.INVALID, detail, batch.from_seq))
        expected = await session.reader.expected(batch.box, batch.epoch)
        return Answer("nack", batch.epoch, expected.seq, wire.INVALID, detail)

    def _answer(self, session: Session, box: str, answer: Answer) -> None:
        """Hand the ack or nack to the outbox (never waits for the broker)."""
        self.stats[f"{answer.kind}s"] += 1
        if answer.kind == "ack":
            session.outbox.offer(wire.ack_topic(box), wire.ack_payload(answer.epoch, answer.seq))
            return
        log.warning("ingest_nack", box=box, epoch=answer.epoch, expected_seq=answer.seq,
                    reason=answer.reason, detail=answer.detail)
        session.outbox.offer(wire.nack_topic(box), wire.nack_payload(
            answer.epoch, answer.seq, answer.reason, answer.detail))

    # -- other workers' commits and the gap timeout -----------------------------------------

    async def _listen(self, session: Session, listener: psycopg.AsyncConnection[object]) -> None:
        async for notice in listener.notifies():
            box = notice.payload
            # A batch being applied while the notice came may be about to be held: wait for
            # it (batches are held under the lock), so that no wake-up is lost.
            async with self._lock:
                pass
            if box in self.parking:
                await self._retry(session, box)

    async def _sweep(self, session: Session) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval)
            late = self.parking.overdue(time.monotonic(), self.config.gap_timeout)
            for box, epoch in late:
                self._answer(session, box, await session.reader.expected(box, epoch))


async def _subscribe(client: aiomqtt.Client, topic: str, *, required: bool) -> None:
    """Subscribe at QoS 1; a refusal (SUBACK ≥ 0x80, e.g. the ACL) fails only if required."""
    codes = await client.subscribe(topic, qos=1)
    refused = [code for code in codes if (code if isinstance(code, int) else code.value) >= 0x80]
    if refused and required:
        raise aiomqtt.MqttError(f"the broker refused the subscription to {topic}: {refused}")
    if refused:
        log.warning("ingest_subscription_refused", topic=topic, codes=str(refused))


@asynccontextmanager
async def running_worker(config: WorkerConfig, *, timeout: float = 10.0) -> AsyncIterator[
        IngestWorker]:
    """Run a worker in this event loop while the block runs (ready: subscribed)."""
    worker = IngestWorker(config)
    task = asyncio.create_task(worker.run(), name=f"ingest-{config.client_id}")
    try:
        ready = asyncio.create_task(worker.ready.wait())
        done, _ = await asyncio.wait({ready, task}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            raise TimeoutError(f"ingest worker {config.client_id} not ready in {timeout} s")
        yield worker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
