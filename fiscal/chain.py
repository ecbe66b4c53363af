"""Chaining and signing: the pure step ``append(state, record, signer, now) -> (state, entry)``.

An entry is the envelope of DESIGN.md §5: the business record plus its place in the journal
(global ``seq``, ``chain``, ``chain_seq``), the previous signature of its chain, the signed data
string, the content hash, the signature and the time. ``ChainState`` is everything needed to
append the next entry; the store persists it as signed chain heads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from fiscal.canonical import canonical_json, sha256_hex
from fiscal.keys import Signer
from fiscal.records import AnyRecord
from fiscal.signed_data import (
    ALGORITHM,
    FORMAT_VERSION,
    data_to_sign,
    head_data,
    sealed_content,
    signature_extract,
)

CHAINS: tuple[str, ...] = (
    "ticket", "invoice", "copy", "closure", "period", "archive", "event", "training", "cash",
)
_CHAIN_OF_TYPE = {
    "sale": "ticket", "return": "ticket", "invoice": "invoice", "credit_note": "invoice",
    "copy": "copy", "day_closure": "closure", "month_closure": "period",
    "year_closure": "period", "archive": "archive", "event": "event", "cash_movement": "cash",
}


def chain_of(record: Mapping[str, Any]) -> str:
    """Return the chain a record belongs to (training tickets have their own)."""
    if record.get("training"):
        return "training"
    return _CHAIN_OF_TYPE[str(record["type"])]


@dataclass(frozen=True)
class ChainHead:
    """The last entry of a chain, signed again at every append (detects tail truncation)."""

    chain: str
    chain_seq: int
    seq: int
    sig: str
    head_sig: str


@dataclass(frozen=True)
class ChainState:
    """What the next append needs: last global sequence, heads, last time, identity."""

    store_id: str
    register_id: str
    timezone: str
    seq: int = 0
    heads: Mapping[str, ChainHead] = field(default_factory=lambda: MappingProxyType({}))
    last_at_utc: str | None = None


@dataclass(frozen=True)
class Entry:
    """A journal entry exactly as stored, replicated and archived."""

    seq: int
    chain: str
    chain_seq: int
    first: bool
    prev_sig: str | None
    data_to_sign: str
    content_hash: str
    sig: str
    alg: str
    key_id: str
    format_version: int
    at_utc: str
    at_local: str
    register_id: str
    store_id: str
    record: Mapping[str, Any]
    record_json: orjson.Fragment | None = field(default=None, compare=False, repr=False)
    """The record's canonical bytes when already computed (saves a second serialisation)."""

    def to_json(self) -> dict[str, Any]:
        """Return the envelope as a JSON object."""
        data = self._envelope()
        data["record"] = dict(self.record)
        return data

    def _envelope(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "chain": self.chain, "chain_seq": self.chain_seq,
            "first": self.first, "prev_sig": self.prev_sig, "data_to_sign": self.data_to_sign,
            "content_hash": self.content_hash, "sig": self.sig, "alg": self.alg,
            "key_id": self.key_id, "format_version": self.format_version,
            "at_utc": self.at_utc, "at_local": self.at_local, "register_id": self.register_id,
            "store_id": self.store_id,
        }

    def body(self) -> bytes:
        """Return the canonical JSON bytes of the envelope (the stored form)."""
        if self.record_json is None:
            return canonical_json(self.to_json())
        data = self._envelope()
        data["record"] = self.record_json
        return canonical_json(data, checked=True)

    @property
    def extract(self) -> str:
        """The four-character signature extract printed on documents."""
        return signature_extract(self.sig)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        """Rebuild an entry from its JSON object (``KeyError``/``TypeError`` if malformed)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__
                      if name != "record_json"})


def utc_text(moment: dt.datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with microseconds and ``Z``."""
    utc = moment.astimezone(dt.UTC)
    if utc.year < 1000:  # strftime does not pad such years; keep its form
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def local_text(moment: dt.datetime, timezone: str) -> str:
    """Format an aware datetime in the store's time zone, ISO 8601 with offset."""
    return moment.astimezone(ZoneInfo(timezone)).isoformat(timespec="microseconds")


def compact_local(at_local: str) -> str:
    """Return ``YYYYMMDDHHMMSS`` from a local ISO timestamp."""
    return at_local[:19].replace("-", "").replace("T", "").replace(":", "")


def append(
    state: ChainState, record: AnyRecord, signer: Signer, now: dt.datetime
) -> tuple[ChainState, Entry, ChainHead]:
    """Chain and sign ``record`` after ``state``; return the new state, the entry and its head."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    payload = record.model_dump(mode="json")
    chain = chain_of(payload)
    previous = state.heads.get(chain)
    chain_seq = previous.chain_seq + 1 if previous else 1
    prev_sig = previous.sig if previous else None
    fields: dict[str, Any] = {
        "seq": state.seq + 1, "chain": chain, "alg": ALGORITHM, "key_id": signer.key_id,
        "format_version": FORMAT_VERSION, "at_utc": utc_text(now),
        "at_local": local_text(now, state.timezone), "register_id": state.register_id,
        "store_id": state.store_id, "record": payload,
    }
    fields["record"] = orjson.Fragment(canonical_json(payload, checked=True))
    content_hash = sha256_hex(canonical_json(sealed_content(fields), checked=True))
    signed = data_to_sign(chain, payload, local_time=compact_local(fields["at_local"]),
                          register_id=state.register_id, chain_seq=chain_seq,
                          prev_sig=prev_sig, content_hash=content_hash)
    sig = signer.sign(signed.encode("utf-8"))
    entry = Entry(chain_seq=chain_seq, first=chain_seq == 1, prev_sig=prev_sig,
                  data_to_sign=signed, content_hash=content_hash, sig=sig,
                  record_json=fields.pop("record"), **fields, record=payload)
    head_sig = signer.sign(
        head_data(state.register_id, chain, chain_seq, entry.seq, sig).encode("utf-8"))
    head = ChainHead(chain=chain, chain_seq=chain_seq, seq=entry.seq, sig=sig, head_sig=head_sig)
    heads = MappingProxyType({**state.heads, chain: head})
    new_state = ChainState(store_id=state.store_id, register_id=state.register_id,
                           timezone=state.timezone, seq=entry.seq, heads=heads,
                           last_at_utc=entry.at_utc)
    return new_state, entry, head
