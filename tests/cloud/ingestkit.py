"""Test kit for the cloud ingest: demo journals, batches, a private Mosquitto, a box's client.

* ``demo_journal(directory, …)`` — a signed demo history (``fiscal.demo``) and its bodies read
  straight from ``journal.sqlite3``, with its epoch and certificate;
* ``batch_payload`` / ``payloads`` — ``journal/up`` payloads as the box sends them;
* ``mosquitto(directory)`` — a plain broker of our own on a free port (no TLS, no ACL);
* ``BoxClient`` — the box's side of the wire: publishes batches, reads acks and nacks;
* ``worker_config`` — an ingest worker on that broker and a test schema.

Import as ``ingestkit`` from tests in ``tests/cloud``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
from pgkit import DSN

from cloud.ingest.broker import BrokerAddress
from cloud.ingest.worker import WorkerConfig
from fiscal.demo import generate

MOSQUITTO = "/usr/sbin/mosquitto"
WAIT = 5.0
DEMO_START = dt.date(2026, 3, 30)  # crosses a month end


@dataclass(frozen=True)
class DemoJournal:
    """A box's journal as the replicator reads it."""

    data_dir: Path
    epoch: str
    bodies: tuple[str, ...]
    certificate: str

    def records(self) -> list[dict[str, Any]]:
        """Every entry's business record, in order."""
        return [orjson.loads(body)["record"] for body in self.bodies]

    def envelopes(self) -> list[dict[str, Any]]:
        """Every entry's parsed envelope, in order."""
        return [orjson.loads(body) for body in self.bodies]


def read_journal(data_dir: Path) -> DemoJournal:
    """Read a journal's bodies (exactly as stored), epoch and certificate."""
    with closing(sqlite3.connect(data_dir / "journal.sqlite3")) as db:
        bodies = tuple(body for (body,) in db.execute("SELECT body FROM entries ORDER BY seq"))
        (epoch,) = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
    certificate = (data_dir / "keys" / "box-cert.pem").read_text(encoding="ascii")
    return DemoJournal(data_dir, epoch, bodies, certificate)


def demo_journal(directory: Path, *, days: int = 2, sales_per_day: int = 10,
                 seed: int = 5) -> DemoJournal:
    """Generate a demo history in ``directory`` and read it back."""
    asyncio.run(generate(directory, days=days, sales_per_day=sales_per_day, seed=seed,
                         start=DEMO_START))
    return read_journal(directory)


def batch_payload(box: str, epoch: str, from_seq: int, bodies: Sequence[str]) -> bytes:
    """A ``journal/up`` payload: consecutive bodies from ``from_seq``."""
    return orjson.dumps({"box": box, "epoch": epoch, "from_seq": from_seq,
                         "to_seq": from_seq + len(bodies) - 1, "entries": list(bodies)})


def payloads(box: str, journal: DemoJournal, size: int) -> list[tuple[int, int, bytes]]:
    """The whole journal as batches of ``size``: ``(from_seq, to_seq, payload)``."""
    out = []
    for start in range(0, len(journal.bodies), size):
        bodies = journal.bodies[start:start + size]
        out.append((start + 1, start + len(bodies),
                    batch_payload(box, journal.epoch, start + 1, bodies)))
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@asynccontextmanager
async def mosquitto(directory: Path) -> AsyncIterator[int]:
    """A plain Mosquitto on a free port of 127.0.0.1; yields the port, stops it on exit."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      "max_queued_messages 10000\n")
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO, "-c", str(config), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(WAIT):
            while not await _listening(port):
                await asyncio.sleep(0.01)
        yield port
    finally:
        process.terminate()
        await process.wait()


def worker_config(port: int, schema: str, name: str = "ingest-1", *,
                  gap_timeout: float = 5.0) -> WorkerConfig:
    """An ingest worker on the broker at ``port`` working in ``schema``."""
    return WorkerConfig(BrokerAddress("127.0.0.1", port), DSN, schema, f"{name}-{schema}",
                        gap_timeout=gap_timeout, sweep_interval=0.05)


class BoxClient:
    """The box's end of the replication wire, for tests: publish batches, read answers."""

    def __init__(self, client: aiomqtt.Client, box: str) -> None:
        self.client, self.box = client, box

    async def publish(self, payload: bytes) -> None:
        """Publish a ``journal/up`` payload at QoS 1 (returns at the broker's PUBACK)."""
        await self.client.publish(f"tillbox/v1/{self.box}/journal/up", payload, qos=1)

    async def answer(self, timeout: float = WAIT) -> tuple[str, dict[str, Any]]:
        """The next ack or nack: ``("ack" | "nack", payload)``."""
        async with asyncio.timeout(timeout):
            message = await anext(aiter(self.client.messages))
        kind = message.topic.value.rsplit("/", 1)[1]
        assert isinstance(message.payload, bytes)
        return kind, orjson.loads(message.payload)

    async def acked_through(self, seq: int, timeout: float = WAIT) -> list[int]:
        """Read answers until an ack covers ``seq``; return every acked_through seen."""
        seen: list[int] = []
        async with asyncio.timeout(timeout):
            while not seen or seen[-1] < seq:
                kind, payload = await self.answer(timeout)
                assert kind == "ack", payload
                seen.append(payload["acked_through"])
        return seen

    async def silence(self, seconds: float) -> None:
        """Assert that no answer comes for ``seconds``."""
        try:
            kind, payload = await self.answer(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {kind}: {payload}")


@asynccontextmanager
async def box_client(port: int, box: str) -> AsyncIterator[BoxClient]:
    """A connected box client subscribed to its acks and nacks."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"{box}-{uuid.uuid4().hex[:6]}",
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(f"tillbox/v1/{box}/journal/ack", qos=1)
        await client.subscribe(f"tillbox/v1/{box}/journal/nack", qos=1)
        yield BoxClient(client, box)
