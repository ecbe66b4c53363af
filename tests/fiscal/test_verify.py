"""The auditor's verifier: a real journal verifies clean; each kind of tampering is reported with
its code at the entry where it happened; the ``tillbox verify`` command's output and exit codes."""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from journal_factory import (
    FakeClock,
    append_unchecked,
    bodies,
    build_rich,
    build_sales,
    entry,
    heads,
    last_seq,
    open_journal,
    other_key,
    parse_utc,
    raw_db,
    read_db,
    resign,
    small_sale,
)

import fiscal.verify as verify_package
from fiscal.records import Closure, Copy, Event, OriginalRef, Ticket
from fiscal.settings import JournalSettings
from fiscal.verify import Finding, Report, verify_data_dir, verify_entries
from fiscal.verify.key_registry import certificate_der

LARGE = 2_100
"""Entries enough for the verifier to use worker processes."""
DRAWER = Event(code=1040, operator="eve", description="Drawer opened without sale")


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal holding every kind of record, a key rotation and a clock moved back."""
    data_dir = tmp_path_factory.mktemp("rich")
    asyncio.run(build_rich(data_dir))
    return data_dir


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal of a few thousand sales over several days."""
    data_dir = tmp_path_factory.mktemp("large")
    asyncio.run(build_sales(data_dir, LARGE))
    return data_dir


@pytest.fixture
def copy(rich: Path, tmp_path: Path) -> Path:
    """A copy of the rich journal, free to tamper with."""
    return Path(shutil.copytree(rich, tmp_path / "copy"))


def genesis_certificate(data_dir: Path) -> str:
    """The certificate of the journal's initialisation event."""
    return str(entry(data_dir, 1).record["details"]["certificate_pem"])


def at(report: Report, code: str) -> list[int | None]:
    """The seqs of the findings with ``code``."""
    return [f.seq for f in report.findings if f.code == code]


def check(data_dir: Path, acked_through: int | None = None) -> Report:
    """Verify a data dir in-process."""
    return verify_data_dir(data_dir, workers=1, acked_through=acked_through)


def seq_of(data_dir: Path, chain: str, chain_seq: int) -> int:
    """The seq of an entry by chain position."""
    with read_db(data_dir) as db:
        return int(db.execute("SELECT seq FROM entries WHERE chain = ? AND chain_seq = ?",
                              (chain, chain_seq)).fetchone()[0])


# -- independence ------------------------------------------------------------------------------

SIGNING_SIDE = {"fiscal.signed_data", "fiscal.chain", "fiscal.journal", "fiscal.periods",
                "fiscal.closing", "fiscal.canonical", "fiscal.store", "fiscal.documents",
                "fiscal.pricing", "fiscal.money", "fiscal.records"}


def test_the_verifier_shares_no_code_with_the_signer() -> None:
    """The verifier imports nothing of the signing side: only key parsing helpers of ours."""
    imported: set[str] = set()
    for path in Path(verify_package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.split(".")[0] == "fiscal"}
    assert not ours & SIGNING_SIDE
    assert {name for name in ours if not name.startswith("fiscal.verify")} == {"fiscal.keys"}


# -- clean journals ----------------------------------------------------------------------------


def test_rich_journal_verifies_clean(rich: Path) -> None:
    """A journal written through the Journal API, with every kind of record, has no finding."""
    report = check(rich)
    assert report.findings == ()
    assert report.ok
    assert report.entry_count == last_seq(rich)
    assert set(report.chain_counts) == {"ticket", "training", "copy", "invoice", "cash",
                                        "event", "closure", "period"}


def test_bodies_verify_clean_with_heads_and_trusted_genesis(rich: Path) -> None:
    """Raw bodies with the heads table and the genesis certificate as trust anchor verify."""
    report = verify_entries(bodies(rich), heads=heads(rich),
                            trusted_certificates=[genesis_certificate(rich)], workers=1)
    assert report.ok, report.findings


def test_workers_verify_a_large_journal_like_one_process(large: Path) -> None:
    """Worker processes give the same clean report as in-process verification, with progress."""
    seen: list[int] = []
    report = verify_data_dir(large, workers=2, progress=seen.append)
    assert report.ok, report.findings[:5]
    assert report.entry_count == last_seq(large) > LARGE
    assert seen[-1] == report.entry_count
    assert check(large).chain_counts == report.chain_counts


def test_workers_next_to_threads(large: Path) -> None:
    """A process running threads (the daemon) starts its workers from a fork server."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        report = verify_data_dir(large, workers=2)
    finally:
        stop.set()
        thread.join()
    assert report.ok, report.findings[:5]


def test_workers_find_the_same_tampering(large: Path, tmp_path: Path) -> None:
    """A tampered entry far into a large journal is found by the parallel verifier."""
    data_dir = Path(shutil.copytree(large, tmp_path / "large"))
    with raw_db(data_dir) as db:
        db.execute("DELETE FROM entries WHERE seq = 2050")
    report = verify_entries(bodies(data_dir), workers=2)
    assert at(report, "seq_gap") == [2050]


# -- per entry -----------------------------------------------------------------------------------


def test_edited_amount_in_a_body(copy: Path) -> None:
    """An amount changed in a stored body breaks its content hash, data and signature."""
    with raw_db(copy) as db:
        body = db.execute("SELECT body FROM entries WHERE seq = 2").fetchone()[0]
        db.execute("UPDATE entries SET body = ? WHERE seq = 2",
                   (body.replace('"total":1479', '"total":1497'),))
    report = check(copy)
    for code in ("hash_mismatch", "data_mismatch", "bad_signature", "total_mismatch"):
        assert at(report, code) == [2], code


def test_edited_data_to_sign(copy: Path) -> None:
    """A stored data-to-sign that is not rebuilt from the entry's fields is reported."""
    with raw_db(copy) as db:
        body = db.execute("SELECT body FROM entries WHERE seq = 4").fetchone()[0]
        db.execute("UPDATE entries SET body = ? WHERE seq = 4", (body.replace("RETURN", "SALE"),))
    assert at(check(copy), "data_mismatch") == [4]


def test_edited_index_column(copy: Path) -> None:
    """An index column that does not repeat the body is reported at that entry."""
    with raw_db(copy) as db:
        db.execute("UPDATE entries SET business_date = '2026-01-30' WHERE seq = 2")
    report = check(copy)
    assert at(report, "index_mismatch") == [2]
    assert "business_date" in report.findings[0].message


def test_signature_respelled(copy: Path) -> None:
    """A signature spelled differently (same bytes under a lenient decoder) is refused."""
    original = entry(copy, 6).sig
    respelled = original[:-1] + {"A": "B", "Q": "R", "g": "h", "w": "x"}[original[-1]]
    with raw_db(copy) as db:
        body = db.execute("SELECT body FROM entries WHERE seq = 6").fetchone()[0]
        db.execute("UPDATE entries SET body = ?, sig = ? WHERE seq = 6",
                   (body.replace(original, respelled), respelled))
    assert at(check(copy), "bad_signature") == [6]


def test_unreadable_body_located_by_its_row(copy: Path) -> None:
    """A body that is not JSON is reported at its row's seq."""
    with raw_db(copy) as db:
        db.execute("UPDATE entries SET body = X'7B22FF' WHERE seq = 9")
    report = check(copy)
    assert at(report, "unparsable") == [9]


def test_float_in_record_is_not_canonical(rich: Path) -> None:
    """A record holding a float cannot be hashed canonically."""
    raw = bodies(rich)
    raw[11] = raw[11].replace('"code":1040', '"code":1040.5')
    assert at(verify_entries(raw, workers=1), "not_canonical") == [12]


def test_resigned_by_another_key(copy: Path) -> None:
    """An entry rebuilt and signed by a key the journal never established is reported."""
    resign(copy, 6, other_key())
    report = check(copy)
    assert at(report, "unknown_key") == [6]
    assert at(report, "prev_sig_mismatch") == [8]


async def test_signed_by_the_retired_key(tmp_path: Path) -> None:
    """After a key rotation, an entry signed with the replaced key is reported."""
    journal = await open_journal(tmp_path, FakeClock())
    await journal.sell(small_sale())
    old = journal.key
    await journal.rotate_key("boss")
    await journal.close()
    crafted = await append_unchecked(tmp_path, DRAWER, signer=old)
    assert at(check(tmp_path), "retired_key") == [crafted.seq]


# -- sequences, chains, time -------------------------------------------------------------------


def test_deleted_entry_in_the_middle(copy: Path) -> None:
    """A deleted entry leaves a gap in the global sequence and in its chain."""
    with raw_db(copy) as db:
        db.execute("DELETE FROM entries WHERE seq = 10")
    report = check(copy)
    assert at(report, "seq_gap") == [10]
    assert at(report, "chain_gap") == [11]
    assert at(report, "closure_mismatch") == [13]


def test_deleted_first_entry(copy: Path) -> None:
    """Without its initialisation event the journal has no genesis key."""
    with raw_db(copy) as db:
        db.execute("DELETE FROM entries WHERE seq = 1")
    report = check(copy)
    assert at(report, "seq_gap") == [1]
    assert at(report, "no_genesis") == [2]


def test_swapped_entries(copy: Path) -> None:
    """Two entries stored in each other's place are both reported."""
    with raw_db(copy) as db:
        five, six = (db.execute("SELECT body FROM entries WHERE seq = ?", (s,)).fetchone()[0]
                     for s in (5, 6))
        db.execute("UPDATE entries SET body = ? WHERE seq = 5", (six,))
        db.execute("UPDATE entries SET body = ? WHERE seq = 6", (five,))
    report = check(copy)
    assert at(report, "seq_order") == [5]
    assert set(at(report, "index_mismatch")) == {5, 6}


def test_duplicated_entry(copy: Path) -> None:
    """An entry stored a second time is reported at the seq it claims."""
    last = last_seq(copy)
    with raw_db(copy) as db:
        db.execute("INSERT INTO entries (seq, chain, chain_seq, type, business_date, ref_seq, "
                   "sig, head_sig, at_utc, body) SELECT ?, chain, 99, type, business_date, "
                   "ref_seq, sig, head_sig, at_utc, body FROM entries WHERE seq = 5", (last + 1,))
    report = check(copy)
    assert at(report, "seq_order") == [5]
    assert f"seq {last + 1}" in next(f.message for f in report.findings
                                     if f.code == "index_mismatch")


def test_clock_backwards_without_event(copy: Path) -> None:
    """An entry dated before its predecessor without a clock event (1050) is reported."""
    earlier = parse_utc(entry(copy, last_seq(copy)).at_utc) - dt.timedelta(minutes=5)
    crafted = asyncio.run(append_unchecked(copy, DRAWER, now=earlier))
    assert at(check(copy), "clock_backwards") == [crafted.seq]


def test_first_flag_inconsistent(rich: Path) -> None:
    """A first flag set past chain sequence 1 is reported."""
    raw = bodies(rich)
    raw[3] = raw[3].replace('"first":false', '"first":true')
    assert at(verify_entries(raw, workers=1), "first_flag") == [4]


# -- heads and truncation ------------------------------------------------------------------------


def test_deleted_tail(copy: Path) -> None:
    """Deleting the last entry leaves its chain's signed head beyond the chain."""
    last = last_seq(copy)
    with raw_db(copy) as db:
        db.execute("DELETE FROM entries WHERE seq = ?", (last,))
    assert at(check(copy), "truncated") == [last]


def test_deleted_tail_with_older_head_needs_the_watermark(copy: Path) -> None:
    """With the head restored to the previous (validly signed) one, only the cloud's
    acknowledged watermark reveals a deleted tail."""
    last = entry(copy, last_seq(copy))
    with raw_db(copy) as db:
        previous = db.execute("SELECT chain_seq, seq, sig, head_sig FROM entries WHERE chain = ?"
                              " AND chain_seq = ?", (last.chain, last.chain_seq - 1)).fetchone()
        db.execute("DELETE FROM entries WHERE seq = ?", (last.seq,))
        db.execute("UPDATE heads SET chain_seq = ?, seq = ?, sig = ?, head_sig = ? "
                   "WHERE chain = ?", (*previous, last.chain))
    assert check(copy).ok
    assert at(check(copy, acked_through=last.seq), "below_watermark") == [last.seq]


def test_head_row_removed_or_forged(copy: Path) -> None:
    """A chain without its head, and a head whose signature does not verify, are reported."""
    with raw_db(copy) as db:
        db.execute("DELETE FROM heads WHERE chain = 'copy'")
        db.execute("UPDATE heads SET head_sig = sig WHERE chain = 'ticket'")
    report = check(copy)
    assert at(report, "head_missing") == [seq_of(copy, "copy", 3)]
    assert at(report, "bad_head_signature") == [seq_of(copy, "ticket", 7)]


def test_forged_key_rotation(copy: Path) -> None:
    """A rotation event whose link is not signed by the current key does not hand over trust:
    it is reported, and the journal's key stays the one of the data dir's certificate."""
    intruder = other_key()
    details = {"old_key_id": entry(copy, last_seq(copy)).key_id, "new_key_id": intruder.key_id,
               "certificate_pem": intruder.certificate_pem(),
               "link_sig": intruder.sign(b"KEYLINK,forged")}
    rotation = asyncio.run(append_unchecked(copy, Event(
        code=1080, operator="eve", description="Key rotation", details=details)))
    report = check(copy)
    assert [(f.code, f.seq) for f in report.findings] == [("bad_rotation", rotation.seq)]


def test_second_initialisation(copy: Path) -> None:
    """An initialisation event (260) inside the journal is reported and changes no key."""
    genesis = entry(copy, 1).record
    crafted = asyncio.run(append_unchecked(copy, Event(
        code=260, operator="eve", description="Initialisation",
        details=dict(genesis["details"]))))
    assert at(check(copy), "misplaced_genesis") == [crafted.seq]


def test_entry_of_another_register(copy: Path) -> None:
    """An entry naming another register than the journal's is reported."""
    crafted = asyncio.run(append_unchecked(copy, DRAWER,
                                           settings=JournalSettings(register_id="R2")))
    assert at(check(copy), "identity_mismatch") == [crafted.seq]


def test_certificate_file_not_the_current_key(copy: Path) -> None:
    """The data dir's certificate must hold the key the journal signs with after rotation."""
    (copy / "keys" / "box-cert.pem").write_text(genesis_certificate(copy))
    report = check(copy)
    assert [f.code for f in report.findings] == ["cert_mismatch"]


def test_damaged_certificates_never_crash(rich: Path) -> None:
    """Whatever character of a certificate is damaged, reading it succeeds or is refused with
    ``ValueError`` — never another of the parser's exceptions."""
    pem = genesis_certificate(rich)
    refused = 0
    positions = range(pem.index("\n") + 1, len(pem) - 30)
    for at_char in positions:
        damaged = pem[:at_char] + ("A" if pem[at_char] != "A" else "B") + pem[at_char + 1:]
        try:
            certificate_der(damaged)
        except ValueError:
            refused += 1
    assert 0 < refused < len(positions)


def test_damaged_genesis_certificate(rich: Path) -> None:
    """A damaged certificate in the initialisation event is a finding."""
    raw = bodies(rich)
    genesis = orjson.loads(raw[0])
    genesis["record"]["details"]["certificate_pem"] = "-----BEGIN CERTIFICATE-----\nAAAA"
    raw[0] = orjson.dumps(genesis, option=orjson.OPT_SORT_KEYS).decode()
    report = verify_entries(raw, workers=1)
    assert at(report, "genesis_mismatch") == [1]
    assert at(report, "hash_mismatch") == [1]


def test_untrusted_genesis(rich: Path) -> None:
    """A genesis key outside the trusted certificates is reported."""
    rotation = next(e for e in map(orjson.loads, bodies(rich)) if e["record"].get("code") == 1080)
    report = verify_entries(bodies(rich), trusted_certificates=[
        rotation["record"]["details"]["certificate_pem"]], workers=1)
    assert at(report, "untrusted_key") == [1]


# -- totals and references -----------------------------------------------------------------------


def test_closure_that_is_not_the_fold_of_its_day(copy: Path) -> None:
    """A signed day closure whose totals are not its day's fold, and that breaks the perpetual
    totals, is reported."""
    closure = Closure.model_validate(dict(entry(copy, 30).record), strict=False)
    bad = closure.model_copy(update={"period_from": "2026-03-05", "period_to": "2026-03-05"})
    crafted = asyncio.run(append_unchecked(copy, bad, business_date="2026-03-05"))
    report = check(copy)
    assert at(report, "closure_mismatch") == [crafted.seq]
    assert at(report, "perpetual_break") == [crafted.seq]


def test_ticket_dated_in_a_closed_day(copy: Path) -> None:
    """A ticket dated in a period already closed is reported."""
    sale = Ticket.model_validate(dict(entry(copy, 2).record), strict=False)
    crafted = asyncio.run(append_unchecked(copy, sale, business_date=sale.business_date))
    assert at(check(copy), "after_closure") == [crafted.seq]


def test_copy_numbered_twice(copy: Path) -> None:
    """A copy numbered as an earlier copy of the same original is reported."""
    original = OriginalRef(seq=2, chain="ticket", chain_seq=1, register_id="R1")
    crafted = asyncio.run(append_unchecked(
        copy, Copy(operator="eve", original=original, original_type="SALE", copy_number=2),
        ref_seq=2))
    assert at(check(copy), "copy_number") == [crafted.seq]


def test_return_of_more_than_was_sold(copy: Path) -> None:
    """Returns that together take back more than a sale's line are reported at the excess."""
    returned = Ticket.model_validate(dict(entry(copy, 4).record), strict=False)
    extra = [asyncio.run(append_unchecked(copy, returned, business_date="2026-01-28", ref_seq=2))
             for _ in range(3)]
    report = check(copy)
    assert at(report, "over_return") == [extra[-1].seq]


def test_return_of_a_later_entry(rich: Path) -> None:
    """A return must refer to an earlier sale of the journal."""
    raw = bodies(rich)
    envelope = orjson.loads(raw[3])
    envelope["record"]["original"]["seq"] = 40
    raw[3] = orjson.dumps(envelope).decode()
    assert at(verify_entries(raw, workers=1), "bad_reference") == [4]


# -- partial reads (archives) ----------------------------------------------------------------


def test_partial_range_verifies_with_its_keys(rich: Path) -> None:
    """A seq range of the journal verifies with the certificate trusted at its start."""
    raw = bodies(rich)[13:]
    assert verify_entries(raw, partial=True, trusted_certificates=[genesis_certificate(rich)],
                          workers=1).ok


def test_partial_range_without_keys(rich: Path) -> None:
    """Without a trusted certificate, a range starting after the genesis cannot be trusted."""
    report = verify_entries(bodies(rich)[13:], partial=True, workers=1)
    assert at(report, "unknown_key")[0] == 14


# -- the report and the command line -------------------------------------------------------------


def test_report_json() -> None:
    """A report turns into the JSON object of ``--json``."""
    report = Report.build([Finding("seq_gap", "gap", 3, None, None)], 7, {"ticket": 7})
    assert report.to_json() == {"ok": False, "entries": 7, "chains": {"ticket": 7}, "findings": [
        {"code": "seq_gap", "message": "gap", "seq": 3, "chain": None, "chain_seq": None}]}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fiscal verify`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "fiscal", "verify", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_clean_journal(rich: Path) -> None:
    """``tillbox verify`` exits 0 on a clean journal and prints a summary line."""
    done = run_cli("--data-dir", str(rich))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": clean")


def test_cli_json_on_a_large_journal_with_workers(large: Path) -> None:
    """``--json`` prints the report; worker processes work from the command line."""
    done = run_cli("--data-dir", str(large), "--json", "--workers", "2")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["ok"] is True
    assert report["entries"] == last_seq(large)


def test_cli_tampered_journal(copy: Path) -> None:
    """Findings give exit status 1, one line each, and the JSON lists them."""
    with raw_db(copy) as db:
        db.execute("DELETE FROM entries WHERE seq = 10")
    human = run_cli("--data-dir", str(copy))
    assert human.returncode == 1
    assert human.stdout.splitlines()[0].split("\t")[:4] == ["10", "-", "-", "seq_gap"]
    report = orjson.loads(run_cli("--data-dir", str(copy), "--json").stdout)
    assert report["ok"] is False
    assert {"seq": 10, "code": "seq_gap"}.items() <= report["findings"][0].items()


def test_cli_without_journal(tmp_path: Path) -> None:
    """A data dir without a journal exits 2."""
    done = run_cli("--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert "no journal" in done.stderr


def test_not_a_journal_file(tmp_path: Path) -> None:
    """A data dir whose journal file is not a journal gives one finding, not a crash."""
    (tmp_path / "journal.sqlite3").write_bytes(b"not a database, just bytes" * 100)
    report = check(tmp_path)
    assert [f.code for f in report.findings] == ["unreadable_store"]
    assert run_cli("--data-dir", str(tmp_path)).returncode == 1
