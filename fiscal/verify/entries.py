"""Checks of each stored entry on its own (run in worker processes, a chunk at a time).

An entry's body must parse into exactly the envelope's fields; its index columns (in a data dir)
must repeat the body; its content hash is recomputed from the sealed content, its data-to-sign
rebuilt from its own fields, and its signature verified with the key its ``key_id`` names, which
must be a key the journal trusts at that sequence number. Its record's arithmetic is re-done.

These are the general checks, which say exactly what is wrong with an entry. A clean entry is
first offered to ``fiscal.verify.fast``, which runs the same checks without recording anything
and hands over anything it does not prove clean. An entry whose content hash fails is located by
its position (its row's seq in a data dir, else the seq expected in the stream), not by the seq
its altered body claims.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from fiscal.verify import findings as f
from fiscal.verify.findings import Finding, Where
from fiscal.verify.key_registry import KeyTimeline, verify_signature
from fiscal.verify.sealing import NotCanonical, content_hash
from fiscal.verify.signed_strings import data_to_sign
from fiscal.verify.tickets import check_amounts

ALGORITHMS = frozenset({"ES256-det"})
FORMAT_VERSIONS = frozenset({1})
ENVELOPE: dict[str, tuple[type, ...]] = {
    "seq": (int,), "chain": (str,), "chain_seq": (int,), "first": (bool,),
    "prev_sig": (str, type(None)), "data_to_sign": (str,), "content_hash": (str,),
    "sig": (str,), "alg": (str,), "key_id": (str,), "format_version": (int,),
    "at_utc": (str,), "at_local": (str,), "register_id": (str,), "store_id": (str,),
    "record": (dict,),
}
ENVELOPE_KEYS = frozenset(ENVELOPE)
_SORTED = sorted(ENVELOPE)
TYPINGS = frozenset({tuple(ENVELOPE[name][0] for name in _SORTED),
                     tuple(ENVELOPE[name][-1] for name in _SORTED)})
"""The field types of a well-formed envelope in sorted key order (prev_sig: text or null)."""
CHAIN_OF_TYPE = {
    "sale": "ticket", "return": "ticket", "invoice": "invoice", "credit_note": "invoice",
    "copy": "copy", "day_closure": "closure", "month_closure": "period",
    "year_closure": "period", "archive": "archive", "event": "event", "cash_movement": "cash",
}
CLOSURE_TYPES = frozenset({"day_closure", "month_closure", "year_closure"})
DATED_CHAINS = frozenset({"ticket", "training", "cash"})
INDEXED_TYPES = frozenset(CHAIN_OF_TYPE) - {"archive"}
"""Types whose business_date and ref_seq columns follow the store's known conventions."""
INDEX_COLUMNS = ("seq", "chain", "chain_seq", "type", "business_date", "ref_seq", "sig",
                 "at_utc")
Index = tuple[Any, ...]
"""A data dir row's index columns, in the order of ``INDEX_COLUMNS``."""
Out = list[tuple[str, str]]


@dataclass(frozen=True)
class Context:
    """What every entry check needs: the key timeline and pool, the journal's identity."""

    timeline: KeyTimeline
    pool: Mapping[str, bytes]
    store_id: str | None = None
    register_id: str | None = None


@dataclass(slots=True)
class Work:
    """A readable entry going through the checks: its envelope and what they found so far."""

    envelope: dict[str, Any]
    index: Index | None
    position: int | None
    where: Where
    out: Out = field(default_factory=list)
    local: dt.datetime | None = None
    data: bytes = b""

    def findings(self) -> list[Finding]:
        """The findings of this entry, located."""
        return [f.found(code, message, self.where) for code, message in self.out]


def kind_of(record: Mapping[str, Any]) -> str | None:
    """Return a record's type when it is text (a tampered record may hold anything)."""
    kind = record.get("type")
    return kind if type(kind) is str else None


def _parse(raw: bytes | str) -> dict[str, Any] | str:
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError) as error:  # TypeError: no body at all
        return f"body is not JSON: {error}"
    return value if isinstance(value, dict) else "body is not a JSON object"


def _shape(envelope: Mapping[str, Any]) -> str | None:
    if envelope.keys() != ENVELOPE_KEYS:
        missing = sorted(ENVELOPE_KEYS - envelope.keys())
        extra = sorted(envelope.keys() - ENVELOPE_KEYS)
        return f"envelope fields missing {missing}, unexpected {extra}"
    if tuple(map(type, envelope.values())) in TYPINGS:  # canonical bodies have sorted keys
        return None
    if tuple(type(envelope[name]) for name in _SORTED) in TYPINGS:
        return None
    wrong = [name for name, kinds in ENVELOPE.items() if type(envelope[name]) not in kinds]
    return f"envelope fields of the wrong type: {wrong}"


def read_entry(raw: bytes | str, index: Index | None, position: int | None) -> Work | Finding:
    """Parse a body into an envelope of the expected shape, or locate why it cannot be read.

    ``position`` (the row's seq, or the expected seq) locates what cannot be read.
    """
    envelope = _parse(raw)
    problem = envelope if isinstance(envelope, str) else _shape(envelope)
    if problem is not None or isinstance(envelope, str):
        code = f.UNPARSABLE if isinstance(envelope, str) else f.BAD_ENVELOPE
        where = (index[0], index[1], index[2]) if index is not None else (position, None, None)
        return f.found(code, problem or "", where)
    return Work(envelope, index, position,
                (envelope["seq"], envelope["chain"], envelope["chain_seq"]))


def check_entries(works: list[Work], context: Context) -> None:
    """Run every check on every entry given, one check at a time.

    A check that fails on an entry it did not foresee reports it (``bad_record``) rather than
    stopping the verification.
    """
    for check in CHECKS:
        for work in works:
            try:
                check(work, context)
            except Exception as error:  # a verifier reports, it does not stop
                work.out.append((f.BAD_RECORD, f"{check.__name__} failed: {error!r}"))


def _check_hash(work: Work, _: Context) -> None:
    """Recompute the content hash; an entry whose hash fails is located by its position."""
    envelope = work.envelope
    try:
        actual = content_hash(envelope)
    except NotCanonical as error:
        work.out.append((f.NOT_CANONICAL, f"cannot be hashed canonically: {error}"))
        actual = None
    if actual is not None and actual != envelope["content_hash"]:
        work.out.append((f.HASH_MISMATCH, f"content hash is {actual}, stored "
                                          f"{envelope['content_hash']}"))
    if actual != envelope["content_hash"] and work.position is not None:
        work.where = (work.position, work.where[1], work.where[2])


def _check_header(work: Work, _: Context) -> None:
    envelope, out = work.envelope, work.out
    if work.index is not None:
        _check_index(envelope, work.index, out)
    if envelope["alg"] not in ALGORITHMS:
        out.append((f.UNKNOWN_ALG, f"unknown signature algorithm {envelope['alg']!r}"))
    if envelope["format_version"] not in FORMAT_VERSIONS:
        out.append((f.UNKNOWN_FORMAT, f"unknown format_version {envelope['format_version']}"))
    chain_seq = envelope["chain_seq"]
    first = chain_seq == 1
    if chain_seq < 1 or envelope["seq"] < 1:
        out.append((f.FIRST_FLAG, "sequence numbers start at 1"))
    elif envelope["first"] is not first or (envelope["prev_sig"] is None) is not first:
        out.append((f.FIRST_FLAG, "first flag and previous signature must be set exactly on "
                                  "chain sequence 1"))


def index_columns(envelope: Mapping[str, Any]) -> Index:
    """Return the index columns the store should hold for ``envelope``."""
    record = envelope["record"]
    kind = kind_of(record)
    date = record.get("business_date") if envelope["chain"] in DATED_CHAINS else None
    if kind in CLOSURE_TYPES:
        date = record.get("period_from")
    reference = record.get("original") or record.get("source")
    ref = reference.get("seq") if isinstance(reference, dict) else None
    return (envelope["seq"], envelope["chain"], envelope["chain_seq"], kind, date, ref,
            envelope["sig"], envelope["at_utc"])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _check_index(envelope: Mapping[str, Any], index: Index, out: Out) -> None:
    expected = index_columns(envelope)
    if expected == index:
        return
    loose = expected[3] not in INDEXED_TYPES  # business_date and ref_seq: known types only
    wrong = [f"{name} {_short(got)} (body {_short(want)})"
             for i, (name, want, got) in enumerate(zip(INDEX_COLUMNS, expected, index,
                                                        strict=True))
             if want != got and not (loose and i in (4, 5))]
    if wrong:
        out.append((f.INDEX_MISMATCH, f"index columns differ from the body: {', '.join(wrong)}"))


def _check_time(work: Work, _: Context) -> None:
    work.local = _same_instant(work.envelope["at_utc"], work.envelope["at_local"], work.out)


def _same_instant(at_utc: str, at_local: str, out: Out) -> dt.datetime | None:
    try:
        utc = dt.datetime.fromisoformat(at_utc)
        local = dt.datetime.fromisoformat(at_local)
        same = len(at_utc) == 27 and at_utc[-1] == "Z" and local.tzinfo is not None and (
            utc == local)
    except ValueError:
        out.append((f.BAD_TIME, f"unreadable time {at_utc!r} / {at_local!r}"))
        return None
    if not same:
        out.append((f.BAD_TIME, f"at_local {at_local} and at_utc {at_utc} are not the same "
                                "instant in the expected form"))
    return local


def _check_data(work: Work, _: Context) -> None:
    work.data = _rebuilt_data(work.envelope, work.local, work.out)


def _rebuilt_data(envelope: Mapping[str, Any], local: dt.datetime | None, out: Out) -> bytes:
    stored: str = envelope["data_to_sign"]
    if local is None or kind_of(envelope["record"]) not in CHAIN_OF_TYPE:
        return stored.encode()
    try:
        rebuilt = data_to_sign(envelope["record"], local_time=local,
                               register_id=envelope["register_id"],
                               chain_seq=envelope["chain_seq"], prev_sig=envelope["prev_sig"],
                               content_hash=envelope["content_hash"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        out.append((f.BAD_RECORD, f"record lacks what its signed data needs: {error!r}"))
        return stored.encode()
    if rebuilt != stored:
        out.append((f.DATA_MISMATCH, f"stored data-to-sign {stored!r} is not the rebuilt "
                                     f"{rebuilt!r}"))
    return rebuilt.encode()


def _check_signature(work: Work, context: Context) -> None:
    envelope, data, out = work.envelope, work.data, work.out
    key_id = envelope["key_id"]
    if key_id not in context.timeline.expected(envelope["seq"]):
        status = context.timeline.status(envelope["seq"], key_id) or f.UNKNOWN_KEY
        out.append((status, f"signed by key {key_id}, not a key the journal trusts here"))
    der = context.pool.get(key_id)
    if der is not None and not verify_signature(der, envelope["sig"], data):
        out.append((f.BAD_SIGNATURE, f"signature does not verify with key {key_id}"))


def _check_record(work: Work, context: Context) -> None:
    envelope, out = work.envelope, work.out
    record = envelope["record"]
    kind = kind_of(record)
    expected = "training" if record.get("training") is True else CHAIN_OF_TYPE.get(kind or "")
    if expected is None:
        out.append((f.BAD_RECORD, f"unknown record type {kind!r}"))
    elif expected != envelope["chain"]:
        out.append((f.WRONG_CHAIN, f"a {kind} belongs to chain {expected}, not "
                                   f"{envelope['chain']}"))
    if context.register_id is not None and (
            envelope["register_id"] != context.register_id or
            envelope["store_id"] != context.store_id):
        out.append((f.IDENTITY_MISMATCH, f"store/register {envelope['store_id']}/"
                                         f"{envelope['register_id']} is not the journal's"))
    out.extend(check_amounts(record))


Check = Callable[[Work, Context], None]
CHECKS: tuple[Check, ...] = (_check_hash, _check_header, _check_time, _check_data,
                             _check_signature, _check_record)
"""The checks, in order: each may use what an earlier one left in the ``Work``."""
