"""Replication benchmark: drain a journal backlog into PostgreSQL through the broker.

1. end to end — the whole journal (default: the cached 100,000-entry demo journal) published
   as the box's replicator does (``journal/up`` batches of ≤ ``--batch`` entries and ≤ 256 KiB,
   at most ``--window`` batches unacknowledged, QoS 1) to a Mosquitto of our own, received by
   ``tillbox cloud ingest --workers N`` (shared subscription), verified, stored in a fresh
   PostgreSQL schema; timed from the first publish until the cloud's ack covers the last seq.
2. raw — the same payloads published by a bare paho client at QoS 1 to the same broker on a
   topic nobody reads (PUBACKs only), measured just before and just after (averaged).

Prints entries/s of both and the ratio. Goals: ≥ 5,000 entries/s end to end, ≥ 0.5 × raw.
Then the CPU the ingest's processes spent per entry during the end-to-end run and how busy the
whole machine was (on a shared machine the rate depends on what else runs; the CPU per entry
much less), and a breakdown: the ingest's per-entry costs (verifier, column extraction, the
SQL of a batch) measured in this process on a sample of the same batches.

Usage: ``.venv/bin/python bench/replication.py [--entries N] [--workers N] [--window N]``
(see ``--help``). The journal is cached under ``bench/out/`` (shared with ``journal.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import orjson
import paho.mqtt.client as paho
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.journal import OUT, cached_journal  # noqa: E402
from cloud.db import connect, migrate  # noqa: E402
from cloud.ingest.apply import Applier, Checked  # noqa: E402
from cloud.ingest.checks import trusted_after, verify_run  # noqa: E402
from cloud.ingest.rows import entry_row  # noqa: E402
from cloud.ingest.wire import parse_batch  # noqa: E402

MOSQUITTO = "/usr/sbin/mosquitto"
DSN = os.environ.get("TILLBOX_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MAX_PAYLOAD = 256 * 1024
BOX = "bench-box"
E2E_GOAL, RATIO_GOAL = 5000.0, 0.5


@dataclass(frozen=True)
class Batch:
    """One ``journal/up`` payload."""

    from_seq: int
    to_seq: int
    payload: bytes


def read_journal(data_dir: Path) -> tuple[str, list[str]]:
    """The journal's epoch and bodies, exactly as stored."""
    with closing(sqlite3.connect(data_dir / "journal.sqlite3")) as db:
        (epoch,) = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        bodies = [body for (body,) in db.execute("SELECT body FROM entries ORDER BY seq")]
    return epoch, bodies


def make_batches(epoch: str, bodies: list[str], size: int) -> list[Batch]:
    """Consecutive batches of at most ``size`` entries and ``MAX_PAYLOAD`` bytes."""
    batches, start = [], 0
    while start < len(bodies):
        items: list[bytes] = []
        total = 256
        while start + len(items) < len(bodies) and len(items) < size:
            item = orjson.dumps(bodies[start + len(items)])
            if items and total + len(item) + 1 > MAX_PAYLOAD:
                break
            items.append(item)
            total += len(item) + 1
        header = orjson.dumps({"box": BOX, "epoch": epoch, "from_seq": start + 1,
                               "to_seq": start + len(items)})
        payload = header[:-1] + b',"entries":[' + b",".join(items) + b"]}"
        batches.append(Batch(start + 1, start + len(items), payload))
        start += len(items)
    return batches


# -- infrastructure ------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_broker(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A Mosquitto of our own (no persistence, room for the backlog)."""
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 100000\nmax_inflight_messages 0\n")
    process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.02)
    process.kill()
    raise RuntimeError("mosquitto did not start")


def start_ingest(port: int, schema: str, workers: int, log: Path) -> subprocess.Popen[bytes]:
    """``tillbox cloud ingest`` with ``workers`` processes; returns once all are subscribed."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "cloud", "ingest", "--dsn", DSN, "--schema",
             schema, "--broker", f"mqtt://127.0.0.1:{port}", "--workers", str(workers),
             "--client-id", f"bench-{schema}"], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 30
    while log.read_text(errors="replace").count("ingest_ready") < workers:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"the ingest did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return process


async def create_schema() -> str:
    """A fresh, migrated schema."""
    schema = f"bench_{secrets.token_hex(4)}"
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await migrate(conn, schema)
    return schema


async def drop_schema(schema: str) -> None:
    """Drop a schema made by ``create_schema``."""
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())


async def stored(schema: str) -> tuple[int, int]:
    """Entries stored and the box's watermark."""
    async with await connect(DSN, schema) as conn:
        row = await (await conn.execute(
            "SELECT (SELECT count(*) FROM entries), (SELECT acked_through FROM boxes "
            "WHERE box_id = %s)", (BOX,))).fetchone()
    assert row is not None
    return int(row[0]), int(row[1] or 0)


# -- 1. end to end -------------------------------------------------------------------------------


class Sender:
    """The box's side: a window of unacknowledged batches, rewinding on a nack."""

    def __init__(self, client: aiomqtt.Client, batches: list[Batch], window: int) -> None:
        self.client, self.batches, self.window = client, batches, window
        self.acked = 0
        self.next = 0
        self.nacks = 0
        self.changed = asyncio.Event()

    async def listen(self) -> None:
        """Follow acks (watermark) and nacks (rewind)."""
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            answer = orjson.loads(message.payload)
            if message.topic.value.endswith("/ack"):
                self.acked = max(self.acked, answer["acked_through"])
            else:
                self.nacks += 1
                self.next = self._index_of(answer["expected_seq"])
            self.changed.set()

    def _index_of(self, seq: int) -> int:
        return next(i for i, b in enumerate(self.batches) if b.to_seq >= seq)

    async def run(self) -> None:
        """Publish until the last seq is acknowledged."""
        last = self.batches[-1].to_seq
        topic = f"tillbox/v1/{BOX}/journal/up"
        while self.acked < last:
            done = self._index_of(self.acked + 1) if self.acked < last else len(self.batches)
            while self.next < len(self.batches) and self.next < done + self.window:
                await self.client.publish(topic, self.batches[self.next].payload, qos=1)
                self.next += 1
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 10)
            except TimeoutError:
                self.next = self._index_of(self.acked + 1)  # the box's ack timeout: rewind


async def end_to_end(port: int, batches: list[Batch], window: int) -> float:
    """Seconds from the first publish to the ack of the last seq."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=BOX,
                              protocol=aiomqtt.ProtocolVersion.V5, timeout=30) as client:
        await client.subscribe(f"tillbox/v1/{BOX}/journal/ack", qos=1)
        await client.subscribe(f"tillbox/v1/{BOX}/journal/nack", qos=1)
        sender = Sender(client, batches, window)
        listener = asyncio.create_task(sender.listen())
        started = time.perf_counter()
        await sender.run()
        elapsed = time.perf_counter() - started
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    if sender.nacks:
        print(f"  ({sender.nacks} nacks: batches resent)")
    return elapsed


def process_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, used = {}, {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            stat = ""
        if not stat:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick

    def descends(pid: int) -> bool:
        while pid > 1 and pid != root:
            pid = parents.get(pid, 0)
        return pid == root

    return sum(seconds for pid, seconds in used.items() if descends(pid))


def machine_ticks() -> tuple[int, int]:
    """Busy and total CPU ticks of the machine since boot (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


# -- 2. raw publishing ---------------------------------------------------------------------------


def raw_publish(port: int, payloads: list[bytes]) -> float:
    """Seconds for a bare paho client to publish every payload at QoS 1 and get its PUBACK."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"raw-{os.getpid()}",
                         protocol=paho.MQTTv5)
    done = threading.Event()
    acked = [0]

    def on_publish(*_: object) -> None:
        acked[0] += 1
        if acked[0] == len(payloads):
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        started = time.perf_counter()
        for payload in payloads:
            client.publish("bench/raw/journal", payload, qos=1)
        if not done.wait(300):
            raise RuntimeError("raw publishing did not finish")
        return time.perf_counter() - started
    finally:
        client.disconnect()
        client.loop_stop()


# -- where the time goes -------------------------------------------------------------------------


async def breakdown(batches: list[Batch], sample: int) -> dict[str, float]:
    """Per-entry µs of the ingest's steps, in this process, on the first ``sample`` batches."""
    chosen = [parse_batch(b.payload, BOX) for b in batches[:sample]]
    seconds = {"verify": 0.0, "columns": 0.0, "store": 0.0}
    certificates: tuple[str, ...] = ()
    schema = await create_schema()
    try:
        async with await connect(DSN, schema) as conn:
            applier = Applier(conn)
            for batch in chosen:
                started = time.perf_counter()
                verdict = verify_run(batch.bodies, batch.from_seq, certificates)
                verified = time.perf_counter()
                rows = tuple(entry_row(body) for body in batch.bodies)
                extracted = time.perf_counter()
                checked = Checked(batch, batch.from_seq, certificates, verdict, rows)
                answer, _ = await applier.receive(batch, checked)
                assert answer.kind == "ack", answer
                seconds["verify"] += verified - started
                seconds["columns"] += extracted - verified
                seconds["store"] += time.perf_counter() - extracted
                certificates = trusted_after(rows, certificates)
    finally:
        await drop_schema(schema)
    entries = sum(len(batch.bodies) for batch in chosen)
    return {name: spent / entries * 1e6 for name, spent in seconds.items()}


# -- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000, help="journal size")
    parser.add_argument("--batch", type=int, default=200, help="entries per batch (at most)")
    parser.add_argument("--window", type=int, default=4, help="unacknowledged batches")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="ingest worker processes (default: one per CPU)")
    parser.add_argument("--out", type=Path, default=OUT, help="cache directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Usage:
    """What the end-to-end run cost: the ingest's CPU seconds, the machine's busy share."""

    ingest_cpu: float
    machine_busy: float


def report(entries: int, batches: list[Batch], e2e: float, raw: list[float],
           parts: dict[str, float], workers: int, window: int, usage: Usage) -> bool:
    """Print the figures; return whether both goals are met."""
    size = sum(len(b.payload) for b in batches)
    rate, raw_rate = entries / e2e, entries / (sum(raw) / len(raw))
    print(f"== replication: {entries} entries in {len(batches)} batches "
          f"(avg {entries / len(batches):.0f} entries, {size / len(batches) / 1024:.0f} KiB), "
          f"window {window}, {workers} ingest workers, {os.cpu_count()} CPUs ==")
    print(f"end to end        {rate:10.0f} entries/s  ({e2e:.2f} s, "
          f"{size / e2e / 1e6:.1f} MB/s)")
    print(f"raw paho QoS 1    {raw_rate:10.0f} entries/s  ({len(batches) / min(raw):.0f} "
          f"msgs/s best; before {raw[0]:.2f} s, after {raw[-1]:.2f} s)")
    print(f"ratio {rate / raw_rate:.3f}")
    print(f"ingest CPU        {usage.ingest_cpu / entries * 1e6:10.0f} µs per entry (all its "
          f"processes); machine {usage.machine_busy:.0%} busy during the run")
    print("ingest per entry, one process: " + ", ".join(
        f"{name} {micros:.0f} µs" for name, micros in parts.items()))
    e2e_met, ratio_met = rate >= E2E_GOAL, rate / raw_rate >= RATIO_GOAL
    print("== summary ==")
    print(f"end to end  {rate:8.0f} entries/s (goal ≥ {E2E_GOAL:.0f})  "
          f"{'met' if e2e_met else 'MISSED'}")
    print(f"ratio       {rate / raw_rate:8.3f}   (goal ≥ {RATIO_GOAL})     "
          f"{'met' if ratio_met else 'MISSED'}")
    return e2e_met and ratio_met


def main(argv: list[str]) -> int:
    """Run the benchmark and print the summary."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    epoch, bodies = read_journal(cached_journal(args.out, args.entries))
    batches = make_batches(epoch, bodies, args.batch)
    work = Path(tempfile.mkdtemp(prefix="replication-"))
    broker, port = start_broker(work)
    schema = asyncio.run(create_schema())
    ingest = None
    try:
        payloads = [b.payload for b in batches]
        raw = [raw_publish(port, payloads)]
        ingest = start_ingest(port, schema, args.workers, work / "ingest.log")
        cpu, ticks = process_cpu(ingest.pid), machine_ticks()
        e2e = asyncio.run(end_to_end(port, batches, args.window))
        busy, total = (now - then for now, then in zip(machine_ticks(), ticks, strict=True))
        usage = Usage(process_cpu(ingest.pid) - cpu, busy / total)
        count, acked = asyncio.run(stored(schema))
        assert (count, acked) == (len(bodies), len(bodies)), (count, acked)
        raw.append(raw_publish(port, payloads))
    finally:
        if ingest is not None:
            ingest.terminate()
            ingest.wait(15)
        broker.terminate()
        broker.wait(5)
        asyncio.run(drop_schema(schema))
        shutil.rmtree(work, ignore_errors=True)
    parts = asyncio.run(breakdown(batches, min(20, len(batches))))
    met = report(len(bodies), batches, e2e, raw, parts, args.workers, args.window, usage)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
