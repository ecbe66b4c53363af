"""The verification run: read entries in order, fan chunks out to workers, join their results.

The main process reads raw bodies, builds the key timeline from key events as it reads (so that
each chunk leaves with the keys trusted up to its end), and hands chunks to a process pool; it
then joins the chunks' results in order — the links across chunk boundaries, the closures, the
references — and finally checks the chain heads and the cloud's watermark. Small reads (or
``workers=1``) run in-process.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

import orjson

from fiscal.verify import findings as f
from fiscal.verify.chains import HeadRow, Tracker, check_heads
from fiscal.verify.chunks import ChunkResult, Job, check_chunk
from fiscal.verify.continuation import Seeds, seeds_of
from fiscal.verify.entries import Context
from fiscal.verify.findings import Finding, Report
from fiscal.verify.key_registry import KeyRegistry
from fiscal.verify.references import References
from fiscal.verify.totals import Closures

CHUNK = 2000
"""Entries per chunk; a read no longer than one chunk runs in-process."""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Options:
    """How to verify: see ``fiscal.verify.verify_entries``."""

    heads: Mapping[str, HeadRow] | None = None
    trusted_certificates: Sequence[str] = ()
    partial: bool = False
    acked_through: int | None = None
    workers: int | None = None
    progress: Progress | None = None


@dataclass(frozen=True)
class Outcome:
    """The report, and the keys the journal trusts at its end (for the data dir's certificate)."""

    report: Report
    current_keys: frozenset[str]


def _first_fields(raw: bytes | str) -> dict[str, Any]:
    try:
        envelope = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):  # TypeError: no body at all
        return {}
    return envelope if isinstance(envelope, dict) else {}


class Verification:
    """The main process's state over one run."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.registry = KeyRegistry(options.trusted_certificates, partial=options.partial)
        self.tracker = Tracker()
        self.closures = Closures(self._complete, partial=options.partial)
        self.references = References(partial=options.partial)
        self.findings: list[Finding] = []
        self.read = 0
        self.count = 0
        self.chain_counts: dict[str, int] = {}
        self.first: dict[str, Any] | None = None

    def _complete(self, date: str) -> bool:
        """Whether every record of business date ``date`` was read (always, unless partial)."""
        if not self.options.partial:
            return True
        at_local = (self.first or {}).get("at_local")
        return isinstance(at_local, str) and at_local[:10] < date

    def observe(self, raw: bytes | str) -> None:
        """Read one raw body in journal order, in the main process.

        The first entry gives the identity and the genesis; key events build the timeline.
        """
        if self.read == 0:
            self.first = _first_fields(raw)
            seq = self.first.get("seq")
            self.references.first_seq = seq if isinstance(seq, int) else None
            if seq == 1:
                self._seed(seeds_of(self.first))
        self.registry.observe(raw, first=self.read == 0)
        self.read += 1

    def _seed(self, seeds: Seeds) -> None:
        """Start from a replaced box's chain tips and closures (a continuing journal)."""
        self.findings += seeds.findings
        self.tracker.seeds = seeds.chains
        self.closures.seed(seeds.closures)

    def job(self, raws: Sequence[bytes | str]) -> Job:
        """Observe a chunk of raw bodies and make its job."""
        start = self.read
        for raw in raws:
            self.observe(raw)
        base = self.references.first_seq or (None if self.options.partial else 1)
        return Job(self.context(), raws=raws, base_seq=None if base is None else base + start)

    def context(self) -> Context:
        """The context of the entries observed so far: keys trusted up to the last of them."""
        first = self.first or {}
        store, register = first.get("store_id"), first.get("register_id")
        return Context(self.registry.timeline, dict(self.registry.pool),
                       store if isinstance(store, str) else None,
                       register if isinstance(register, str) else None)

    def absorb(self, result: ChunkResult) -> None:
        """Join a checked chunk (chunks arrive in journal order)."""
        self.findings += result.findings
        self.findings += self.tracker.join(result.tracker, partial=self.options.partial)
        contribution = result.contribution
        self.references.add_refs(contribution.refs)
        for segment in contribution.segments:
            self.closures.segment(segment)
        for where, record in contribution.referring:
            self.references.check(where, record)
        self.count += result.count
        for chain, count in result.chain_counts.items():
            self.chain_counts[chain] = self.chain_counts.get(chain, 0) + count
        if self.options.progress is not None:
            self.options.progress(self.count)

    def finish(self) -> Outcome:
        """Run the journal-wide end checks and build the report."""
        out = self.findings + self.registry.findings + self.closures.findings
        out += self.references.findings + self._end_checks()
        report = Report.build(out, self.count, self.chain_counts)
        return Outcome(report, self.registry.timeline.current)

    def _end_checks(self) -> list[Finding]:
        out = []
        if self.count == 0 and not self.options.partial:
            out.append(f.found(f.NO_GENESIS, "the journal is empty"))
        if self.options.heads is not None:
            register = (self.first or {}).get("register_id")
            out += check_heads(self.options.heads, self.tracker.chain_last,
                               register if isinstance(register, str) else None,
                               self.registry.timeline, self.registry.pool)
        last = self.tracker.last.seq if self.tracker.last is not None else 0
        acked = self.options.acked_through
        if acked is not None and last < acked:
            out.append(f.found(f.BELOW_WATERMARK, f"the journal ends at seq {last}, the cloud "
                                                  f"acknowledged entries up to {acked}",
                               (acked, None, None)))
        return out


def _chunks(bodies: Iterable[bytes | str]) -> Iterator[list[bytes | str]]:
    iterator = iter(bodies)
    while chunk := list(itertools.islice(iterator, CHUNK)):
        yield chunk


def default_workers() -> int:
    """The number of CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def verify_bodies(bodies: Iterable[bytes | str], options: Options) -> Outcome:
    """Verify raw entry bodies given in journal order."""
    verification = Verification(options)
    chunks = _chunks(bodies)
    first = next(chunks, [])
    second = next(chunks, None) if first else None
    jobs = (verification.job(chunk) for chunk in itertools.chain(
        [first] if first else [], [second] if second else [], chunks))
    execute(jobs, verification, parallel=second is not None)
    return verification.finish()


def execute(jobs: Iterable[Job], verification: Verification, *, parallel: bool) -> None:
    """Check the jobs (in worker processes when ``parallel`` and more than one worker)."""
    workers = verification.options.workers or default_workers()
    if not parallel or workers < 2:
        for job in jobs:
            verification.absorb(check_chunk(job))
        return
    context = _pool_context()
    pending: deque[Future[ChunkResult]] = deque()
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for job in jobs:
            pending.append(pool.submit(check_chunk, job))
            if len(pending) > 2 * workers:
                verification.absorb(pending.popleft().result())
        while pending:
            verification.absorb(pending.popleft().result())


def _pool_context() -> BaseContext:
    """Choose how worker processes start.

    Fork when this process runs a single thread (fast, and no re-import of ``__main__``);
    otherwise start workers from a fork server, which is safe next to threads.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["fiscal.verify.chunks"])
        return context
    return multiprocessing.get_context("spawn")
