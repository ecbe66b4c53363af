"""Reading a box's data dir for the verifier: the journal file (read-only), heads, certificate.

Plain ``sqlite3`` opened read-only — the verifier never writes, never needs the journal's async
service, and must work on a copy of a data dir taken off a box. In one read transaction the main
process takes the heads, the first entry, every key event (bodies holding a certificate) and the
seq ranges of the chunks; workers then read their own ranges, entries with their index columns,
so that an edited column is reported as well as an edited body.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from fiscal.verify import findings as f
from fiscal.verify.chains import HeadRow
from fiscal.verify.chunks import Job, open_read_only
from fiscal.verify.engine import CHUNK, Options, Outcome, Verification, execute
from fiscal.verify.findings import Finding, Report
from fiscal.verify.key_registry import MARKER, certificate_der, key_id_of

DB_FILE = "journal.sqlite3"
CERT_FILE = Path("keys") / "box-cert.pem"
_KEY_EVENTS = ("SELECT seq, CAST(body AS BLOB) FROM entries WHERE seq = (SELECT min(seq) FROM "
               "entries) UNION SELECT seq, CAST(body AS BLOB) FROM entries WHERE type = 'event' "
               f"AND instr(body, '{MARKER}') > 0 ORDER BY 1")
"""The first entry and the key events (an event whose type column was edited is missed here,
and reported by the entry checks)."""
_NEXT_BOUND = "SELECT seq FROM entries WHERE seq >= ? ORDER BY seq LIMIT 1 OFFSET ?"
TAIL = 4 * CHUNK
"""Entries at the end of the journal checked in smaller chunks."""
MIN_CHUNK = 200
"""The smallest of those chunks (each costs a process round trip and a database connection)."""


def journal_path(data_dir: Path) -> Path:
    """Where a data dir keeps its journal."""
    return data_dir / DB_FILE


def read_only_uri(path: Path) -> str:
    """The SQLite URI opening a journal file read-only (``FileNotFoundError`` if none)."""
    if not path.is_file():
        raise FileNotFoundError(f"no journal at {path}")
    return f"{path.resolve().as_uri()}?mode=ro"


def read_heads(db: sqlite3.Connection) -> dict[str, HeadRow]:
    """Return the heads table: chain → (chain_seq, seq, sig, head_sig)."""
    rows = db.execute("SELECT chain, chain_seq, seq, sig, head_sig FROM heads").fetchall()
    return {str(r[0]): (r[1], r[2], r[3], r[4]) for r in rows}


def seq_ranges(db: sqlite3.Connection) -> Iterator[tuple[int, int]]:
    """Yield ``(first, last)`` seq ranges of at most ``CHUNK`` stored entries each.

    The last ranges are smaller, so that workers finish together. When the seqs have no gap
    (the usual case) the ranges are computed; otherwise they are read from the table.
    """
    low, high, count = db.execute("SELECT min(seq), max(seq), count(*) FROM entries").fetchone()
    if low is None:
        return
    if high - low + 1 != count:
        yield from _stored_ranges(db, low)
        return
    for size in _sizes(count):
        yield low, low + size - 1
        low += size


def _sizes(count: int) -> Iterator[int]:
    """Chunk sizes adding up to ``count``: ``CHUNK``, then shrinking over the last ``TAIL``."""
    if count <= TAIL:
        yield from (min(CHUNK, count - start) for start in range(0, count, CHUNK))
        return
    bulk = (count - TAIL) // CHUNK
    yield from [CHUNK] * bulk
    left, size = count - bulk * CHUNK, CHUNK
    while left >= size + MIN_CHUNK:
        yield size
        left -= size
        size = max(MIN_CHUNK, size * 3 // 4)
    yield left


def _stored_ranges(db: sqlite3.Connection, start: int) -> Iterator[tuple[int, int]]:
    """Ranges of ``CHUNK`` stored entries, walking the table (seqs with gaps)."""
    while True:
        following = db.execute(_NEXT_BOUND, (start, CHUNK)).fetchone()
        if following is None:
            yield start, db.execute("SELECT max(seq) FROM entries").fetchone()[0]
            return
        yield start, following[0] - 1
        start = following[0]


def count_entries(data_dir: Path) -> int:
    """Return how many entries the data dir's journal holds (0 if it cannot be read)."""
    with closing(open_read_only(read_only_uri(journal_path(data_dir)))) as db:
        try:
            return int(db.execute("SELECT count(*) FROM entries").fetchone()[0])
        except sqlite3.DatabaseError:
            return 0


def certificate_findings(data_dir: Path, current: frozenset[str]) -> list[Finding]:
    """Check that the data dir's certificate holds the key the journal signs with now."""
    path = data_dir / CERT_FILE
    try:
        key_id = key_id_of(certificate_der(path.read_text(encoding="ascii")))
    except (OSError, ValueError) as error:
        return [f.found(f.CERT_MISMATCH, f"cannot read {path}: {error}")]
    if key_id not in current:
        return [f.found(f.CERT_MISMATCH, f"{path} holds key {key_id}, the journal's current "
                                         f"key is {', '.join(sorted(current)) or 'unknown'}")]
    return []


def _plan(uri: str, options: Options) -> tuple[Verification, list[Job]]:
    """Read, in one transaction, what the main process needs; make the chunks' jobs."""
    with closing(open_read_only(uri)) as db:
        db.execute("BEGIN")
        heads = read_heads(db)
        verification = Verification(Options(
            heads=heads, trusted_certificates=options.trusted_certificates,
            acked_through=options.acked_through, workers=options.workers,
            progress=options.progress))
        for _, raw in db.execute(_KEY_EVENTS):
            verification.observe(raw)
        ranges = list(seq_ranges(db))
    context = verification.context()
    return verification, [Job(context, database=uri, seq_range=r) for r in ranges]


def verify_directory(data_dir: Path, options: Options) -> Report:
    """Verify a data dir's journal, heads and certificate (``heads`` of options is ignored)."""
    uri = read_only_uri(journal_path(data_dir))
    try:
        verification, jobs = _plan(uri, options)
        execute(jobs, verification, parallel=len(jobs) > 1)
        outcome: Outcome = verification.finish()
    except sqlite3.DatabaseError as error:
        return Report.build([f.found(f.UNREADABLE_STORE, f"cannot read the journal: {error}")],
                            0, {})
    return outcome.report.with_findings(certificate_findings(data_dir, outcome.current_keys))
