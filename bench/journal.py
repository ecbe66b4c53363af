"""Journal benchmarks: what certification costs on top of the bare work it cannot avoid.

1. finalize — a 5-line sale through ``Journal.sell`` (validate, total, sign, durable write)
   versus a bare durable SQLite insert of the same bytes (same pragmas, one transaction per
   insert), interleaved in rounds in the same run on the same disk. Goal: ratio ≤ 2.0.
2. verify — ``fiscal.verify.verify_data_dir`` on a generated journal, with all cores, versus
   the raw ECDSA P-256 verify rate on all cores over messages of the journal's lengths
   (measured just before and just after, averaged).
   Goal: ratio ≥ 0.8.

Usage: ``.venv/bin/python bench/journal.py [--sales N] [--entries N] [--only finalize|verify]``
(see ``--help``). Generated journals are cached under ``bench/out/`` by size.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fiscal.demo import generate
from fiscal.journal import DB_FILE, Journal
from fiscal.requests import Discount, LineRequest, PaymentRequest, SaleRequest
from fiscal.settings import JournalSettings
from fiscal.store import Row, Store

OUT = Path(__file__).resolve().parent / "out"
FINALIZE_GOAL = 2.0
VERIFY_GOAL = 0.8
ROUND = 100
"""Sales per round; each round of journal sales is followed by the same bare inserts."""
SALES_PER_DAY = 200
DEMO_START = dt.date(2024, 1, 2)


@dataclass
class Ratio:
    """One benchmark's outcome against its goal."""

    name: str
    value: float | None
    goal: float
    at_most: bool

    def line(self) -> str:
        """A summary line: value, goal and whether it is met."""
        sign = "≤" if self.at_most else "≥"
        if self.value is None:
            return f"{self.name:<16}   n/a  (goal {sign} {self.goal})  not measured"
        met = self.value <= self.goal if self.at_most else self.value >= self.goal
        verdict = "met" if met else "MISSED"
        return f"{self.name:<16} {self.value:5.2f}  (goal {sign} {self.goal})  {verdict}"

    @property
    def met(self) -> bool:
        """Whether the goal is met (an unmeasured ratio is not)."""
        if self.value is None:
            return False
        return self.value <= self.goal if self.at_most else self.value >= self.goal


# -- 1. finalize --------------------------------------------------------------------------------


def five_line_sale() -> SaleRequest:
    """A typical bakery-grocery ticket: five lines, one weighed, one discounted, cash."""
    lines = (
        LineRequest(label="Baguette tradition", sku="BAG-TRAD", quantity_milli=2000,
                    unit_price=130, vat_rate=550),
        LineRequest(label="Comté AOP 18 mois", sku="COMTE-18", quantity_milli=255,
                    unit_price=2490, vat_rate=550),
        LineRequest(label="Bordeaux rouge 75 cl", sku="BORDEAUX", unit_price=1290,
                    vat_rate=2000, discount=Discount(kind="percent", value=1000)),
        LineRequest(label="Sandwich jambon-beurre", sku="SAND-JB", unit_price=550,
                    vat_rate=1000),
        LineRequest(label="Le Monde", sku="PRESSE-LM", unit_price=350, vat_rate=210),
    )
    return SaleRequest(operator="alice", lines=lines,
                       payments=(PaymentRequest(tender="cash", amount=5000),))


class BareStore:
    """The floor: one durable insert per transaction into a plain table, same pragmas."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")

    def insert(self, body: str) -> None:
        """Insert and commit one row (autocommit: the statement is its own transaction)."""
        self.db.execute("INSERT INTO entries (body) VALUES (?)", (body,))


def micros(samples_ns: list[int]) -> tuple[float, float, float]:
    """Mean, median and 99th percentile in microseconds."""
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, (len(ordered) * 99) // 100)]
    return statistics.fmean(ordered) / 1e3, statistics.median(ordered) / 1e3, p99 / 1e3


@dataclass
class Samples:
    """Timings of the interleaved rounds (ns) and the size of a sale's body."""

    sell: list[int] = field(default_factory=list)
    sell_cpu: list[int] = field(default_factory=list)
    """CPU time of the event loop's thread during each sale (not the commit's thread)."""
    bare: list[int] = field(default_factory=list)
    body_bytes: int = 0


async def timed_rounds(journal: Journal, bare: BareStore, request: SaleRequest,
                       sales: int, rows: list[Row]) -> Samples:
    """Alternate rounds of journal sales and bare inserts of the bodies they produced."""
    samples = Samples()
    for done in range(0, sales, ROUND):
        bodies = []
        for _ in range(min(ROUND, sales - done)):
            start, cpu = time.perf_counter_ns(), time.thread_time_ns()
            entry = await journal.sell(request)
            samples.sell.append(time.perf_counter_ns() - start)
            samples.sell_cpu.append(time.thread_time_ns() - cpu)
            bodies.append(entry.body().decode("utf-8"))
            rows.append(Row(entry, journal.heads()[entry.chain], entry.record["business_date"]))
        for body in bodies:
            start = time.perf_counter_ns()
            bare.insert(body)
            samples.bare.append(time.perf_counter_ns() - start)
        samples.body_bytes = len(bodies[-1].encode("utf-8"))
    return samples


async def store_only(path: Path, rows: list[Row]) -> list[int]:
    """Time the journal's own durable write (aiosqlite, schema, triggers) of prepared rows."""
    store = await Store.open(path)
    samples = []
    try:
        for row in rows:
            start = time.perf_counter_ns()
            await store.insert([row])
            samples.append(time.perf_counter_ns() - start)
    finally:
        await store.close()
    return samples


async def bench_finalize(out: Path, sales: int, warmup: int) -> Ratio:
    """Time ``Journal.sell`` against the bare insert; print the figures."""
    work = Path(tempfile.mkdtemp(prefix="finalize-", dir=out))
    rows: list[Row] = []
    try:
        bare = BareStore(work / "bare.sqlite3")
        request = five_line_sale()
        async with await Journal.open(work / "journal", JournalSettings()) as journal:
            for _ in range(warmup):
                bare.insert((await journal.sell(request)).body().decode("utf-8"))
            samples = await timed_rounds(journal, bare, request, sales, rows)
        bare.db.close()
        store_ns = await store_only(work / "store-only.sqlite3", rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"== finalize: 5-line sale, {sales} ops after {warmup} warm-up, body "
          f"{samples.body_bytes} bytes, in {out} ==")
    return Ratio("finalize ratio", print_finalize(samples, store_ns), FINALIZE_GOAL,
                 at_most=True)


def print_finalize(samples: Samples, store_ns: list[int]) -> float:
    """Print the table of the finalize figures; return the mean ratio."""
    sell, floor = micros(samples.sell), micros(samples.bare)
    print(f"{'µs/op':<22}{'mean':>9}{'p50':>9}{'p99':>9}")
    for name, figures, note in (
            ("Journal.sell", sell, ""),
            ("  its CPU, loop thread", micros(samples.sell_cpu),
             "   (validate, price, sign, serialise, hand over; the commit: aiosqlite's thread)"),
            ("bare SQLite insert", floor, ""),
            ("  journal write only", micros(store_ns),
             "   (the same rows through Store.insert: aiosqlite hop, indexes, head trigger)")):
        print(f"{name:<22}{figures[0]:9.1f}{figures[1]:9.1f}{figures[2]:9.1f}{note}")
    print(f"ratio (mean) {sell[0] / floor[0]:.2f}, ratio (p50) {sell[1] / floor[1]:.2f}\n")
    return sell[0] / floor[0]


# -- 2. verify ----------------------------------------------------------------------------------


def count_entries(data_dir: Path) -> int:
    """Entries in a journal's database (0 when there is none)."""
    if not (data_dir / DB_FILE).exists():
        return 0
    with closing(sqlite3.connect(data_dir / DB_FILE)) as db:
        return int(db.execute("SELECT count(*) FROM entries").fetchone()[0])


async def fill(data_dir: Path, entries: int) -> None:
    """Generate demo history until the journal holds at least ``entries`` entries."""
    start: dt.date | None = DEMO_START
    while (have := count_entries(data_dir)) < entries:
        per_day = SALES_PER_DAY * 121 // 100  # a demo day writes ~1.21 entries per sale
        days = max(1, -(-(entries - have) // per_day))
        await generate(data_dir, days=days, sales_per_day=SALES_PER_DAY, seed=1, start=start)
        start = None


def cached_journal(out: Path, entries: int) -> Path:
    """Return a journal of about ``entries`` entries, building it once per size."""
    data_dir = out / f"journal-{entries}"
    marker = data_dir / "COMPLETE"
    if marker.exists():
        print(f"reusing {data_dir}")
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"generating a journal of {entries} entries in {data_dir} …", flush=True)
    started = time.perf_counter()
    asyncio.run(fill(data_dir, entries))
    print(f"generated {count_entries(data_dir)} entries in {time.perf_counter() - started:.1f} s")
    marker.write_text(f"{count_entries(data_dir)}\n")
    return data_dir


def signed_lengths(data_dir: Path, sample: int = 4096) -> list[int]:
    """Byte lengths of the data-to-sign strings of (an even sample of) the journal's entries."""
    with closing(sqlite3.connect(data_dir / DB_FILE)) as db:
        total = int(db.execute("SELECT count(*) FROM entries").fetchone()[0])
        step = max(1, total // sample)
        rows = db.execute(
            "SELECT length(CAST(json_extract(body, '$.data_to_sign') AS BLOB)) FROM entries "
            "WHERE seq % ? = 0", (step,)).fetchall()
    return [int(length) for (length,) in rows]


def verify_worker(lengths: list[int], seed: int, start_at: float,
                  seconds: float) -> tuple[int, float, float]:
    """Pre-sign messages, then from ``start_at`` verify them for ``seconds``.

    Returns the count, the elapsed time and the CPU time of the verifying.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    public, algorithm = key.public_key(), ec.ECDSA(hashes.SHA256())
    rng = Random(seed)
    messages = [rng.randbytes(length) for length in lengths]
    signed = [(key.sign(message, algorithm), message) for message in messages]
    time.sleep(max(0.0, start_at - time.time()))
    count, index, begin, cpu = 0, 0, time.perf_counter(), time.process_time()
    deadline = begin + seconds
    while time.perf_counter() < deadline:
        for _ in range(32):
            signature, message = signed[index]
            public.verify(signature, message, algorithm)
            index = (index + 1) % len(signed)
        count += 32
    return count, time.perf_counter() - begin, time.process_time() - cpu


@dataclass
class RawRate:
    """Raw ECDSA verifies on all cores: the aggregate rate, and CPU time per verify."""

    rate: float
    workers: int
    cpu_micros: float


def raw_verify_rate(lengths: list[int], seconds: float) -> RawRate:
    """Aggregate ECDSA P-256 verifies per second over all cores."""
    workers = os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0 + 0.2 * workers  # every worker starts verifying together
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(verify_worker, lengths, i, start_at, seconds)
                   for i in range(workers)]
        results = [future.result() for future in futures]
    return RawRate(sum(count / elapsed for count, elapsed, _ in results), workers,
                   sum(cpu for _, _, cpu in results) / sum(count for count, _, _ in results) * 1e6)


def cpu_seconds() -> float:
    """CPU time of this process and of its children waited for, in seconds."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def load_verifier() -> Callable[..., Any] | None:
    """``fiscal.verify.verify_data_dir``, or None when the verifier is not there."""
    try:
        from fiscal.verify import verify_data_dir
    except ImportError as error:
        print(f"verify: skipped, fiscal.verify cannot be imported ({error})\n")
        return None
    return verify_data_dir


def bench_verify(out: Path, entries: int, raw_seconds: float) -> Ratio:
    """Time the verifier on a cached journal against raw verifies; print the figures."""
    verify_data_dir = load_verifier()
    if verify_data_dir is None:
        return Ratio("verify ratio", None, VERIFY_GOAL, at_most=False)
    data_dir = cached_journal(out, entries)
    lengths = signed_lengths(data_dir)
    before = raw_verify_rate(lengths, raw_seconds)
    started, cpu = time.perf_counter(), cpu_seconds()
    report = verify_data_dir(data_dir)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    after = raw_verify_rate(lengths, raw_seconds)
    print(f"== verify: {report.entry_count} entries in {data_dir}, {before.workers} cores ==")
    ratio = print_verify(report, elapsed, cpu, (before, after), raw_seconds)
    return Ratio("verify ratio", ratio, VERIFY_GOAL, at_most=False)


def print_verify(report: Any, elapsed: float, cpu: float, raws: tuple[RawRate, RawRate],
                 raw_seconds: float) -> float:
    """Print the verifier's figures next to the raw verifies'; return the rate ratio."""
    entries = int(report.entry_count)
    rate, raw = entries / elapsed, (raws[0].rate + raws[1].rate) / 2
    print(f"verify_data_dir     {rate:10.0f} entries/s  ({elapsed:.2f} s, "
          f"{'ok' if report.ok else 'NOT OK'}, {len(report.findings)} findings)")
    print(f"raw ECDSA verify    {raw:10.0f} verifies/s ({raws[0].workers} processes, "
          f"{raw_seconds} s before and after: {raws[0].rate:.0f} and {raws[1].rate:.0f})")
    raw_cpu, entry_cpu = (raws[0].cpu_micros + raws[1].cpu_micros) / 2, cpu / entries * 1e6
    print(f"CPU time            {entry_cpu:10.1f} µs/entry (all processes) vs {raw_cpu:.1f} "
          f"µs/verify: ratio {raw_cpu / entry_cpu:.2f}, what the rate ratio tends to on idle "
          "cores")
    print(f"ratio {rate / raw:.2f}\n")
    return rate / raw


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=2000, help="timed sales (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed sales first")
    parser.add_argument("--entries", type=int, default=100_000,
                        help="size of the journal to verify (default 100000)")
    parser.add_argument("--only", choices=("finalize", "verify"), help="run one benchmark")
    parser.add_argument("--raw-seconds", type=float, default=3.0,
                        help="duration of the raw ECDSA verify run")
    parser.add_argument("--out", type=Path, default=OUT, help="work and cache directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run the benchmarks and print the summary."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    ratios = []
    if args.only in (None, "finalize"):
        ratios.append(asyncio.run(bench_finalize(args.out, args.sales, args.warmup)))
    if args.only in (None, "verify"):
        ratios.append(bench_verify(args.out, args.entries, args.raw_seconds))
    print("== summary ==")
    for ratio in ratios:
        print(ratio.line())
    return 1 if args.strict and not all(r.met for r in ratios) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
