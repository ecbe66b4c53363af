"""The data-to-sign strings: field formats, first flag, escaping, and the signature extract."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fiscal.signed_data import (
    ALGORITHM,
    FORMAT_VERSION,
    breakdown_field,
    compact_date,
    data_to_sign,
    escape,
    head_data,
    sealed_content,
    signature_extract,
)

HASH = "ab" * 32
SIG = "t9nzEIDeMFoGeM5paQMGVBN7MbcUXcFIGb3BeYQEEOFFg1adnTwBYssC8v5t1zrBBnU8K8U-aIwYeMu2Hsg_Yw"
TIME = "20260331091200"


def sign_string(record: dict[str, Any], *, chain: str = "ticket", chain_seq: int = 1,
                prev_sig: str | None = None, register_id: str = "R1") -> str:
    return data_to_sign(chain, record, local_time=TIME, register_id=register_id,
                        chain_seq=chain_seq, prev_sig=prev_sig, content_hash=HASH)


def unescape(text: str) -> str:
    codes = {"%25": "%", "%2C": ",", "%7C": "|"}
    return re.sub("%(25|2C|7C)", lambda match: codes[match.group(0)], text)


def ticket(kind: str = "sale", breakdown: list[dict[str, int]] | None = None,
           total: int = 2079) -> dict[str, Any]:
    if breakdown is None:
        breakdown = [{"rate": 550, "incl": 937}, {"rate": 2000, "incl": 1142}]
    return {"type": kind, "breakdown": breakdown, "total": total}


def closure(kind: str, period_from: str, period_to: str) -> dict[str, Any]:
    return {"type": kind, "breakdown": [{"rate": 2000, "incl": 1142}, {"rate": 550, "incl": 820}],
            "period_total": 1962, "perpetual_abs": 2196, "period_from": period_from,
            "period_to": period_to}


def copy(operator: str = "Zoé", original_register: str = "R1") -> dict[str, Any]:
    return {"type": "copy", "original": {"register_id": original_register, "chain_seq": 12},
            "original_type": "SALE", "copy_number": 2, "operator": operator}


def event(description: str = "Initialisation", operator: str = "system") -> dict[str, Any]:
    return {"type": "event", "code": 260, "description": description, "operator": operator}


def test_format_constants_are_pinned() -> None:
    """The algorithm name and format version stored with every entry are the documented ones."""
    assert (ALGORITHM, FORMAT_VERSION) == ("ES256-det", 1)


@pytest.mark.parametrize(
    ("breakdown", "expected"),
    [
        ([{"rate": 550, "incl": 937}, {"rate": 2000, "incl": 1142}], "2000:1142|0550:937"),
        ([{"rate": 210, "incl": 5}, {"rate": 0, "incl": 100}, {"rate": 1000, "incl": 7}],
         "1000:7|0210:5|0000:100"),
        ([{"rate": 550, "incl": -117}], "0550:-117"),
        ([], "0:0"),
    ],
)
def test_breakdown_field(breakdown: list[dict[str, int]], expected: str) -> None:
    """Rates on four digits, highest first, negative amounts with '-', '0:0' when empty."""
    assert breakdown_field(breakdown) == expected


def test_sale_on_sequence_one_has_flag_y_and_empty_previous() -> None:
    """The first ticket of a chain signs 'Y' and an empty previous signature."""
    assert sign_string(ticket()) == f"2000:1142|0550:937,2079,{TIME},R1,1,SALE,Y,,{HASH}"


def test_return_after_the_first_has_flag_n_and_previous_signature() -> None:
    """A later ticket signs 'N' and the previous signature; returns are negative."""
    record = ticket("return", [{"rate": 550, "incl": -117}], -117)
    assert sign_string(record, chain_seq=2, prev_sig=SIG) == (
        f"0550:-117,-117,{TIME},R1,2,RETURN,N,{SIG},{HASH}")


def test_empty_ticket_breakdown_is_zero_zero() -> None:
    """A ticket with no breakdown signs '0:0'."""
    assert sign_string(ticket(breakdown=[], total=0)).startswith("0:0,0,")


def test_invoice_and_credit_note_sign_the_escaped_customer_name() -> None:
    """Invoices add the customer name, with separators percent-encoded."""
    record = {**ticket(), "type": "invoice", "customer": {"name": "ACME, SA | 50% off"}}
    assert sign_string(record, chain="invoice") == (
        f"2000:1142|0550:937,2079,{TIME},R1,1,INVOICE,ACME%2C SA %7C 50%25 off,Y,,{HASH}")
    credit = {**ticket("credit_note", [{"rate": 550, "incl": -117}], -117),
              "customer": {"name": "Bob"}}
    assert sign_string(credit, chain="invoice", chain_seq=2, prev_sig=SIG).split(",")[5:7] == [
        "CREDIT_NOTE", "Bob"]


def test_day_closure_format() -> None:
    """A day closure signs breakdown, period total, perpetual abs, time and period YYYYMMDD."""
    record = closure("day_closure", "2026-03-31", "2026-03-31")
    assert sign_string(record, chain="closure") == (
        f"2000:1142|0550:820,1962,2196,{TIME},20260331,1,Y,,{HASH}")


@pytest.mark.parametrize("kind", ["month_closure", "year_closure"])
def test_period_closure_format(kind: str) -> None:
    """Month and year closures sign their period as 'from|to'."""
    record = closure(kind, "2025-04-01", "2026-03-31")
    assert sign_string(record, chain="period", chain_seq=3, prev_sig=SIG) == (
        f"2000:1142|0550:820,1962,2196,{TIME},20250401|20260331,3,N,{SIG},{HASH}")


def test_negative_period_total() -> None:
    """A period with more returns than sales signs a negative total."""
    record = {**closure("day_closure", "2026-03-31", "2026-03-31"), "period_total": -300,
              "breakdown": [{"rate": 2000, "incl": -300}]}
    assert sign_string(record, chain="closure").startswith("2000:-300,-300,2196,")


def test_copy_format() -> None:
    """A copy signs register, copy sequence, original type, copy number, operator and original."""
    assert sign_string(copy(), chain="copy", chain_seq=4, prev_sig=SIG) == (
        f"R1,4,SALE,2,Zoé,{TIME},R1,12,N,{SIG},{HASH}")


def test_event_format() -> None:
    """An event signs sequence, code, description, time, operator and register."""
    assert sign_string(event(), chain="event") == (
        f"1,260,Initialisation,{TIME},system,R1,Y,,{HASH}")


def test_cash_movement_format() -> None:
    """A cash movement signs kind, amount, tender, time, register, sequence and operator."""
    record = {"type": "cash_movement", "kind": "safe_drop", "amount": 10000, "tender": "cash",
              "operator": "alice"}
    assert sign_string(record, chain="cash", chain_seq=2, prev_sig=SIG) == (
        f"safe_drop,10000,cash,{TIME},R1,2,alice,N,{SIG},{HASH}")


def test_archive_format() -> None:
    """An archive record signs its period, manifest hash, entry count, time and register."""
    record = {"type": "archive", "period_from": "2025-04-01", "period_to": "2026-03-31",
              "manifest_sha256": "cd" * 32, "entry_count": 12}
    assert sign_string(record, chain="archive") == (
        f"20250401|20260331,{'cd' * 32},12,{TIME},R1,1,Y,,{HASH}")


def test_unknown_record_type_is_refused() -> None:
    """A record type without a format is a programming error, never signed loosely."""
    with pytest.raises(ValueError, match="no data-to-sign format"):
        sign_string({"type": "gift_card"})


separator_text = st.text(
    st.one_of(st.sampled_from("%,|%2C%7C%25"), st.characters(exclude_categories=["Cs"])),
    min_size=1, max_size=30,
)

FORMATS: dict[str, int] = {"sale": 9, "invoice": 10, "day_closure": 9, "month_closure": 9,
                           "copy": 11, "event": 9, "cash_movement": 10, "archive": 9}


def every_format(text: str) -> dict[str, tuple[dict[str, Any], list[int]]]:
    """Each record type with ``text`` in its free-text fields and the indexes of those fields."""
    return {
        "sale": (ticket(), [3]),
        "invoice": ({**ticket(), "type": "invoice", "customer": {"name": text}}, [3, 6]),
        "day_closure": (closure("day_closure", "2026-03-31", "2026-03-31"), []),
        "month_closure": (closure("month_closure", "2026-03-01", "2026-03-31"), []),
        "copy": (copy(text, text), [0, 4, 6]),
        "event": (event(text, text), [2, 4, 5]),
        "cash_movement": ({"type": "cash_movement", "kind": "cash_in", "amount": -5,
                           "tender": text, "operator": text}, [2, 4, 6]),
        "archive": ({"type": "archive", "period_from": "2026-03-01",
                     "period_to": "2026-03-31", "manifest_sha256": HASH, "entry_count": 3},
                    [4]),
    }


@given(separator_text)
@example("a,b|c%d")
@example("%2C")
@example(",,,")
def test_free_text_never_changes_the_field_count(text: str) -> None:
    """With separators in every free text, splitting on ',' gives the format's field count."""
    for kind, (record, text_fields) in every_format(text).items():
        fields = sign_string(record, register_id=text, chain_seq=2, prev_sig=SIG).split(",")
        assert len(fields) == FORMATS[kind], kind
        assert fields[-3:] == ["N", SIG, HASH]
        for index in text_fields:
            assert "|" not in fields[index]
            assert unescape(fields[index]) == text, (kind, index)


def test_escape_is_reversible_and_orders_percent_first() -> None:
    """'%' is encoded first so that literal '%2C' survives a round trip."""
    assert escape("50%,a|b") == "50%25%2Ca%7Cb"
    assert escape("%2C") == "%252C"
    assert unescape(escape("%2C,|%")) == "%2C,|%"


def test_head_data_format() -> None:
    """A chain head signs HEAD, the escaped register, chain, chain and global sequence, sig."""
    assert head_data("R,1", "ticket", 3, 7, SIG) == f"HEAD,R%2C1,ticket,3,7,{SIG}"


def test_signature_extract_is_characters_3_7_13_19() -> None:
    """The printed extract is characters 3, 7, 13 and 19 (1-based) of the signature."""
    assert signature_extract("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "CGMS"
    assert signature_extract(SIG) == SIG[2] + SIG[6] + SIG[12] + SIG[18] == "nDeM"


def test_sealed_content_covers_exactly_the_unsigned_envelope_fields() -> None:
    """The content hash covers the record and the envelope fields not in the data-to-sign."""
    fields = {name: name for name in ("alg", "at_local", "at_utc", "chain", "format_version",
                                      "key_id", "record", "register_id", "seq", "store_id",
                                      "sig", "data_to_sign", "prev_sig")}
    assert sorted(sealed_content(fields)) == ["alg", "at_local", "at_utc", "chain",
                                              "format_version", "key_id", "record",
                                              "register_id", "seq", "store_id"]
    with pytest.raises(KeyError):
        sealed_content({"alg": "x"})


def test_compact_date() -> None:
    """ISO dates become YYYYMMDD."""
    assert compact_date("2026-03-31") == "20260331"
