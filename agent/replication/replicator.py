"""The replicator: the journal's entries above the cloud's watermark, to the cloud, in order.

The journal is the outbox (DESIGN §8): nothing is queued anywhere else. One connection at a
time (``agent.replication.link``); on each (re)connect the replicator subscribes to its
``journal/ack``, ``journal/nack``, ``config/desired`` and ``cmd/+`` topics, publishes its birth
on ``status`` (retained; the last will says ``offline``) and rewinds to ``acked_through + 1``.
Then two loops run side by side until the link drops:

* the sender reads consecutive stored entries (``Store.raw_bodies``) and publishes them as
  ``journal/up`` batches (``agent.replication.batches``), keeping at most ``cloud.window``
  batches unacknowledged; it polls the journal's sequence every 0.1 s for new entries, and
  rewinds to ``acked_through + 1`` when the oldest batch waited ``cloud.ack_timeout_seconds``
  (after a reconnection: 1 s, then doubling up to it, until the first ack);
* the reader handles ``journal/ack {epoch, acked_through}`` (persisted, only forward),
  ``journal/nack {epoch, expected_seq}`` (rewind there; the same nack again within a growing
  hold is not acted on twice) and hands ``config/desired`` and ``cmd/…`` to the downlink.

A lost link is retried with exponential backoff and jitter; a refusal (PUBACK, SUBACK or
CONNACK reason code ≥ 0x80) raises the ``replication_refused`` alarm once and waits
``cloud.refused_backoff_seconds``. Tail protection: a journal that ends before the cloud's
acknowledged watermark (at start, or told by a later ack) raises ``journal_behind_cloud`` and
journals the integrity event (JET 90); the fiscal-write guard then refuses sales until an admin
acknowledges.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiomqtt
import orjson
import structlog
from paho.mqtt.properties import Properties

from agent.cancellation import cancel_all
from agent.http.context import AppServices
from agent.observability import INTEGRITY_FAILURE, write_event
from agent.replication.batches import MAX_PAYLOAD, Batch, at_utc_of, encode_batch
from agent.replication.commands import CommandRunner
from agent.replication.downlink import ConfigStore, Downlink
from agent.replication.link import (
    Backoff,
    BoxClient,
    BrokerAddress,
    Link,
    Refused,
    connect_client,
    connect_refusal,
    tls_context,
)
from agent.replication.logs import RecentLogs
from agent.replication.state import Counters, LinkState, ReplicationSnapshot
from agent.replication.watermark import Watermarks, tail_problem
from agent.settings import box_id as settings_box_id

POLL_SECONDS = 0.1
STATUS_INTERVAL = 10.0
NACK_HOLD = 0.2
FIRST_ACK_WAIT = 1.0
"""After a (re)connection the first ack is awaited this long, then twice as long each time up
to ``cloud.ack_timeout_seconds``: batches published before the cloud's ingest is back on a
restarted broker are lost with it, and are resent soon."""
OFFLINE_TIMEOUT = 1.0
TAIL_ALARM = "journal_behind_cloud"
REFUSED_ALARM = "replication_refused"
SUBSCRIPTIONS = ("journal/ack", "journal/nack", "config/desired", "cmd/+")
log = structlog.get_logger("tillbox.replication")


@dataclass(frozen=True)
class InFlight:
    """A published batch the cloud has not acknowledged yet."""

    from_seq: int
    to_seq: int
    sent_at: float


def parse_object(payload: bytes) -> dict[str, Any] | None:
    """A JSON object, or None."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def seq_field(document: dict[str, Any], name: str) -> int | None:
    """A non-negative integer field, or None."""
    value = document.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def race(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run side by side until the first ends; cancel the others; raise the first's error."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_all(tasks)  # not one cancel + gather: a swallowed cancel would hang it
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


class Replicator:
    """Journal → cloud over MQTT, with its downlink; ``run`` is the daemon's task."""

    def __init__(self, services: AppServices, box_id: str, epoch: str, acked_through: int,
                 acked_at: str | None, watermarks: Watermarks, downlink: Downlink,
                 logs: RecentLogs) -> None:
        self.services, self.journal, self.health = services, services.journal, services.health
        self.settings = services.settings.cloud
        self.broker = self.settings.broker or ""
        self.address = BrokerAddress.parse(self.broker)
        self.box_id, self.epoch, self.prefix = box_id, epoch, f"tillbox/v1/{box_id}/"
        self.acked_through, self.last_ack_at = acked_through, acked_at
        self.watermarks, self.downlink, self.logs = watermarks, downlink, logs
        self.link_state: LinkState = "offline"
        self.last_error: str | None = None
        self.counters = Counters()
        self.next_seq = acked_through + 1
        self.inflight: deque[InFlight] = deque()
        self._link: Link | None = None
        self._tls: ssl.SSLContext | None = None
        self._backoff = Backoff(self.settings.backoff_min_seconds,
                                self.settings.backoff_max_seconds)
        self._wake = asyncio.Event()
        self._ack_wait = self.settings.ack_timeout_seconds
        self._entry_size = 2048.0
        self._oldest: tuple[int, str | None] | None = None
        self._nack_seq, self._nack_until, self._nack_repeats = 0, 0.0, 0
        self._status_at, self._status_seen = 0.0, (-1, -1)
        self._tail_reported = self._refusal_alarmed = False

    @classmethod
    async def open(cls, services: AppServices) -> Replicator:
        """Build the replicator from the settings; check the journal's tail against the cloud."""
        journal = services.journal
        box_id = settings_box_id(services.settings)
        epoch = await journal.epoch()
        watermarks = await Watermarks.open(services.db)
        current = await watermarks.load(epoch)
        logs = RecentLogs()
        logs.attach()
        downlink = Downlink(services, await ConfigStore.open(services.db),
                            CommandRunner(services, logs))
        replicator = cls(services, box_id, epoch, current.acked_through, current.acked_at,
                         watermarks, downlink, logs)
        problem = tail_problem(journal.state.seq, current, await watermarks.other_epochs(epoch))
        if problem is not None:
            await replicator.behind_cloud(problem, current.acked_through)
        return replicator

    async def close(self) -> None:
        """Stop collecting log lines."""
        self.logs.detach()

    def tasks(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """The loop the daemon runs (named task)."""
        return {"replication": self.run}

    # -- observability ------------------------------------------------------------------------

    async def snapshot(self) -> ReplicationSnapshot:
        """Link state, backlog, lag (age of the oldest unacknowledged entry), last ack."""
        seq = self.journal.state.seq
        backlog = max(0, seq - self.acked_through)
        if backlog:
            await self._refresh_oldest()
        return ReplicationSnapshot(
            link=self.link_state, broker=self.broker, box_id=self.box_id, epoch=self.epoch,
            journal_seq=seq, acked_through=self.acked_through, backlog=backlog,
            lag_seconds=self._lag() if backlog else 0.0, last_ack_at=self.last_ack_at,
            last_error=self.last_error, counters=self.counters)

    async def _refresh_oldest(self) -> None:
        wanted = self.acked_through + 1
        if self._oldest is not None and self._oldest[0] == wanted:
            return
        rows = await self.journal.store.raw_bodies(wanted, 1)
        if rows and rows[0][0] == wanted:
            self._oldest = (wanted, at_utc_of(rows[0][1]))

    def _lag(self) -> float:
        if self._oldest is None or self._oldest[0] != self.acked_through + 1 or not self._oldest[1]:
            return 0.0
        at = dt.datetime.fromisoformat(self._oldest[1])
        return max(0.0, round((self.journal.now() - at).total_seconds(), 3))

    def _status(self, state: str) -> bytes:
        seq = self.journal.state.seq
        return orjson.dumps({"state": state, "epoch": self.epoch,
                             "version": self.services.version, "last_seq": seq,
                             "backlog": max(0, seq - self.acked_through)})

    # -- alarms -------------------------------------------------------------------------------

    async def behind_cloud(self, problem: str, acked_through: int) -> None:
        """Tail protection: raise the integrity alarm and journal event 90 (once per run)."""
        if self._tail_reported:
            return
        self._tail_reported = True
        log.error("journal_behind_cloud", detail=problem)
        self.health.raise_alarm(TAIL_ALARM, problem, blocking=True)
        details = {"scope": "replication", "epoch": self.epoch,
                   "journal_seq": self.journal.state.seq, "acked_through": acked_through}
        # shielded: a journal write must not be cut in half when the link drops meanwhile
        await asyncio.shield(write_event(self.journal, self.health, INTEGRITY_FAILURE, details))

    def _refused(self, refusal: Refused) -> float:
        self.link_state, self.last_error = "refused", str(refusal)
        self.counters.refusals += 1
        log.error("replication_refused", error=str(refusal),
                  retry_in=self.settings.refused_backoff_seconds)
        if not self._refusal_alarmed:
            self._refusal_alarmed = True
            self.health.raise_alarm(REFUSED_ALARM, str(refusal))
        return self.settings.refused_backoff_seconds

    def _lost(self, error: BaseException) -> float:
        delay = self._backoff.next()
        self.link_state, self.last_error = "offline", str(error) or type(error).__name__
        self.counters.connection_failures += 1
        log.warning("replication_link_lost", error=self.last_error, retry_in=round(delay, 3))
        return delay

    # -- the connection -----------------------------------------------------------------------

    async def run(self) -> None:
        """Replicate until cancelled: the connection loop and the downlink worker."""
        worker = asyncio.create_task(self.downlink.worker(self.publish),
                                     name="replication downlink")
        try:
            while True:
                await asyncio.sleep(await self._attempt())
        finally:
            await cancel_all([worker])  # its publishes may swallow one cancellation

    async def _attempt(self) -> float:
        """One connection, served until it ends; return the delay before the next one."""
        self.link_state = "connecting"
        try:
            await self._connect_and_serve()
        except Refused as refusal:
            return self._refused(refusal)
        except aiomqtt.MqttError as error:
            refused = connect_refusal(error)
            return self._refused(refused) if refused else self._lost(error)
        except Exception as error:  # a broken link (OSError, TLS) or a bug: retry, never die
            if not isinstance(error, OSError | TimeoutError):
                log.exception("replication_failed")
            return self._lost(error)
        return self._lost(ConnectionError("the session ended"))

    async def _connect_and_serve(self) -> None:
        if self.address.tls and self._tls is None:
            self._tls = await asyncio.to_thread(tls_context, self.settings)
        will = aiomqtt.Will(self.prefix + "status", self._status("offline"), qos=1, retain=True)
        client = connect_client(self.settings, self.box_id, self.address, self._tls, will)
        async with client:
            self.counters.connections += 1
            self._backoff.reset()
            link = Link(client)
            await link.subscribe([self.prefix + topic for topic in SUBSCRIPTIONS])
            await link.publish(self.prefix + "status", self._status("online"), retain=True)
            self._status_at = asyncio.get_running_loop().time()
            self._status_seen = (self.journal.state.seq, self.acked_through)
            self.link_state, self.last_error = "connected", None
            self._rewind(self.acked_through + 1)
            self._ack_wait = min(FIRST_ACK_WAIT, self.settings.ack_timeout_seconds)
            log.info("replication_connected", broker=self.broker, box_id=self.box_id,
                     acked_through=self.acked_through, journal_seq=self.journal.state.seq)
            self._link = link
            try:
                await race(self._receive(client), self._send(link))
            finally:
                self._link = None
                await self._say_offline(link)

    async def _say_offline(self, link: Link) -> None:
        """On shutdown (cancellation), publish ``offline`` ourselves: no will on a clean exit."""
        task = asyncio.current_task()
        if task is None or not task.cancelling():
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(OFFLINE_TIMEOUT):
                await link.publish(self.prefix + "status", self._status("offline"), retain=True)

    async def publish(self, suffix: str, payload: bytes, *, retain: bool = False,
                      props: Properties | None = None) -> bool:
        """Publish under the box's subtree if connected (the downlink's answers)."""
        link = self._link
        if link is None:
            log.warning("replication_not_connected", topic=suffix)
            return False
        try:
            await link.publish(self.prefix + suffix, payload, retain=retain, props=props)
        except (aiomqtt.MqttError, Refused) as error:
            log.warning("replication_publish_failed", topic=suffix, error=str(error))
            return False
        return True

    # -- the reader ---------------------------------------------------------------------------

    async def _receive(self, client: BoxClient) -> None:
        async for message in client.messages:
            suffix = str(message.topic).removeprefix(self.prefix)
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload or "").encode()
            if suffix == "journal/ack":
                await self._on_ack(data)
            elif suffix == "journal/nack":
                self._on_nack(data)
            elif suffix == "config/desired" or suffix.startswith("cmd/"):
                self.downlink.offer(suffix, data, message.properties)

    async def _on_ack(self, payload: bytes) -> None:
        document = parse_object(payload)
        if document is None or document.get("epoch") != self.epoch:
            return
        through = seq_field(document, "acked_through")
        if through is None:
            return
        self.counters.acks += 1
        while self.inflight and self.inflight[0].to_seq <= through:
            self.inflight.popleft()
            self._ack_wait = self.settings.ack_timeout_seconds
        self._wake.set()
        if through > self.journal.state.seq:
            await self.behind_cloud(f"the cloud acknowledged through seq {through} but the "
                                    f"journal ends at seq {self.journal.state.seq}", through)
        if through > self.acked_through:
            await self._advance(through)

    async def _advance(self, through: int) -> None:
        self.acked_through, self.last_ack_at = through, self.health.now_text()
        await self.watermarks.advance(self.epoch, through, self.last_ack_at)
        self.next_seq = max(self.next_seq, through + 1)
        if through >= self._nack_seq:
            self._nack_repeats = 0

    def _on_nack(self, payload: bytes) -> None:
        document = parse_object(payload)
        if document is None or document.get("epoch") != self.epoch:
            return
        expected = seq_field(document, "expected_seq")
        if not expected:
            return
        self.counters.nacks += 1
        self.last_error = f"nack: expected seq {expected} ({document.get('reason')})"
        now = asyncio.get_running_loop().time()
        if expected == self._nack_seq and now < self._nack_until:
            return  # already resending from there
        self._nack_repeats = self._nack_repeats + 1 if expected == self._nack_seq else 0
        hold = min(self.settings.ack_timeout_seconds, NACK_HOLD * 2 ** min(self._nack_repeats, 16))
        self._nack_seq, self._nack_until = expected, now + hold
        reason = document.get("reason")
        (log.warning if reason == "gap" else log.error)(
            "replication_nack", expected_seq=expected, reason=reason,
            detail=document.get("detail"), resend_hold=round(hold, 3))
        self._rewind(min(expected, self.journal.state.seq + 1))
        self._wake.set()

    def _rewind(self, seq: int) -> None:
        self.next_seq = max(1, seq)
        self.inflight.clear()

    # -- the sender ---------------------------------------------------------------------------

    async def _send(self, link: Link) -> None:
        while True:
            self._wake.clear()
            self._check_ack_timeout()
            batch = await self._next_batch() if self._may_send() else None
            if batch is not None:
                await link.publish(self.prefix + "journal/up", batch.payload)
                self._sent(batch)
                continue
            await self._publish_status(link)
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
            # arrives as the event is set, and the task then never ends
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sleep_time()):
                    await self._wake.wait()

    def _may_send(self) -> bool:
        return (len(self.inflight) < self.settings.window
                and self.next_seq <= self.journal.state.seq)

    async def _next_batch(self) -> Batch | None:
        upper = self.journal.state.seq  # committed and durable: never beyond it
        start = self.next_seq
        wanted = min(self.settings.batch_size, upper - start + 1,
                     int(MAX_PAYLOAD / self._entry_size * 1.25) + 1)
        rows = await self.journal.store.raw_bodies(start, max(1, wanted))
        if self.next_seq != start:  # a nack or an ack timeout rewound us meanwhile
            return None
        batch = encode_batch(self.box_id, self.epoch, [row for row in rows if row[0] <= upper])
        if batch is None or batch.from_seq != start:
            log.error("journal_entry_missing", seq=self.next_seq)
            return None
        self._entry_size = max(64.0, len(batch.payload) / batch.count)
        return batch

    def _sent(self, batch: Batch) -> None:
        now = asyncio.get_running_loop().time()
        self.inflight.append(InFlight(batch.from_seq, batch.to_seq, now))
        self.next_seq = batch.to_seq + 1
        self.counters.batches_sent += 1
        self.counters.entries_sent += batch.count
        self._refusal_alarmed = False
        if batch.from_seq == self.acked_through + 1:
            self._oldest = (batch.from_seq, batch.first_at_utc)

    def _check_ack_timeout(self) -> None:
        if not self.inflight:
            return
        waited = asyncio.get_running_loop().time() - self.inflight[0].sent_at
        if waited > self._ack_wait:
            self.counters.ack_timeouts += 1
            log.warning("replication_ack_timeout", from_seq=self.inflight[0].from_seq,
                        acked_through=self.acked_through, waited=round(waited, 3))
            self._rewind(self.acked_through + 1)
            self._ack_wait = min(self._ack_wait * 2, self.settings.ack_timeout_seconds)

    def _sleep_time(self) -> float:
        if not self.inflight:
            return POLL_SECONDS
        deadline = self.inflight[0].sent_at + self._ack_wait
        return max(0.005, min(POLL_SECONDS, deadline - asyncio.get_running_loop().time()))

    async def _publish_status(self, link: Link) -> None:
        """Refresh the retained status now and then, when it changed."""
        now = asyncio.get_running_loop().time()
        seen = (self.journal.state.seq, self.acked_through)
        if now - self._status_at < STATUS_INTERVAL or seen == self._status_seen:
            return
        self._status_at, self._status_seen = now, seen
        await link.publish(self.prefix + "status", self._status("online"), retain=True)
