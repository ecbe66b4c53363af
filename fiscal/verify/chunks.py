"""One chunk of consecutive entries, checked by a worker process (or in-process for small reads).

A chunk is either raw bodies handed over by the main process, or a seq range of a journal file
that the worker reads itself (read-only, memory-mapped), so that bodies never cross a process
boundary. The chunk runs the per-entry checks (the fast path for clean entries, the general
checks for any other), the sequential checks between its own entries, and folds its records; it
returns its findings with what the main process needs to join it to its neighbours: its first
and last entries (globally and per chain) and its contribution to the totals.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any

from fiscal.verify.chains import Tracker, link_of
from fiscal.verify.entries import Context, Index, check_entries, read_entry
from fiscal.verify.fast import prepare, screen, signature_valid
from fiscal.verify.findings import Finding, Where
from fiscal.verify.folds import Contribution

ROWS = ("SELECT CAST(body AS BLOB), seq, chain, chain_seq, type, business_date, ref_seq, sig, "
        "at_utc FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq")


MMAP_BYTES = 1 << 29
"""How much of a journal file a reader maps into memory (reading it without copying)."""


def open_read_only(uri: str) -> sqlite3.Connection:
    """Open a journal file from its read-only URI, memory-mapped."""
    db = sqlite3.connect(uri, uri=True)
    db.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    return db


@dataclass(frozen=True)
class Job:
    """A chunk to check: raw bodies, or the entries of a journal file within a seq range."""

    context: Context
    raws: Sequence[bytes | str] = ()
    base_seq: int | None = None
    """The seq the first raw body should have, to locate unreadable bodies."""
    database: str | None = None
    """A read-only SQLite URI of a journal file."""
    seq_range: tuple[int, int] = (0, -1)


@dataclass
class ChunkResult:
    """What a checked chunk hands back to the main process."""

    findings: list[Finding] = field(default_factory=list)
    count: int = 0
    chain_counts: dict[str, int] = field(default_factory=dict)
    tracker: Tracker = field(default_factory=Tracker)
    contribution: Contribution = field(default_factory=Contribution)


def _items(job: Job) -> Iterator[tuple[bytes | str, Index | None, int | None]]:
    """Yield each entry's raw body, index columns and expected seq."""
    if job.database is None:
        for offset, raw in enumerate(job.raws):
            yield raw, None, None if job.base_seq is None else job.base_seq + offset
        return
    with closing(open_read_only(job.database)) as db:
        rows = db.execute(ROWS, job.seq_range).fetchall()
    for row in rows:
        yield row[0], row[1:], row[1]


def check_chunk(job: Job) -> ChunkResult:
    """Check every entry of a chunk and the links between them."""
    with _paused_gc():
        return _check(job)


def _check(job: Job) -> ChunkResult:
    """Check a chunk in stages, each over the whole chunk.

    Clean entries are screened, their signatures verified, then every entry is taken into the
    sequences and totals; an entry not proven clean goes through every general check. A stage
    over the whole chunk keeps its code and data (notably the elliptic-curve tables of the
    signature check) warm in the CPU caches.
    """
    result, unreadable = ChunkResult(), []
    fast = prepare(job.context)
    items = list(_items(job))
    screened = [screen(raw, index, fast) for raw, index, _ in items]
    valid = [entry is not None and signature_valid(entry) for entry in screened]
    for (raw, index, position), entry, clean in zip(items, screened, valid, strict=True):
        result.count += 1
        if entry is not None and clean:
            envelope = entry.envelope
            _follow(result, envelope, (envelope["seq"], envelope["chain"], envelope["chain_seq"]))
            continue
        read = read_entry(raw, index, position)
        if isinstance(read, Finding):
            unreadable.append(read)
            continue
        check_entries([read], job.context)
        result.findings += read.findings()
        _follow(result, read.envelope, read.where)
    result.findings[:0] = unreadable
    result.contribution.close()
    return result


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause the cycle collector while a chunk is checked.

    A chunk makes no reference cycles, only thousands of short-lived containers that would set
    the collector off again and again (each pass also walking everything the process holds).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _follow(result: ChunkResult, envelope: dict[str, Any], where: Where) -> None:
    """Take a checked entry into the chunk's sequences, counts and totals."""
    chain = envelope["chain"]
    result.chain_counts[chain] = result.chain_counts.get(chain, 0) + 1
    if found := result.tracker.feed(link_of(envelope, where[0] or 0)):
        result.findings += found
    result.contribution.add(where, envelope["record"])
