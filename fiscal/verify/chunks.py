"""One chunk of consecutive entries, checked by a worker process (or in-process for small reads).

A chunk is either raw bodies handed over by the main process, or a seq range of a journal file
that the worker reads itself (read-only), so that bodies never cross a process boundary. The
chunk runs the per-entry checks, the sequential checks between its own entries, and folds its
records; it returns its findings with what the main process needs to join it to its neighbours:
its first and last entries (globally and per chain) and its contribution to the totals.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field

from fiscal.verify.chains import Tracker, link_of
from fiscal.verify.entries import Context, Index, Work, check_entries, read_entry
from fiscal.verify.findings import Finding
from fiscal.verify.folds import Contribution

ROWS = ("SELECT CAST(body AS BLOB), seq, chain, chain_seq, type, business_date, ref_seq, sig, "
        "at_utc FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq")


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
    with closing(sqlite3.connect(job.database, uri=True)) as db:
        rows = db.execute(ROWS, job.seq_range).fetchall()
    for row in rows:
        yield row[0], row[1:], row[1]


def check_chunk(job: Job) -> ChunkResult:
    """Check every entry of a chunk and the links between them."""
    result = ChunkResult()
    works = []
    for raw, index, position in _items(job):
        read = read_entry(raw, index, position)
        if isinstance(read, Finding):
            result.findings.append(read)
        else:
            works.append(read)
        result.count += 1
    check_entries(works, job.context)
    for work in works:
        if work.out:
            result.findings += work.findings()
        _follow(result, work)
    result.contribution.close()
    return result


def _follow(result: ChunkResult, work: Work) -> None:
    """Take a checked entry into the chunk's sequences, counts and totals."""
    envelope, where = work.envelope, work.where
    chain = envelope["chain"]
    result.chain_counts[chain] = result.chain_counts.get(chain, 0) + 1
    if found := result.tracker.feed(link_of(envelope, where[0] or 0)):
        result.findings += found
    result.contribution.add(where, envelope["record"])
