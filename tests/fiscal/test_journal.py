"""Behaviour of the certified journal service: sales, returns, invoices, copies, cash movements,
events, training mode, key rotation, clock jumps and the append-only store."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fiscal import jet, keys
from fiscal.chain import Entry
from fiscal.errors import InvalidInput, KeyFileError, NotFound, OverReturn
from fiscal.journal import DB_FILE, KEY_DIR, Journal
from fiscal.records import Party
from fiscal.requests import (
    CashMovementRequest,
    Discount,
    EventRequest,
    InvoiceRequest,
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
)

BAGUETTES = LineRequest(label="Baguette", unit_price=120, vat_rate=550, quantity_milli=3000)
WINE = LineRequest(label="Vin", unit_price=1299, vat_rate=2000,
                   discount=Discount(kind="percent", value=1000))


def refund_of(seq: int, *lines: tuple[int, int], refund: int, operator: str = "bob",
              tender: str = "cash") -> ReturnRequest:
    """A return of ``(line_no, quantity_milli)`` pairs of ticket ``seq``, refunded in cash."""
    return ReturnRequest(
        operator=operator, original_seq=seq,
        lines=tuple(ReturnLineRequest(original_line_no=n, quantity_milli=q) for n, q in lines),
        refunds=(PaymentRequest(tender=tender, amount=refund),))


def stored_rows(journal: Journal) -> int:
    """Count the entries in the SQLite file."""
    with sqlite3.connect(f"file:{journal.data_dir / DB_FILE}?mode=ro", uri=True) as db:
        count = int(db.execute("SELECT count(*) FROM entries").fetchone()[0])
    db.close()
    return count


async def all_entries(journal: Journal) -> list[Entry]:
    """Every entry of the journal, in order."""
    return [entry async for entry in journal.entries()]


# -- sales ------------------------------------------------------------------------------------


async def test_sale_totals_breakdown_and_change(journal, sale_request):
    """A sale records its discounted lines, per-rate VAT, total, payments and cash change."""
    request = sale_request(
        lines=[BAGUETTES, WINE], discount=Discount(kind="amount", value=50),
        payments=[PaymentRequest(tender="card", amount=1000),
                  PaymentRequest(tender="cash", amount=2000)])
    entry = await journal.sell(request)
    record = entry.record
    # Baguettes 3 × 1.20 = 3.60; wine 12.99 − 10 % (1.30) = 11.69; the 0.50 ticket discount is
    # spread 12/38 by net amounts (largest remainder) → nets 3.48 and 11.31.
    assert [line["net"] for line in record["lines"]] == [348, 1131]
    assert [line["ticket_discount"] for line in record["lines"]] == [12, 38]
    assert record["lines"][1]["line_discount"] == 130
    assert record["breakdown"] == [
        {"rate": 2000, "excl": 942, "vat": 189, "incl": 1131},
        {"rate": 550, "excl": 330, "vat": 18, "incl": 348},
    ]
    assert (record["total"], record["total_excl"], record["total_vat"]) == (1479, 1272, 207)
    assert record["change"] == 3000 - 1479
    assert record["line_count"] == 2
    assert (entry.chain, entry.chain_seq, entry.first, entry.prev_sig) == ("ticket", 1, True, None)
    assert entry.data_to_sign.startswith("2000:1131|0550:348,1479,20261120100")


async def test_sale_signature_extract(journal, sale_request):
    """The printed extract is characters 3, 7, 13 and 19 of the signature."""
    entry = await journal.sell(sale_request(500))
    assert len(entry.extract) == 4
    assert entry.extract == "".join(entry.sig[i] for i in (2, 6, 12, 18))


async def test_sale_is_stored_as_returned(journal, sale_request):
    """The entry read back by seq equals the entry ``sell`` returned."""
    entry = await journal.sell(sale_request(500, 250))
    assert await journal.get(entry.seq) == entry
    assert journal.state.seq == entry.seq


async def test_sales_chain_in_the_ticket_chain(journal, sale_request):
    """Consecutive sales carry chain sequence 1, 2 and the previous signature."""
    first = await journal.sell(sale_request(100))
    second = await journal.sell(sale_request(200))
    assert (second.chain_seq, second.first, second.prev_sig) == (2, False, first.sig)
    assert journal.heads()["ticket"].sig == second.sig


async def test_idempotent_sale_returns_the_first_entry(journal, sale_request):
    """Retrying with the same key returns the stored entry and appends nothing."""
    first = await journal.sell(sale_request(700), idempotency_key="k1")
    seq = journal.state.seq
    again = await journal.sell(sale_request(999), idempotency_key="k1")
    assert again == first
    assert journal.state.seq == seq
    assert stored_rows(journal) == seq


async def test_idempotency_survives_reopening(journal, open_journal, sale_request):
    """The idempotency key is stored: a retry after a restart returns the same entry."""
    first = await journal.sell(sale_request(700), idempotency_key="k1")
    await journal.close()
    reopened = await open_journal()
    seq = reopened.state.seq
    assert await reopened.sell(sale_request(700), idempotency_key="k1") == first
    assert reopened.state.seq == seq


async def test_same_key_on_another_operation_is_independent(journal, sale_request):
    """An idempotency key is scoped by operation: a cash movement with it is a new entry."""
    sale = await journal.sell(sale_request(700), idempotency_key="k1")
    cash = await journal.cash_movement(CashMovementRequest(kind="cash_in", operator="alice",
                                                           amount=500), idempotency_key="k1")
    assert cash.seq == sale.seq + 1
    assert cash.record["type"] == "cash_movement"


# -- returns ----------------------------------------------------------------------------------


async def test_partial_returns_are_negative_and_add_up(journal, sale_request):
    """Two partial returns of a discounted line refund its net paid exactly, in negatives."""
    sale = await journal.sell(sale_request(
        lines=[LineRequest(label="Mug", unit_price=1000, vat_rate=2000, quantity_milli=3000)],
        discount=Discount(kind="amount", value=100)))
    first = await journal.refund(refund_of(sale.seq, (1, 1000), refund=967))
    second = await journal.refund(refund_of(sale.seq, (1, 2000), refund=1933))
    assert first.record["total"] == -967  # round(2900 × 1/3)
    assert second.record["total"] == -1933  # round(2900 × 3/3) − 967
    assert first.record["payments"] == [{"tender": "cash", "amount": -967}]
    line = first.record["lines"][0]
    assert (line["quantity_milli"], line["net"], line["original_line_no"]) == (-1000, -967, 1)
    assert first.record["breakdown"] == [{"rate": 2000, "excl": -806, "vat": -161, "incl": -967}]
    assert (first.chain, first.chain_seq) == ("ticket", 2)
    assert first.data_to_sign.split(",")[5] == "RETURN"
    assert first.record["original"]["seq"] == sale.seq


async def test_over_return_is_refused(journal, sale_request, snapshot):
    """Returning more than what is left of a line raises ``OverReturn`` naming the line."""
    sale = await journal.sell(sale_request(lines=[
        LineRequest(label="A", unit_price=100, vat_rate=2000),
        LineRequest(label="B", unit_price=300, vat_rate=2000, quantity_milli=2000)]))
    await journal.refund(refund_of(sale.seq, (2, 1500), refund=450))
    before = snapshot(journal)
    with pytest.raises(OverReturn) as caught:
        await journal.refund(refund_of(sale.seq, (1, 1000), (2, 1000), refund=400))
    assert caught.value.code == "over_return"
    assert caught.value.field == "lines.1.quantity_milli"
    assert snapshot(journal) == before


async def test_same_line_twice_in_one_return_counts_both(journal, sale_request):
    """Two request lines on the same original line cannot together exceed what was sold."""
    sale = await journal.sell(sale_request(lines=[
        LineRequest(label="A", unit_price=100, vat_rate=2000, quantity_milli=2000)]))
    with pytest.raises(OverReturn) as caught:
        await journal.refund(refund_of(sale.seq, (1, 1500), (1, 1000), refund=250))
    assert caught.value.field == "lines.1.quantity_milli"


async def test_return_of_a_return_is_refused(journal, sale_request):
    """Only a sale can be returned, not a return."""
    sale = await journal.sell(sale_request(500))
    ret = await journal.refund(refund_of(sale.seq, (1, 1000), refund=500))
    with pytest.raises(InvalidInput) as caught:
        await journal.refund(refund_of(ret.seq, (1, 1000), refund=500))
    assert (caught.value.code, caught.value.field) == ("not_returnable", "original_seq")


async def test_return_of_a_training_ticket_is_refused(journal, sale_request):
    """A training ticket cannot be returned."""
    sale = await journal.sell(sale_request(500, training=True))
    with pytest.raises(InvalidInput) as caught:
        await journal.refund(refund_of(sale.seq, (1, 1000), refund=500))
    assert (caught.value.code, caught.value.field) == ("not_returnable", "original_seq")


async def test_return_of_an_unknown_ticket_is_refused(journal):
    """A return names an existing entry, else ``NotFound`` on ``original_seq``."""
    with pytest.raises(NotFound) as caught:
        await journal.refund(refund_of(99, (1, 1000), refund=500))
    assert caught.value.field == "original_seq"


@pytest.mark.parametrize("refund", [499, 501])
async def test_refund_tenders_must_equal_the_refund(journal, sale_request, refund):
    """Refund tenders must add up to the returned amount exactly (no change on refunds)."""
    sale = await journal.sell(sale_request(500))
    with pytest.raises(InvalidInput) as caught:
        await journal.refund(refund_of(sale.seq, (1, 1000), refund=refund))
    assert (caught.value.code, caught.value.field) == ("payments_mismatch", "payments")


def cumulative_refund(net: int, returned: int, sold: int) -> int:
    """What returning ``returned`` of ``sold`` thousandths refunds in all: the net pro rata,
    rounded half up (an oracle independent of ``fiscal.money``)."""
    return (2 * net * returned + sold) // (2 * sold)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quantity=st.integers(1, 10_000), price=st.integers(1, 100_000),
       discount=st.integers(0, 100), chunks=st.lists(st.integers(1, 6_000), max_size=6))
async def test_returns_never_exceed_the_line_net(journal, sale_request, quantity, price,
                                                 discount, chunks):
    """Whatever the partial quantities, the returns of a line never refund more than its net,
    and returning all of it refunds the net exactly."""
    line = LineRequest(label="Cheese", unit_price=price, vat_rate=550, quantity_milli=quantity)
    sale = await journal.sell(sale_request(lines=[line], discount=Discount(
        kind="percent", value=discount * 100)))
    net, returned, refunded = sale.record["lines"][0]["net"], 0, 0
    for chunk in chunks:
        amount = await return_part(journal, sale.seq, net, quantity, returned, chunk)
        if amount is not None:
            returned, refunded = returned + chunk, refunded + amount
        assert refunded <= net
    if returned < quantity:
        rest = await return_part(journal, sale.seq, net, quantity, returned, quantity - returned)
        assert rest is not None
        refunded += rest
    assert refunded == net
    with pytest.raises(OverReturn):
        await journal.refund(refund_of(sale.seq, (1, 1), refund=1))


async def return_part(journal: Journal, seq: int, net: int, sold: int, returned: int,
                      chunk: int) -> int | None:
    """Return ``chunk`` of line 1; return the refund, or None if refused as an over-return."""
    amount = cumulative_refund(net, returned + chunk, sold) - cumulative_refund(net, returned,
                                                                                 sold)
    request = refund_of(seq, (1, chunk), refund=amount)
    if amount == 0:  # nothing to refund: a zero return needs no tender
        request = request.model_copy(update={"refunds": ()})
    if returned + chunk > sold:
        with pytest.raises(OverReturn):
            await journal.refund(request)
        return None
    entry = await journal.refund(request)
    assert entry.record["total"] == -amount
    return amount


# -- invoices and credit notes ----------------------------------------------------------------


def invoice_for(seq: int, name: str = "ACME, SA") -> InvoiceRequest:
    """An invoice request for entry ``seq``."""
    return InvoiceRequest(operator="alice", source_seq=seq, customer=Party(name=name))


async def test_invoice_for_a_sale(journal, sale_request):
    """An invoice copies the sale's amounts into the ``invoice`` chain and names the customer."""
    sale = await journal.sell(sale_request(lines=[BAGUETTES, WINE]))
    invoice = await journal.invoice(invoice_for(sale.seq))
    record = invoice.record
    assert (invoice.chain, invoice.chain_seq, record["type"]) == ("invoice", 1, "invoice")
    assert record["source"]["seq"] == sale.seq
    assert record["breakdown"] == sale.record["breakdown"]
    assert record["total"] == sale.record["total"]
    assert record["lines"] == sale.record["lines"]
    assert invoice.data_to_sign.split(",")[5:7] == ["INVOICE", "ACME%2C SA"]


async def test_second_invoice_for_a_sale_is_refused(journal, sale_request, snapshot):
    """A sale is invoiced at most once."""
    sale = await journal.sell(sale_request(900))
    await journal.invoice(invoice_for(sale.seq))
    before = snapshot(journal)
    with pytest.raises(InvalidInput) as caught:
        await journal.invoice(invoice_for(sale.seq, "Other"))
    assert (caught.value.code, caught.value.field) == ("already_invoiced", "source_seq")
    assert snapshot(journal) == before


async def test_credit_note_links_the_original_invoice(journal, sale_request):
    """A credit note for a return refers to the invoice of the returned sale."""
    sale = await journal.sell(sale_request(900, 100))
    invoice = await journal.invoice(invoice_for(sale.seq))
    ret = await journal.refund(refund_of(sale.seq, (2, 1000), refund=100))
    credit = await journal.invoice(invoice_for(ret.seq))
    record = credit.record
    assert (credit.chain, credit.chain_seq, record["type"]) == ("invoice", 2, "credit_note")
    assert record["original_invoice"]["seq"] == invoice.seq
    assert record["source"]["seq"] == ret.seq
    assert record["total"] == -100


async def test_training_ticket_cannot_be_invoiced(journal, sale_request):
    """Invoices are only issued for finalized (non-training) tickets."""
    sale = await journal.sell(sale_request(900, training=True))
    with pytest.raises(InvalidInput) as caught:
        await journal.invoice(invoice_for(sale.seq))
    assert caught.value.code == "not_invoiceable"


# -- copies -----------------------------------------------------------------------------------


async def test_copies_are_numbered_per_original(journal, sale_request):
    """Reprints of a ticket are numbered 1, 2, 3; another ticket's copies start again at 1."""
    first = await journal.sell(sale_request(100))
    second = await journal.sell(sale_request(200))
    numbers = [(await journal.copy(first.seq, "alice")).record["copy_number"] for _ in range(3)]
    other = await journal.copy(second.seq, "alice")
    assert numbers == [1, 2, 3]
    assert other.record["copy_number"] == 1
    assert (other.chain, other.chain_seq) == ("copy", 4)
    assert other.record["original"] == {"seq": second.seq, "chain": "ticket", "chain_seq": 2,
                                        "register_id": "R1"}
    assert other.data_to_sign.split(",")[:4] == ["R1", "4", "SALE", "1"]


async def test_copies_of_an_invoice(journal, sale_request):
    """An invoice can be reprinted too, with its own copy numbers."""
    sale = await journal.sell(sale_request(100))
    invoice = await journal.invoice(invoice_for(sale.seq))
    copy = await journal.copy(invoice.seq, "alice", reason="lost")
    assert (copy.record["original_type"], copy.record["copy_number"]) == ("INVOICE", 1)


async def test_copy_of_an_event_is_refused(journal):
    """Only tickets and invoices can be reprinted."""
    with pytest.raises(InvalidInput) as caught:
        await journal.copy(1, "alice")
    assert (caught.value.code, caught.value.field) == ("not_copyable", "original_seq")


# -- cash movements and events ------------------------------------------------------------------


async def test_cash_movement_is_journaled_in_the_cash_chain(journal):
    """A float is a signed entry of the ``cash`` chain, not a ticket."""
    entry = await journal.cash_movement(CashMovementRequest(kind="float", operator="alice",
                                                            amount=10_000))
    assert (entry.chain, entry.chain_seq) == ("cash", 1)
    assert entry.record["kind"] == "float"
    assert entry.record["amount"] == 10_000
    assert entry.record["business_date"] == "2026-11-20"
    assert "ticket" not in journal.heads()


async def test_event_is_journaled_with_its_label(journal):
    """A technical event gets its label from the code table when none is given."""
    entry = await journal.record_event(EventRequest(code=1010, operator="alice",
                                                    details={"terminal": "front"}))
    assert (entry.chain, entry.chain_seq) == ("event", 2)  # 1 is the initialisation
    assert entry.record["description"] == "Operator sign-in"
    assert entry.record["details"] == {"terminal": "front"}
    assert entry.data_to_sign.split(",")[:3] == ["2", "1010", "Operator sign-in"]


@pytest.mark.parametrize("code", [9999, -1, jet.INITIALISATION, jet.KEY_ROTATION,
                                  jet.CLOCK_BACKWARDS, jet.PERIOD_CLOSING])
async def test_unknown_and_journal_owned_event_codes_are_refused(journal, snapshot, code):
    """``record_event`` refuses codes outside the table and the codes the journal writes."""
    before = snapshot(journal)
    with pytest.raises(InvalidInput) as caught:
        await journal.record_event(EventRequest(code=code, operator="alice"))
    assert (caught.value.code, caught.value.field) == ("unknown_event_code", "code")
    assert snapshot(journal) == before


async def test_first_entry_is_the_initialisation_event(journal):
    """A new journal starts with event 260 naming its key and certificate."""
    first = await journal.get(1)
    assert first is not None
    assert (first.chain, first.chain_seq, first.first) == ("event", 1, True)
    details = first.record["details"]
    assert first.record["code"] == 260
    assert details["key_id"] == journal.key.key_id == first.key_id
    assert details["certificate_pem"] == journal.key.certificate_pem()


# -- training mode ----------------------------------------------------------------------------


async def test_training_sale_goes_to_the_training_chain(journal, sale_request):
    """A training sale is chained in ``training`` and leaves the ticket chain untouched."""
    entry = await journal.sell(sale_request(500, training=True))
    assert (entry.chain, entry.chain_seq, entry.record["training"]) == ("training", 1, True)
    assert "ticket" not in journal.heads()


async def test_training_sale_is_not_in_the_day_closure(journal, sale_request):
    """A day closure folds real sales only, never training ones."""
    await journal.sell(sale_request(500, training=True))
    await journal.sell(sale_request(300))
    closure, _ = await journal.periods.close_day("boss")
    assert (closure.record["sales_total"], closure.record["ticket_count"]) == (300, 1)
    assert closure.record["tenders"] == [{"tender": "cash", "amount": 300}]


# -- key rotation -----------------------------------------------------------------------------


def public_der(key: keys.BoxKey) -> bytes:
    """The SubjectPublicKeyInfo DER of a key."""
    return key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


async def test_rotation_event_is_signed_by_the_old_key(journal, sale_request):
    """The 1080 event is signed by the old key and links the new one; later entries use it."""
    old = journal.key
    event = await journal.rotate_key("boss")
    new = journal.key
    details = event.record["details"]
    assert event.record["code"] == jet.KEY_ROTATION
    assert event.key_id == old.key_id != new.key_id
    assert (details["old_key_id"], details["new_key_id"]) == (old.key_id, new.key_id)
    assert keys.verify_raw(old.private_key.public_key(), event.sig,
                           event.data_to_sign.encode())
    assert keys.verify_raw(old.private_key.public_key(), details["link_sig"],
                           b"KEYLINK," + public_der(new))
    assert details["certificate_pem"] == new.certificate_pem()
    sale = await journal.sell(sale_request(100))
    assert sale.key_id == new.key_id
    assert keys.verify_raw(new.private_key.public_key(), sale.sig, sale.data_to_sign.encode())


async def test_reopening_after_rotation_uses_the_new_key(journal, open_journal, sale_request):
    """After a rotation and a restart the journal signs with the new key."""
    await journal.rotate_key("boss")
    new_id = journal.key.key_id
    await journal.close()
    reopened = await open_journal()
    assert reopened.key.key_id == new_id
    assert (await reopened.sell(sale_request(100))).key_id == new_id


async def test_swapped_key_file_is_refused(journal, open_journal, tmp_path):
    """A box key that is not the journal's current key makes ``Journal.open`` fail."""
    await journal.close()
    key_dir = journal.data_dir / KEY_DIR
    for name in (keys.KEY_FILE, keys.CERT_FILE):
        (key_dir / name).unlink()
    keys.save(keys.generate("R1", journal.now()), key_dir)
    with pytest.raises(KeyFileError):
        await open_journal()


async def test_key_file_readable_by_others_is_refused(journal, open_journal):
    """The private key must be readable by its owner only."""
    await journal.close()
    (journal.data_dir / KEY_DIR / keys.KEY_FILE).chmod(0o644)
    with pytest.raises(KeyFileError):
        await open_journal()


def copy_keys(source: Path, target: Path) -> None:
    """Copy a key directory, keeping file modes."""
    shutil.copytree(source, target)


async def test_next_key_left_by_a_crash_after_commit_is_promoted(journal, open_journal,
                                                                 tmp_path):
    """A crash between the rotation commit and the rename is finished at the next open."""
    key_dir = journal.data_dir / KEY_DIR
    copy_keys(key_dir, tmp_path / "old-keys")
    await journal.rotate_key("boss")
    new_id = journal.key.key_id
    await journal.close()
    for stem in ("box-key", "box-cert"):  # back to the moment before the rename
        (key_dir / f"{stem}.pem").rename(key_dir / f"{stem}.next.pem")
        shutil.copy2(tmp_path / "old-keys" / f"{stem}.pem", key_dir / f"{stem}.pem")
    reopened = await open_journal()
    assert reopened.key.key_id == new_id
    assert sorted(p.name for p in key_dir.iterdir()) == ["box-cert.pem", "box-key.pem"]


async def test_orphan_next_key_is_discarded(journal, open_journal):
    """A next key the journal never committed (crash before the event) is removed at open."""
    key_dir = journal.data_dir / KEY_DIR
    old_id = journal.key.key_id
    await journal.close()
    keys.save(keys.generate("R1", journal.now()), key_dir, suffix=".next")
    reopened = await open_journal()
    assert reopened.key.key_id == old_id
    assert sorted(p.name for p in key_dir.iterdir()) == ["box-cert.pem", "box-key.pem"]


@pytest.mark.parametrize("leftover", ["empty key", "key without certificate"])
async def test_half_written_orphan_next_key_is_discarded(journal, open_journal, leftover):
    """A next key cut short by a crash while it was written (before the commit) is discarded."""
    key_dir = journal.data_dir / KEY_DIR
    old_id = journal.key.key_id
    await journal.close()
    keys.save(keys.generate("R1", journal.now()), key_dir, suffix=".next")
    if leftover == "empty key":
        (key_dir / "box-key.next.pem").write_bytes(b"")
    (key_dir / "box-cert.next.pem").unlink()
    reopened = await open_journal()
    assert reopened.key.key_id == old_id


async def test_crash_between_the_two_renames_is_finished_at_open(journal, open_journal,
                                                                 tmp_path):
    """A crash after the key was renamed into place but before its certificate was leaves
    the certificate matching the key at the next open, with no ``.next`` file left."""
    key_dir = journal.data_dir / KEY_DIR
    copy_keys(key_dir, tmp_path / "old-keys")
    await journal.rotate_key("boss")
    new = journal.key
    await journal.close()
    (key_dir / "box-cert.pem").rename(key_dir / "box-cert.next.pem")
    shutil.copy2(tmp_path / "old-keys" / "box-cert.pem", key_dir / "box-cert.pem")
    reopened = await open_journal()
    assert reopened.key.key_id == new.key_id
    assert reopened.key.certificate_pem() == new.certificate_pem()
    assert sorted(p.name for p in key_dir.iterdir()) == ["box-cert.pem", "box-key.pem"]


async def test_key_without_certificate_on_an_empty_journal_is_recreated(open_journal,
                                                                        tmp_path):
    """A first start killed between writing the key and its certificate (nothing signed yet)
    does not keep the box from starting: the next open initialises a working key."""
    data_dir = tmp_path / "fresh"
    keys.save(keys.generate("R1", journal_start()), data_dir / KEY_DIR)
    (data_dir / KEY_DIR / keys.CERT_FILE).unlink()
    journal = await open_journal(data_dir=data_dir)
    first = await journal.get(1)
    assert first is not None
    assert first.record["details"]["key_id"] == journal.key.key_id
    certificate = keys.load_certificate_pem(first.record["details"]["certificate_pem"])
    assert keys.public_key_id(keys.certificate_key(certificate)) == journal.key.key_id


def journal_start() -> dt.datetime:
    """The fake clock's start."""
    return dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


# -- clock ------------------------------------------------------------------------------------


async def test_clock_moved_backwards_writes_an_event_first(journal, sale_request, clock):
    """A sale after the clock jumped back is preceded by a 1050 event of the same instant."""
    first = await journal.sell(sale_request(100))
    clock.advance(minutes=-10)
    second = await journal.sell(sale_request(200))
    event = await journal.get(second.seq - 1)
    assert event is not None
    assert (event.chain, event.record["code"]) == ("event", jet.CLOCK_BACKWARDS)
    assert event.at_utc == second.at_utc < first.at_utc
    assert event.record["details"] == {"previous_utc": first.at_utc, "now_utc": second.at_utc}
    assert second.chain_seq == first.chain_seq + 1


async def test_refused_sale_after_a_clock_jump_writes_no_event(journal, sale_request, clock,
                                                               snapshot):
    """The 1050 event is only written together with the entry it precedes."""
    await journal.sell(sale_request(100))
    clock.advance(minutes=-10)
    before = snapshot(journal)
    request = sale_request(100, rate=1234, payments=[PaymentRequest(tender="cash", amount=100)])
    with pytest.raises(InvalidInput) as caught:
        await journal.sell(request)
    assert caught.value.field == "lines.0.vat_rate"
    assert snapshot(journal) == before


# -- append-only store ------------------------------------------------------------------------


def raw_db(journal: Journal) -> sqlite3.Connection:
    """A raw read-write connection to the journal file (autocommit)."""
    return sqlite3.connect(journal.data_dir / DB_FILE, isolation_level=None)


@pytest.mark.parametrize("statement", [
    "UPDATE entries SET body = '{}' WHERE seq = 2",
    "UPDATE entries SET sig = 'x'",
    "DELETE FROM entries WHERE seq = 2",
    "DELETE FROM entries",
    "UPDATE heads SET chain_seq = chain_seq - 1 WHERE chain = 'ticket'",
    "UPDATE heads SET chain_seq = 5 WHERE chain = 'ticket'",
    "DELETE FROM heads",
])
async def test_raw_sql_cannot_rewrite_the_journal(journal, sale_request, statement):
    """Triggers refuse updating or deleting entries and moving or deleting heads."""
    await journal.sell(sale_request(100))
    await journal.sell(sale_request(200))
    db = raw_db(journal)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(statement)
        rows = db.execute("SELECT seq, body FROM entries ORDER BY seq").fetchall()
        heads = db.execute("SELECT chain, chain_seq FROM heads ORDER BY chain").fetchall()
    finally:
        db.close()
    assert [Entry.from_json(orjson.loads(body)) for _, body in rows] == await all_entries(journal)
    assert heads == [("event", 1), ("ticket", 2)]


@pytest.mark.parametrize("statement", [
    "INSERT OR REPLACE INTO entries SELECT seq, chain, chain_seq + 1, type, business_date,"
    " ref_seq, idem_key, sig, head_sig, at_utc, '{}' FROM entries WHERE seq = 3",
    "INSERT OR REPLACE INTO heads VALUES ('ticket', 1, 2, 'x', 'y')",
], ids=["entry", "head"])
async def test_insert_or_replace_cannot_rewrite_the_journal(journal, sale_request, statement):
    """``INSERT OR REPLACE`` (a delete in disguise) cannot replace an entry or a head."""
    await journal.sell(sale_request(100))
    await journal.sell(sale_request(200))
    db = raw_db(journal)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(statement)
    finally:
        db.close()
