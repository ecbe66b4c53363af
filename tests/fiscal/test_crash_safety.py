"""Crash safety: a journal process killed with SIGKILL at random moments while it appends loses
nothing it confirmed, and the journal always reopens and verifies.

Each round forks a child (``crash_child.run``) from this already-initialised process — no
interpreter start-up per round — that appends to one shared journal and reports each confirmed
entry on a pipe. The parent waits for a random number of confirmations, sleeps 0–50 ms, kills
the child, then checks the file read-only (every confirmed entry stored with the same
signature, bodies parse, sequences and chains continuous, heads on the last entries), reopens
it with ``Journal.open`` and, every 20 rounds and at the end, runs the full verifier. Where
forking is unsafe (threads running) the child is spawned with ``sys.executable`` instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import importlib.util
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import aiosqlite
import orjson
import pytest

from fiscal.chain import Entry
from fiscal.journal import DB_FILE, Journal
from fiscal.verify import verify_data_dir

pytestmark = pytest.mark.slow

ROUNDS = 200
VERIFY_EVERY = 20
CHILD = Path(__file__).with_name("crash_child.py")
OPEN_CLOCK = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def load_child() -> ModuleType:
    """Import ``crash_child.py`` from this directory (tests are not a package)."""
    spec = importlib.util.spec_from_file_location("crash_child", CHILD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Child:
    """A running child: its pid, the read end of its report pipe, its Popen when spawned."""

    pid: int
    fd: int
    process: subprocess.Popen[bytes] | None = None
    buffer: bytes = b""

    def read_lines(self, count: int, timeout: float = 60.0) -> None:
        """Read until ``count`` complete lines arrived (fewer if the child died first)."""
        deadline = time.monotonic() + timeout
        while self.buffer.count(b"\n") < count:
            left = deadline - time.monotonic()
            assert left > 0, "the child stopped reporting"
            ready, _, _ = select.select([self.fd], [], [], left)
            chunk = os.read(self.fd, 65536) if ready else b""
            if ready and not chunk:
                break
            self.buffer += chunk

    def kill(self) -> list[str]:
        """SIGKILL the child, reap it, and return every complete line it wrote."""
        os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        else:
            os.waitpid(self.pid, 0)
        while chunk := os.read(self.fd, 65536):
            self.buffer += chunk
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        else:
            os.close(self.fd)
        assert self.buffer.endswith(b"\n") or not self.buffer, "a report line was cut"
        return self.buffer.decode().splitlines()


def single_threaded() -> bool:
    """Let the aiosqlite workers of closed journals finish; True if no other thread is left."""
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            thread.join(1.0)
    return threading.active_count() == 1


def start_child(child: ModuleType, data_dir: Path, seed: int) -> Child:
    """Fork (or, with threads running, spawn) a child appending to ``data_dir``."""
    if os.environ.get("TILLBOX_CRASH_SPAWN") or not single_threaded():
        process = subprocess.Popen([sys.executable, str(CHILD), str(data_dir), str(seed)],
                                   stdout=subprocess.PIPE)
        assert process.stdout is not None
        return Child(process.pid, process.stdout.fileno(), process)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 2
        try:
            os.close(read_end)
            status = child.run(data_dir, seed, write_end)
        finally:
            os._exit(status)
    os.close(write_end)
    return Child(pid, read_end)


@dataclass
class Ledger:
    """What the parent knows: confirmed entries, and the stored entries checked so far."""

    confirmed: dict[int, str] = field(default_factory=dict)
    checked_through: int = 0
    chains: dict[str, tuple[int, str]] = field(default_factory=dict)
    unconfirmed_tails: int = 0
    spawned: int = 0

    def record(self, lines: list[str]) -> None:
        """Note the child's confirmations; fail on an error it reported."""
        for line in lines:
            assert not line.startswith("!"), f"the child failed: {line}"
            seq, sig = line.split()
            self.confirmed[int(seq)] = sig


def has_entries(data_dir: Path) -> bool:
    """Whether the journal file exists and its tables were created (a kill may come before:
    the schema script runs statement by statement, and the next open completes it)."""
    if not (data_dir / DB_FILE).exists():
        return False
    # read-write: a writer killed mid-transaction leaves a WAL that a read-only connection cannot
    # recover ("attempt to write a readonly database"); any later open of the journal recovers it
    db = sqlite3.connect(data_dir / DB_FILE)
    try:
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
                            " ('entries', 'heads')").fetchone()[0]
    finally:
        db.close()
    return bool(tables == 2)


def check_entry(ledger: Ledger, seq: int, chain: str, chain_seq: int, body: str) -> None:
    """The body parses, matches its index columns and continues its chain."""
    entry = Entry.from_json(orjson.loads(body))
    assert (entry.seq, entry.chain, entry.chain_seq) == (seq, chain, chain_seq)
    previous_seq, previous_sig = ledger.chains.get(chain, (0, None))
    assert chain_seq == previous_seq + 1, f"chain {chain} jumps to {chain_seq} at seq {seq}"
    assert entry.prev_sig == previous_sig, f"prev_sig of seq {seq} is not its chain's last sig"
    ledger.chains[chain] = (chain_seq, entry.sig)


def check_file(data_dir: Path, ledger: Ledger) -> int:
    """Check the killed journal read-only; return its number of entries."""
    # read-write: a writer killed mid-transaction leaves a WAL that a read-only connection cannot
    # recover ("attempt to write a readonly database"); any later open of the journal recovers it
    db = sqlite3.connect(data_dir / DB_FILE)
    try:
        stored = dict(db.execute("SELECT seq, sig FROM entries").fetchall())
        new = db.execute("SELECT seq, chain, chain_seq, body FROM entries WHERE seq > ? "
                         "ORDER BY seq", (ledger.checked_through,)).fetchall()
        heads = {chain: (chain_seq, sig) for chain, chain_seq, sig in
                 db.execute("SELECT chain, chain_seq, sig FROM heads")}
    finally:
        db.close()
    assert sorted(stored) == list(range(1, len(stored) + 1)), "global sequence has gaps"
    lost = {seq: sig for seq, sig in ledger.confirmed.items() if stored.get(seq) != sig}
    assert not lost, f"confirmed appends lost or changed: {sorted(lost)[:10]}"
    for row in new:
        check_entry(ledger, *row)
    assert heads == ledger.chains, "the heads table does not name the last entries"
    if len(stored) > max(ledger.confirmed, default=0):
        ledger.unconfirmed_tails += 1
    ledger.checked_through = len(stored)
    return len(stored)


async def close_leaked_connections(before: set[threading.Thread]) -> None:
    """Close the aiosqlite connections a failed ``Journal.open`` left open (their non-daemon
    worker threads would otherwise keep the test process from exiting)."""
    for connection in gc.get_objects():
        if (isinstance(connection, aiosqlite.Connection)
                and getattr(connection, "_thread", None) not in before):
            await connection.close()


async def reopen(data_dir: Path, count: int) -> None:
    """``Journal.open`` succeeds on the killed journal and resumes after entry ``count``."""
    before = set(threading.enumerate())
    try:
        journal = await Journal.open(data_dir, clock=lambda: OPEN_CLOCK)
    except BaseException:
        await close_leaked_connections(before)
        raise
    try:
        assert journal.state.seq == count
    finally:
        await journal.close()


def verify(data_dir: Path) -> None:
    """The auditor's verifier finds nothing."""
    report = verify_data_dir(data_dir, workers=1)
    assert report.ok, list(report.findings[:10])


def one_round(child: ModuleType, data_dir: Path, rng: random.Random, ledger: Ledger,
              seed: int) -> None:
    """Start a child, let it confirm a random number of appends, wait 0–50 ms, kill it."""
    worker = start_child(child, data_dir, seed)
    ledger.spawned += worker.process is not None
    worker.read_lines(rng.choice((0, 1, 2, 5, rng.randint(0, 40))))
    time.sleep(rng.uniform(0, 0.05))
    ledger.record(worker.kill())


def test_sigkill_never_loses_a_confirmed_append(tmp_path: Path) -> None:
    """200 kills at random moments: every confirmed append survives, the journal reopens
    and verifies."""
    child, rng, ledger = load_child(), random.Random(20261120), Ledger()
    data_dir = tmp_path / "box"
    started = time.perf_counter()
    for index in range(ROUNDS):
        one_round(child, data_dir, rng, ledger, seed=index)
        count = check_file(data_dir, ledger) if has_entries(data_dir) else 0
        asyncio.run(reopen(data_dir, max(count, 1)))  # an empty journal is initialised now
        if (index + 1) % VERIFY_EVERY == 0 or index == ROUNDS - 1:
            verify(data_dir)
    elapsed = time.perf_counter() - started
    print(f"\ncrash safety: {ROUNDS} kills in {elapsed:.1f} s, {ledger.checked_through} entries,"
          f" {len(ledger.confirmed)} confirmed; {ledger.unconfirmed_tails} kills left entries"
          f" the child had not reported yet; {ledger.spawned} children spawned, the rest forked")
    assert len(ledger.confirmed) > ROUNDS


def test_sigkill_during_the_first_open(tmp_path: Path) -> None:
    """A box killed while it creates its key and journal still opens afterwards."""
    child, rng = load_child(), random.Random(1)
    for index in range(30):
        data_dir = tmp_path / f"box{index}"
        worker = start_child(child, data_dir, seed=index)
        time.sleep(rng.uniform(0, 0.03))
        worker.kill()
        count = check_file(data_dir, Ledger()) if has_entries(data_dir) else 0
        asyncio.run(reopen(data_dir, max(count, 1)))  # an empty journal is initialised now
        verify(data_dir)
