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
from fiscal.verify.chunks import Job
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
    """Yield ``(first, last)`` seq ranges of at most ``CHUNK`` stored entries each."""
    start = db.execute("SELECT min(seq) FROM entries").fetchone()[0]
    while start is not None:
        following = db.execute(_NEXT_BOUND, (start, CHUNK)).fetchone()
        if following is None:
            yield start, db.execute("SELECT max(seq) FROM entries").fetchone()[0]
            return
        yield start, following[0] - 1
        start = following[0]


def count_entries(data_dir: Path) -> int:
    """Return how many entries the data dir's journal holds (0 if it cannot be read)."""
    with closing(sqlite3.connect(read_only_uri(journal_path(data_dir)), uri=True)) as db:
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
    with closing(sqlite3.connect(uri, uri=True)) as db:
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
