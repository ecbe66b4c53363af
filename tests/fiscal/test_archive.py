"""Signed period archives: export of a closed period, its journaling, and offline verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from fiscal import jet, keys
from fiscal.archive import export_archive
from fiscal.archive_check import run_verify_archive, verify_archive
from fiscal.errors import InvalidInput
from fiscal.journal import DB_FILE, Journal
from fiscal.records import Party
from fiscal.requests import (
    CashMovementRequest,
    InvoiceRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
)
from fiscal.schemas.generate import SCHEMA_FILE, render

JAN_1, JAN_31, FEB_1, FEB_2 = (dt.date(2026, 1, 1), dt.date(2026, 1, 31), dt.date(2026, 2, 1),
                               dt.date(2026, 2, 2))
REPO = Path(__file__).resolve().parents[2]
NAMES = ["closures.json", "entries.jsonl", "events.json", "heads.json", "manifest.json",
         "manifest.sig", "schema/entry.schema.json"]


async def populate(journal: Journal, clock, sale_request) -> None:
    """Jan 29–31 and Feb 1 (closed; month closure on Jan 31, key rotation on Jan 30), Feb 2 open."""
    clock.set_local(2026, 1, 29)
    sale = await journal.sell(sale_request(1000, 550))
    await journal.refund(ReturnRequest(
        operator="bob", original_seq=sale.seq,
        lines=(ReturnLineRequest(original_line_no=2, quantity_milli=1000),),
        refunds=(PaymentRequest(tender="cash", amount=550),)))
    await journal.copy(sale.seq, "alice")
    await journal.invoice(InvoiceRequest(operator="alice", source_seq=sale.seq,
                                         customer=Party(name="ACME, SA")))
    await journal.cash_movement(CashMovementRequest(kind="float", operator="alice",
                                                    amount=10000))
    await journal.periods.close_day("boss")
    clock.set_local(2026, 1, 30)
    await journal.sell(sale_request(250))
    await journal.rotate_key("boss")
    await journal.sell(sale_request(300))
    await journal.periods.close_day("boss")
    clock.set_local(2026, 1, 31)
    await journal.sell(sale_request(700))
    await journal.sell(sale_request(900, training=True))
    await journal.periods.close_month("boss")
    clock.set_local(2026, 2, 1)
    sale = await journal.sell(sale_request(450))
    await journal.copy(sale.seq, "alice")
    await journal.periods.close_day("boss")
    clock.set_local(2026, 2, 2)
    await journal.sell(sale_request(120))


@pytest.fixture
async def history(open_journal, clock, sale_request) -> Journal:
    """A journal opened on 2026-01-29 with the ``populate`` history."""
    clock.set_local(2026, 1, 29, 9)
    journal = await open_journal()
    await populate(journal, clock, sale_request)
    return journal


def stored(journal: Journal, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows of a query on the journal's SQLite file (read-only)."""
    db = sqlite3.connect(f"file:{journal.data_dir / DB_FILE}?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def members(path: Path) -> dict[str, bytes]:
    """Every member of a zip, by name."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(path: Path, target: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    """Copy an archive to ``target`` with its members changed by ``change``."""
    files = members(path)
    change(files)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def codes(path: Path, **kwargs: object) -> set[str]:
    """The finding codes of verifying an archive."""
    return {finding.code for finding in verify_archive(path, **kwargs).findings}


# -- export -----------------------------------------------------------------------------------


async def test_archive_holds_the_period_range_and_every_file(history, tmp_path):
    """A January archive holds entries 1..end of the January sealing commit, hashed in its
    manifest, with the certificates of both keys that signed in January."""
    _, path = await export_archive(history, JAN_1, JAN_31, tmp_path / "out", "boss")
    sealed = stored(history, "SELECT max(seq) FROM entries WHERE type = 'month_closure'")[0][0]
    last_seq = int(sealed) + 1  # the month closure's period-closing event
    assert path.name == f"tillbox-archive-R1-20260101-20260131-1-{last_seq}.zip"
    files = members(path)
    certificates = sorted(n for n in files if n.startswith("certificates/"))
    assert len(certificates) == 2
    assert sorted(files) == sorted([*NAMES, *certificates])
    manifest = json.loads(files["manifest.json"])
    assert manifest["files"] == {name: hashlib.sha256(files[name]).hexdigest()
                                 for name in files if not name.startswith("manifest.")}
    assert (manifest["first_seq"], manifest["last_seq"], manifest["entry_count"]) == (
        1, last_seq, last_seq)
    assert manifest["key_id"] == history.key.key_id
    bodies = [row[0] for row in stored(history, "SELECT body FROM entries WHERE seq <= ? "
                                                "ORDER BY seq", last_seq)]
    assert files["entries.jsonl"] == "".join(f"{body}\n" for body in bodies).encode()
    assert keys.verify_raw(history.key.private_key.public_key(),
                           files["manifest.sig"].decode(), files["manifest.json"])


async def test_views_and_heads_describe_the_range(history, tmp_path):
    """closures.json lists the day and month closures, events.json the events, and heads.json
    the last entry of each chain in the range with its stored head signature."""
    _, path = await export_archive(history, JAN_1, JAN_31, tmp_path, "boss")
    files = members(path)
    closures = json.loads(files["closures.json"])
    assert [c["record"]["type"] for c in closures] == ["day_closure"] * 3 + ["month_closure"]
    events = json.loads(files["events.json"])
    assert [e["record"]["code"] for e in events] == [260, 50, 1080, 50, 50, 50]
    heads = json.loads(files["heads.json"])
    last = int(json.loads(files["manifest.json"])["last_seq"])
    expected = stored(history, "SELECT chain, chain_seq, seq, sig, head_sig FROM entries e "
                               "WHERE seq = (SELECT max(seq) FROM entries WHERE chain = e.chain "
                               "AND seq <= ?)", last)
    assert heads == {c: {"chain_seq": n, "seq": s, "sig": sig, "head_sig": h}
                     for c, n, s, sig, h in expected}
    assert set(heads) == {"event", "ticket", "copy", "invoice", "cash", "closure", "period",
                          "training"}


async def test_archive_is_journaled_with_its_event(history, tmp_path):
    """The archive record seals the manifest's SHA-256 in the archive chain, followed by an
    intermediate-archive event (20) for a month."""
    before = history.state.seq
    entry, path = await export_archive(history, JAN_1, JAN_31, tmp_path, "boss")
    manifest = members(path)["manifest.json"]
    assert entry.seq == before + 1
    assert entry.chain == "archive"
    assert history.heads()["archive"].seq == entry.seq
    assert dict(entry.record) == {
        "type": "archive", "operator": "boss", "period_from": "2026-01-01",
        "period_to": "2026-01-31", "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "entry_count": json.loads(manifest)["entry_count"],
        "last_seq": json.loads(manifest)["last_seq"], "file_name": path.name}
    event = await history.get(entry.seq + 1)
    assert event is not None
    assert (event.record["code"], event.record["details"]["file_name"]) == (
        jet.INTERMEDIATE_ARCHIVE, path.name)
    assert history.state.seq == entry.seq + 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


async def test_whole_fiscal_year_archive_is_a_period_archive(open_journal, clock, sale_request,
                                                             tmp_path):
    """Archiving a whole closed fiscal year journals event 30 (fiscal period archive)."""
    clock.set_local(2025, 12, 31)
    journal = await open_journal()
    await journal.sell(sale_request(1000))
    await journal.periods.close_year("boss")
    entry, path = await export_archive(journal, dt.date(2025, 1, 1), dt.date(2025, 12, 31),
                                       tmp_path, "boss")
    event = await journal.get(entry.seq + 1)
    assert event is not None
    assert event.record["code"] == jet.PERIOD_ARCHIVE
    closures = json.loads(members(path)["closures.json"])
    assert [c["record"]["type"] for c in closures] == ["day_closure", "month_closure",
                                                       "year_closure"]
    assert list(verify_archive(path).findings) == []


async def test_same_period_gives_the_same_bytes(history, clock, sale_request, tmp_path):
    """Exporting a period again, after more activity and from a copy of the journal, writes
    byte-identical zips."""
    _, first = await export_archive(history, JAN_1, JAN_31, tmp_path / "a", "boss")
    await history.sell(sale_request(130))
    _, second = await export_archive(history, JAN_1, JAN_31, tmp_path / "b", "boss")
    assert second.read_bytes() == first.read_bytes()
    await history.close()
    shutil.copytree(history.data_dir, tmp_path / "copy")
    clone = await Journal.open(tmp_path / "copy", clock=clock)
    try:
        _, third = await export_archive(clone, JAN_1, JAN_31, tmp_path / "c", "boss")
    finally:
        await clone.close()
    assert third.read_bytes() == first.read_bytes()


async def test_idempotency_key_returns_the_first_archive(history, tmp_path):
    """A retry with the same idempotency key returns the first archive entry and writes nothing."""
    entry, path = await export_archive(history, JAN_1, JAN_31, tmp_path, "boss",
                                       idempotency_key="k1")
    seq = history.state.seq
    again, again_path = await export_archive(history, JAN_1, JAN_31, tmp_path, "boss",
                                             idempotency_key="k1")
    assert (again, again_path) == (entry, path)
    assert history.state.seq == seq


async def test_consecutive_periods_leave_no_gap(history, tmp_path):
    """The February archive starts right after the January one and verifies on its own."""
    _, january = await export_archive(history, JAN_1, JAN_31, tmp_path, "boss")
    _, february = await export_archive(history, FEB_1, FEB_1, tmp_path, "boss")
    jan, feb = (json.loads(members(p)["manifest.json"]) for p in (january, february))
    assert feb["first_seq"] == jan["last_seq"] + 1
    assert feb["period_from"] == feb["period_to"] == "2026-02-01"
    assert list(verify_archive(february).findings) == []


@pytest.mark.parametrize(("period", "code"), [
    ((JAN_1, FEB_2), "period_not_closed"),
    ((FEB_2, FEB_2), "period_not_closed"),
    ((dt.date(2025, 1, 31), JAN_31), "period_too_long"),
    ((JAN_31, JAN_1), "period_inverted"),
])
async def test_refused_periods_leave_the_journal_unchanged(history, snapshot, tmp_path, period,
                                                           code):
    """An open, inverted or over-a-year period is refused; nothing is written or journaled."""
    before = snapshot(history)
    with pytest.raises(InvalidInput) as refused:
        await export_archive(history, *period, tmp_path / "out", "boss")
    assert refused.value.code == code
    assert snapshot(history) == before
    assert not (tmp_path / "out").exists()


# -- schema -----------------------------------------------------------------------------------


def test_checked_in_schema_is_generated():
    """fiscal/schemas/entry.schema.json equals a fresh generation from the records."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render()


async def test_every_entry_kind_validates_and_a_float_does_not(history):
    """Every stored entry validates against the schema; a float amount is refused."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    bodies = [json.loads(row[0]) for row in stored(history, "SELECT body FROM entries")]
    assert {b["record"]["type"] for b in bodies} >= {"sale", "return", "copy", "invoice",
                                                     "cash_movement", "event", "day_closure",
                                                     "month_closure"}
    assert [list(validator.iter_errors(b)) for b in bodies] == [[]] * len(bodies)
    sale = next(b for b in bodies if b["record"]["type"] == "sale")
    sale["record"]["total"] = 12.5
    assert not validator.is_valid(sale)


# -- offline verification ---------------------------------------------------------------------


@pytest.fixture
async def january(history, tmp_path) -> Path:
    """The January archive of ``history``."""
    _, path = await export_archive(history, JAN_1, JAN_31, tmp_path / "out", "boss")
    return path


async def test_clean_archive_verifies(january, history):
    """A fresh archive has no finding, with or without the box certificate as trust anchor."""
    report = verify_archive(january)
    assert list(report.findings) == []
    assert report.ok
    assert report.entry_count == json.loads(members(january)["manifest.json"])["entry_count"]
    assert codes(january, trusted_certificates=[history.key.certificate_pem()]) == set()


async def test_flipped_byte_in_an_entry_is_reported(january, tmp_path):
    """Changing one byte of an entry breaks the manifest hash and that entry's seal."""
    def flip(files: dict[str, bytes]) -> None:
        files["entries.jsonl"] = files["entries.jsonl"].replace(b'"Item 1"', b'"Item 0"', 1)

    tampered = rewrite(january, tmp_path / "t.zip", flip)
    report = verify_archive(tampered)
    assert "file_hash_mismatch" in {f.code for f in report.findings}
    lines = members(january)["entries.jsonl"].splitlines()
    line = next(n for n, text in enumerate(lines, 1) if b'"Item 1"' in text)
    assert line in {f.seq for f in report.findings}


async def test_removed_entry_line_is_reported(january, tmp_path):
    """Removing an entry is a hash finding; re-hashing the manifest without re-signing it is
    a signature finding."""
    def drop(files: dict[str, bytes]) -> None:
        lines = files["entries.jsonl"].splitlines(keepends=True)
        files["entries.jsonl"] = b"".join(lines[:3] + lines[4:])

    def drop_and_rehash(files: dict[str, bytes]) -> None:
        drop(files)
        manifest = json.loads(files["manifest.json"])
        manifest["files"]["entries.jsonl"] = hashlib.sha256(files["entries.jsonl"]).hexdigest()
        manifest["entry_count"] -= 1
        files["manifest.json"] = json.dumps(manifest, sort_keys=True,
                                            separators=(",", ":")).encode()

    assert "file_hash_mismatch" in codes(rewrite(january, tmp_path / "a.zip", drop))
    rehashed = codes(rewrite(january, tmp_path / "b.zip", drop_and_rehash))
    assert "manifest_signature_invalid" in rehashed
    assert "file_hash_mismatch" not in rehashed


async def test_schema_violation_is_reported_at_its_entry(january, tmp_path):
    """An entry whose record gains a float amount breaks the schema at that entry's seq."""
    def corrupt(files: dict[str, bytes]) -> None:
        lines = files["entries.jsonl"].splitlines(keepends=True)
        entry = json.loads(lines[1])
        entry["record"]["total"] = 10.5
        lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        files["entries.jsonl"] = b"".join(lines)

    findings = verify_archive(rewrite(january, tmp_path / "t.zip", corrupt)).findings
    violations = [f for f in findings if f.code == "schema_violation"]
    assert [(f.seq, f.chain) for f in violations] == [(2, "ticket")]
    assert "record/total" in violations[0].message


async def test_replaced_certificate_is_reported(january, history, tmp_path):
    """A certificate swapped for another key's is reported, and so is an untrusted signer."""
    other = keys.generate("R1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    name = f"certificates/{history.key.key_id}.pem"

    def swap(files: dict[str, bytes]) -> None:
        files[name] = other.certificate_pem().encode()

    found = codes(rewrite(january, tmp_path / "t.zip", swap))
    assert {"certificate_mismatch", "file_hash_mismatch", "manifest_signature_invalid"} <= found
    assert codes(january, trusted_certificates=[other.certificate_pem()]) == {"untrusted_key"}


async def test_missing_and_extra_files_are_reported(january, tmp_path):
    """A file removed from the zip and a file added to it are both reported."""
    def change(files: dict[str, bytes]) -> None:
        del files["events.json"]
        files["notes.txt"] = b"hello"

    found = verify_archive(rewrite(january, tmp_path / "t.zip", change)).findings
    assert {(f.code, f.message.split()[0]) for f in found} == {
        ("file_missing", "events.json"), ("file_unexpected", "notes.txt")}


def test_unreadable_archive_is_reported(tmp_path):
    """A file that is not a zip yields one archive_unreadable finding."""
    path = tmp_path / "not.zip"
    path.write_bytes(b"PK\x03\x04 nope")
    assert codes(path) == {"archive_unreadable"}


async def test_cli_exit_codes_and_output(january, tmp_path, capsys):
    """verify-archive exits 0 on a clean archive, 1 on a tampered one (a line per finding and a
    summary, or JSON) and 2 when there is no file."""
    def drop(files: dict[str, bytes]) -> None:
        del files["heads.json"]

    tampered = rewrite(january, tmp_path / "t.zip", drop)
    assert run_verify_archive(january, json_output=False) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(": clean")
    assert run_verify_archive(tampered, json_output=False) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[3:] == ["file_missing", "heads.json is missing from the archive"]
    assert lines[-1].endswith(f": {len(lines) - 1} finding(s)")
    assert run_verify_archive(tmp_path / "nothing.zip", json_output=False) == 2
    clean = subprocess.run([sys.executable, "-m", "fiscal", "verify-archive", str(january)],
                           capture_output=True, text=True, cwd=REPO, check=False)
    bad = subprocess.run([sys.executable, "-m", "fiscal", "verify-archive", str(tampered),
                          "--json"], capture_output=True, text=True, cwd=REPO, check=False)
    assert (clean.returncode, bad.returncode) == (0, 1), clean.stderr + bad.stderr
    printed = json.loads(bad.stdout)
    assert printed["ok"] is False
    assert "file_missing" in {f["code"] for f in printed["findings"]}
