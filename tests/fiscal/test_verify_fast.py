"""The verifier's clean-entry fast path: it takes every entry of a valid journal, and whatever is
done to an entry's body or index columns, it never calls clean an entry the general checks would
report (so the findings stay the general checks'). Also the verifier's quicker signature decoding:
it accepts exactly what the re-encoding definition accepts."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from journal_factory import build_rich, other_key, read_db

from fiscal.verify.chunks import ROWS
from fiscal.verify.engine import Options, Verification
from fiscal.verify.entries import Context, Index, check_entries, read_entry
from fiscal.verify.fast import Fast, prepare, screen, signature_valid
from fiscal.verify.findings import Finding
from fiscal.verify.key_registry import signature_bytes

Row = tuple[bytes, Index]
Journal = tuple[Context, Fast, list[Row]]
PROPERTY = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Journal:
    """The rich journal's context (keys, identity), fast-path context, and rows."""
    data_dir = tmp_path_factory.mktemp("fast")
    asyncio.run(build_rich(data_dir))
    with read_db(data_dir) as db:
        rows = [(bytes(r[0]), tuple(r[1:])) for r in db.execute(ROWS, (1, 10**9)).fetchall()]
    verification = Verification(Options())
    for raw, _ in rows:
        verification.observe(raw)
    context = verification.context()
    return context, prepare(context), rows


def fast_clean(fast: Fast, raw: bytes | str, index: Index | None) -> bool:
    """Whether the fast path calls the entry clean."""
    entry = screen(raw, index, fast)
    return entry is not None and signature_valid(entry)


def general_findings(context: Context, raw: bytes | str, index: Index | None) -> list[Finding]:
    """What the general checks report on the entry."""
    read = read_entry(raw, index, index[0] if index else None)
    if isinstance(read, Finding):
        return [read]
    check_entries([read], context)
    return read.findings()


def test_every_entry_of_a_valid_journal_takes_the_fast_path(
        journal: Journal) -> None:
    """No clean entry of any record type falls back to the general checks."""
    _, fast, rows = journal
    assert rows
    assert [raw for raw, index in rows if not fast_clean(fast, raw, index)] == []
    assert all(fast_clean(fast, raw.decode(), None) for raw, _ in rows)


@PROPERTY
@given(st.data(), st.integers(0, 10**6), st.integers(1, 255))
def test_a_flipped_body_byte_is_never_clean(journal: Journal, data: st.DataObject,
                                            position: int, mask: int) -> None:
    """Any byte of any body changed: the fast path does not call it clean, the general checks
    report it."""
    context, fast, rows = journal
    raw, index = rows[data.draw(st.integers(0, len(rows) - 1), label="row")]
    changed = bytearray(raw)
    changed[position % len(changed)] ^= mask
    assert not fast_clean(fast, bytes(changed), index)
    assert general_findings(context, bytes(changed), index)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**60, 2**60), st.floats(),
                   st.text(max_size=5), st.just("ES256-det"), st.just([]), st.just({}))


@PROPERTY
@given(st.data(), VALUES, st.booleans())
def test_an_edited_field_is_never_clean(journal: Journal, data: st.DataObject,
                                        value: Any, sort_keys: bool) -> None:
    """A field of the envelope or of its record set to another value, or a body serialised
    differently: whenever the fast path calls it clean, the general checks find nothing."""
    context, fast, rows = journal
    raw, index = rows[data.draw(st.integers(0, len(rows) - 1), label="row")]
    envelope = orjson.loads(raw)
    target = envelope if data.draw(st.booleans(), label="envelope") else envelope["record"]
    target[data.draw(st.sampled_from(sorted(target)), label="field")] = value
    body = orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    if fast_clean(fast, body, index):
        assert general_findings(context, body, index) == []


def test_a_body_signed_by_an_unknown_key_is_not_clean(journal: Journal) -> None:
    """The signature alone does not make an entry clean: its key must be trusted there."""
    _, fast, rows = journal
    raw, index = rows[3]
    envelope = orjson.loads(raw)
    envelope["key_id"] = other_key().key_id
    assert not fast_clean(fast, orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS), index)


def test_index_columns_are_checked(journal: Journal) -> None:
    """An index column that does not repeat the body sends the entry to the general checks."""
    _, fast, rows = journal
    raw, index = rows[5]
    assert fast_clean(fast, raw, index)
    assert not fast_clean(fast, raw, (index[0] + 1, *index[1:]))


def lenient_decode(sig: str) -> bytes | None:
    """The definition signature_bytes implements: a 64-byte decoding that re-encodes to itself."""
    try:
        raw = base64.urlsafe_b64decode(sig + "==")
    except ValueError:
        return None
    same = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") == sig
    return raw if len(raw) == 64 and same else None


@PROPERTY
@given(st.binary(min_size=64, max_size=64),
       st.lists(st.tuples(st.integers(0, 89), st.sampled_from("AQgwBx-_+/=.é \n")), max_size=3),
       st.integers(80, 90))
def test_signature_decoding_accepts_exactly_the_canonical_spelling(
        raw: bytes, edits: list[tuple[int, str]], length: int) -> None:
    """A signature is decoded only when it is the one base64url spelling of 64 bytes."""
    sig = list(base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii"))
    for at, char in edits:
        sig[at % len(sig)] = char
    text = "".join(sig)[:length] if length < 86 else "".join(sig) + "A" * (length - 86)
    assert signature_bytes(text) == lenient_decode(text)
