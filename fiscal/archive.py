"""Signed period archives: export a closed period of the journal as one self-verifying zip file.

**What an archive covers.** A contiguous range of global sequence numbers
``first_seq..last_seq``, decided from the closures alone, so that the range of a period never
changes once the period is closed:

* the *sealing run* of a business date ``D`` is found from the first closure entry (lowest
  ``seq``) whose ``period_to`` is on or after ``D`` — the entry from which ``D`` is closed —
  and extends over the closure records and their period-closing events (code 50) that follow
  it in the same commit (same ``at_utc``). Closing a month or a year writes day, month and
  year closures in one commit, so the run holds all of them;
* ``last_seq`` is the last entry of the sealing run of ``period_to``;
* ``first_seq`` is the smaller of (a) the first entry dated on or after ``period_from`` — an
  entry's date is its business date when it has one (tickets, cash movements, closures, which
  are dated by the start of their period) and otherwise the business date of its ``at_utc``
  (events, copies, invoices, archives) — and (b) the entry right after the sealing run of
  ``period_from - 1`` (the journal's first entry when that day was never closed).

So every record dated in the period is inside (nothing dated in a period can be written once
the period is closed), consecutive periods leave no gap between their archives (they overlap
only by the sales of a new day made before the previous day was closed, within the grace),
and the first archive of a journal starts with its initialisation event.

**What the zip holds** (names sorted, fixed timestamps and attributes, so the same journal
gives the same bytes): ``entries.jsonl`` (the stored body of every entry of the range, one per
line), ``closures.json`` and ``events.json`` (views of the ``closure``/``period`` and ``event``
chain entries of the range), ``schema/entry.schema.json``, ``certificates/<key_id>.pem`` (every
key that signed an entry of the range, and the key signing the manifest, taken from the
initialisation and key rotation events of the whole journal), ``heads.json`` (per chain, the
last entry of the range: ``chain_seq``, ``seq``, ``sig`` and its stored signed ``head_sig``),
``manifest.json`` (canonical JSON: identity, period, range, ``key_id`` of the signing key and
the SHA-256 of every other file) and ``manifest.sig`` (base64url raw ECDSA signature of
``manifest.json``'s bytes by the box key).

**Journaling and crash safety.** The zip is built outside the writer lock (a closed period is
immutable), written under a temporary name, fsynced, renamed into place and the directory
fsynced; only then are the ``archive`` record (with the manifest's SHA-256) and its JET event
(30 for a whole fiscal year, else 20) committed together under the lock. A crash can therefore
leave an archive file that the journal does not mention (exporting again rewrites the same
bytes and journals it), never a journaled archive without its file. If the key rotated while
the zip was built, it is built again under the lock with the new key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import re
import sqlite3
import tempfile
import zipfile
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, get_args

import orjson

from fiscal import jet
from fiscal.canonical import canonical_json
from fiscal.chain import Entry, utc_text
from fiscal.closing import day_end, fiscal_year_bounds
from fiscal.errors import InvalidInput, JournalCorrupt
from fiscal.keys import BoxKey
from fiscal.money import check_text
from fiscal.records import ArchiveRecord, Event, RecordType
from fiscal.settings import JournalSettings

if TYPE_CHECKING:
    from fiscal.journal import Journal

FORMAT = "tillbox-archive/1"
OPERATION = "archive"
ENTRIES = "entries.jsonl"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SCHEMA = "schema/entry.schema.json"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
CLOSURE_TYPES = ("day_closure", "month_closure", "year_closure")
RECORD_TYPES: tuple[str, ...] = get_args(RecordType)
_SPOOL_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Built:
    """An archive file in place, and what the journal records about it."""

    path: Path
    manifest_sha256: str
    key_id: str
    first_seq: int
    last_seq: int
    entry_count: int


@dataclass
class Contents:
    """What one pass over the range collects besides ``entries.jsonl`` itself."""

    spool: IO[bytes]
    digest: Any = field(default_factory=hashlib.sha256)
    count: int = 0
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    key_ids: set[str] = field(default_factory=set)
    closures: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


# -- the public operation ---------------------------------------------------------------------


async def export_archive(journal: Journal, period_from: dt.date, period_to: dt.date,
                         dest_dir: Path, operator: str, *,
                         idempotency_key: str | None = None) -> tuple[Entry, Path]:
    """Write the signed archive of a closed period into ``dest_dir`` and journal it.

    Returns the ``archive`` chain entry and the zip's path; a retry with the same idempotency
    key returns the first archive's entry (and its path in ``dest_dir``).
    """
    check_text(operator, "operator", max_length=64)
    check_period(period_from, period_to)
    if (found := await _replayed(journal, idempotency_key)) is not None:
        return found, dest_dir / str(found.record["file_name"])
    closed = journal.periods.closed_through
    if closed is None or closed < period_to:
        raise InvalidInput(f"the period through {period_to} is not closed (closed through "
                           f"{closed})", code="period_not_closed", field="period_to")
    built = await asyncio.to_thread(build, journal, period_from, period_to, dest_dir,
                                    journal.key)
    async with journal.lock:
        if (found := await _replayed(journal, idempotency_key)) is not None:
            return found, dest_dir / str(found.record["file_name"])
        if built.key_id != journal.key.key_id:
            built = await asyncio.to_thread(build, journal, period_from, period_to, dest_dir,
                                            journal.key)
        entry = await _journal_it(journal, built, period_from, period_to, operator,
                                  idempotency_key)
    return entry, built.path


def check_period(period_from: dt.date, period_to: dt.date) -> None:
    """Refuse an inverted period or one longer than a year."""
    if period_to < period_from:
        raise InvalidInput("the period ends before it starts", code="period_inverted",
                           field="period_to")
    if period_to >= _one_year_after(period_from):
        raise InvalidInput("an archive covers at most one year", code="period_too_long",
                           field="period_to")


def _one_year_after(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return dt.date(day.year + 1, 3, 1)


async def _replayed(journal: Journal, key: str | None) -> Entry | None:
    event = journal.replay(OPERATION, key)
    if event is None:
        return None
    entry = await journal.get(event.seq - 1)
    if entry is None or entry.record["type"] != "archive":
        raise JournalCorrupt(f"the archive event {event.seq} does not follow its record")
    return entry


async def _journal_it(journal: Journal, built: Built, period_from: dt.date,
                      period_to: dt.date, operator: str, key: str | None) -> Entry:
    from fiscal.journal import Pending  # local: the journal imports fiscal modules lazily

    record = ArchiveRecord(operator=operator, period_from=period_from.isoformat(),
                           period_to=period_to.isoformat(),
                           manifest_sha256=built.manifest_sha256,
                           entry_count=built.entry_count, last_seq=built.last_seq,
                           file_name=built.path.name)
    start_month = journal.settings.closure.fiscal_year_start_month
    whole_year = fiscal_year_bounds(period_from, start_month) == (period_from, period_to)
    code = jet.PERIOD_ARCHIVE if whole_year else jet.INTERMEDIATE_ARCHIVE
    details = {"file_name": built.path.name, "manifest_sha256": built.manifest_sha256,
               "period_from": record.period_from, "period_to": record.period_to,
               "first_seq": built.first_seq, "last_seq": built.last_seq,
               "entry_count": built.entry_count}
    event = Event(code=code, operator=operator, description=jet.label(code), details=details)
    idem = None if key is None else f"{OPERATION}:{key}"
    entries = await journal.commit([Pending(record), Pending(event)], idem, journal.now())
    return entries[-2]


# -- building the file (runs in a worker thread) -----------------------------------------------


def build(journal: Journal, period_from: dt.date, period_to: dt.date, dest_dir: Path,
          key: BoxKey) -> Built:
    """Read the period's range and write its signed zip into ``dest_dir`` (atomically)."""
    with closing(_connect(journal.store.path)) as db, \
            tempfile.SpooledTemporaryFile(_SPOOL_BYTES) as spool:
        first_seq, last_seq = plan_range(db, journal.settings, period_from, period_to)
        contents = Contents(spool)
        _collect(db, first_seq, last_seq, contents)
        certificates = _certificates(db, contents.key_ids | {key.key_id}, key)
        files = _small_files(contents, certificates)
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        hashes[ENTRIES] = contents.digest.hexdigest()
        manifest = canonical_json(_manifest(journal.settings, period_from, period_to,
                                            first_seq, last_seq, contents.count, key.key_id,
                                            hashes))
        files[MANIFEST] = manifest
        files[SIGNATURE] = key.sign(manifest).encode("ascii")
        name = file_name(journal.settings.register_id, period_from, period_to, first_seq,
                         last_seq)
        path = _write_atomically(dest_dir, name, files, spool)
    return Built(path=path, manifest_sha256=hashlib.sha256(manifest).hexdigest(),
                 key_id=key.key_id, first_seq=first_seq, last_seq=last_seq,
                 entry_count=contents.count)


def file_name(register_id: str, period_from: dt.date, period_to: dt.date, first_seq: int,
              last_seq: int) -> str:
    """Return ``tillbox-archive-<register>-<from>-<to>-<first_seq>-<last_seq>.zip``."""
    register = re.sub(r"[^A-Za-z0-9_.]", "_", register_id)
    return (f"tillbox-archive-{register}-{period_from:%Y%m%d}-{period_to:%Y%m%d}-"
            f"{first_seq}-{last_seq}.zip")


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def _manifest(settings: JournalSettings, period_from: dt.date, period_to: dt.date,
              first_seq: int, last_seq: int, count: int, key_id: str,
              hashes: Mapping[str, str]) -> dict[str, Any]:
    return {"format": FORMAT, "store_id": settings.store_id,
            "register_id": settings.register_id, "period_from": period_from.isoformat(),
            "period_to": period_to.isoformat(), "first_seq": first_seq, "last_seq": last_seq,
            "entry_count": count,
            "software": f"{settings.software_name} {settings.software_version}",
            "key_id": key_id, "files": dict(sorted(hashes.items()))}


# -- the range ----------------------------------------------------------------------------------


def plan_range(db: sqlite3.Connection, settings: JournalSettings, period_from: dt.date,
               period_to: dt.date) -> tuple[int, int]:
    """Return ``(first_seq, last_seq)`` of the archive of a closed period (module docstring)."""
    last_seq = sealed_through(db, period_to)
    if last_seq is None:
        raise InvalidInput(f"no closure seals {period_to}", code="period_not_closed",
                           field="period_to")
    before = sealed_through(db, period_from - dt.timedelta(days=1)) or 0
    dated = _first_dated(db, settings, period_from)
    first_seq = min(before + 1, dated if dated is not None else before + 1)
    if first_seq > last_seq:
        raise InvalidInput(f"nothing was journaled from {period_from} to {period_to}",
                           code="period_empty", field="period_from")
    return first_seq, last_seq


def sealed_through(db: sqlite3.Connection, day: dt.date) -> int | None:
    """Return the last ``seq`` of the sealing run of ``day``, or ``None`` if it is open."""
    marks = ",".join("?" * len(CLOSURE_TYPES))
    row = db.execute(
        f"SELECT seq, at_utc FROM entries WHERE type IN ({marks}) "
        "AND json_extract(body, '$.record.period_to') >= ? ORDER BY seq LIMIT 1",
        (*CLOSURE_TYPES, day.isoformat())).fetchone()
    if row is None:
        return None
    last, at_utc = int(row[0]), str(row[1])
    following = db.execute(
        "SELECT seq, type, at_utc, json_extract(body, '$.record.code') FROM entries "
        "WHERE seq > ? ORDER BY seq", (last,))
    for seq, kind, when, code in following:
        if when != at_utc or not (kind in CLOSURE_TYPES or (kind == "event" and code == 50)):
            break
        last = int(seq)
    following.close()
    return last


def _first_dated(db: sqlite3.Connection, settings: JournalSettings,
                 day: dt.date) -> int | None:
    """Return the first ``seq`` dated on or after ``day`` (module docstring), if any."""
    policy = settings.closure
    start_utc = utc_text(day_end(day - dt.timedelta(days=1), settings.timezone,
                                 policy.day_starts_at_hour))
    marks = ",".join("?" * len(RECORD_TYPES))
    dated = db.execute(f"SELECT MIN(seq) FROM entries WHERE type IN ({marks}) "
                       "AND business_date >= ?", (*RECORD_TYPES, day.isoformat())).fetchone()
    undated = db.execute(f"SELECT MIN(seq) FROM entries WHERE type IN ({marks}) "
                         "AND business_date IS NULL AND at_utc >= ?",
                         (*RECORD_TYPES, start_utc)).fetchone()
    found = [int(row[0]) for row in (dated, undated) if row[0] is not None]
    return min(found, default=None)


# -- the contents ---------------------------------------------------------------------------------


def _collect(db: sqlite3.Connection, first_seq: int, last_seq: int, into: Contents) -> None:
    """Stream the range into ``entries.jsonl`` and gather the views, heads and key ids."""
    expected = first_seq
    rows = db.execute("SELECT seq, chain, chain_seq, sig, head_sig, body FROM entries "
                      "WHERE seq BETWEEN ? AND ? ORDER BY seq", (first_seq, last_seq))
    for seq, chain, chain_seq, sig, head_sig, body in rows:
        if seq != expected:
            raise JournalCorrupt(f"the journal has no entry {expected}")
        expected += 1
        line = body.encode("utf-8") + b"\n"
        into.spool.write(line)
        into.digest.update(line)
        into.count += 1
        into.heads[chain] = {"chain_seq": chain_seq, "seq": seq, "sig": sig,
                             "head_sig": head_sig}
        envelope = orjson.loads(body)
        into.key_ids.add(str(envelope["key_id"]))
        if chain in ("closure", "period", "event"):
            view = into.events if chain == "event" else into.closures
            view.append(view_item(envelope))
    if expected != last_seq + 1:
        raise JournalCorrupt(f"the journal has no entry {expected}")


def view_item(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``closures.json``/``events.json`` item of an entry envelope."""
    return {name: envelope[name] for name in ("seq", "chain", "chain_seq", "at_local", "sig",
                                                "record")}


def _certificates(db: sqlite3.Connection, key_ids: set[str], key: BoxKey) -> dict[str, str]:
    """Return the certificate PEM of each key id, from the whole journal's key events."""
    known = {key.key_id: key.certificate_pem()}
    rows = db.execute("SELECT body FROM entries WHERE type = 'event' "
                      "AND json_extract(body, '$.record.code') IN (260, 1080) ORDER BY seq")
    for (body,) in rows:
        details = orjson.loads(body)["record"]["details"]
        known[str(details.get("new_key_id") or details["key_id"])] = str(
            details["certificate_pem"])
    missing = key_ids - set(known)
    if missing:
        raise JournalCorrupt(f"no certificate in the journal for key(s) {sorted(missing)}")
    return {key_id: known[key_id] for key_id in sorted(key_ids)}


def _small_files(contents: Contents, certificates: Mapping[str, str]) -> dict[str, bytes]:
    schema = resources.files("fiscal").joinpath("schemas/entry.schema.json").read_bytes()
    files = {"closures.json": canonical_json(contents.closures),
             "events.json": canonical_json(contents.events),
             "heads.json": canonical_json(contents.heads), SCHEMA: schema}
    for key_id, pem in certificates.items():
        files[f"certificates/{key_id}.pem"] = pem.encode("ascii")
    return files


# -- the zip ----------------------------------------------------------------------------------


def _write_atomically(dest_dir: Path, name: str, files: Mapping[str, bytes],
                      spool: IO[bytes]) -> Path:
    """Write the zip under a temporary name, fsync, rename into place, fsync the directory."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_zip(handle, files, spool)
            handle.flush()
            os.fsync(handle.fileno())
        final = dest_dir / name
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(dest_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


def _write_zip(handle: IO[bytes], files: Mapping[str, bytes], spool: IO[bytes]) -> None:
    """Write every file in name order; ``entries.jsonl`` is copied from the spool."""
    with zipfile.ZipFile(handle, "w") as archive:
        for name in sorted([*files, ENTRIES]):
            if name != ENTRIES:
                archive.writestr(_zip_info(name), files[name])
                continue
            size = spool.seek(0, os.SEEK_END)
            spool.seek(0)
            with archive.open(_zip_info(name), "w",
                              force_zip64=size >= zipfile.ZIP64_LIMIT) as target:
                while chunk := spool.read(1024 * 1024):
                    target.write(chunk)
