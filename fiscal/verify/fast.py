"""The clean-entry fast path: prove in one pass that an entry has no finding, or hand it over.

Almost every entry of a journal is clean. For those, this module runs the per-entry checks of
``fiscal.verify.entries`` — envelope shape, index columns, header, identity, chain, time,
data-to-sign, arithmetic, content hash, signature — with the verifier's own builders but
without recording anything along the way. It never reports: as soon as an entry differs from
the clean case, or something cannot be decided cheaply, it answers ``None`` and the entry goes
through the general checks, which say exactly what is wrong. The findings are therefore the
general checks' by construction; this path only has to be right when it answers "clean".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fiscal.keys import raw_to_der
from fiscal.verify.entries import (
    ALGORITHMS,
    CHAIN_OF_TYPE,
    ENVELOPE,
    FORMAT_VERSIONS,
    TYPINGS,
    Context,
    Index,
    index_columns,
)
from fiscal.verify.key_registry import KeyTimeline, public_key, signature_bytes
from fiscal.verify.sealing import content_hash
from fiscal.verify.signed_strings import escape, local_stamp, signed_text
from fiscal.verify.tickets import check_amounts

_KEYS = tuple(sorted(ENVELOPE))
"""The envelope's keys in the order of a canonical body."""
_ECDSA = ec.ECDSA(hashes.SHA256())
_parse_time = dt.datetime.fromisoformat


@dataclass(frozen=True)
class Fast:
    """What the fast path needs, prepared once per chunk from its ``Context``."""

    timeline: KeyTimeline
    keys: Mapping[str, ec.EllipticCurvePublicKey]
    store_id: str | None
    register_id: str | None
    register_text: str
    """The journal's register id, escaped as in the data-to-sign."""


def prepare(context: Context) -> Fast:
    """Load the public keys of a chunk's context once."""
    keys = {}
    for key_id, der in context.pool.items():
        try:
            keys[key_id] = public_key(der)
        except ValueError:
            continue  # not a usable key: entries naming it take the general path
    return Fast(context.timeline, keys, context.store_id, context.register_id,
                escape(context.register_id or ""))


class Screened(NamedTuple):
    """An entry that passed every check but its signature, with what that check needs."""

    envelope: dict[str, Any]
    key: ec.EllipticCurvePublicKey
    signature: bytes
    """DER."""
    signed: bytes
    """The data-to-sign."""


def screen(raw: bytes | str, index: Index | None, fast: Fast) -> Screened | None:
    """Run every check but the signature's on a body; ``None`` as soon as one is not clean."""
    try:
        envelope = _envelope(raw)
        if envelope is None or not _header_ok(envelope, index, fast):
            return None
        signed = _signed_data(envelope, fast)
        if signed is None or check_amounts(envelope["record"]) or (
                content_hash(envelope) != envelope["content_hash"]):
            return None
        key_id = envelope["key_id"]
        key, signature = fast.keys.get(key_id), signature_bytes(envelope["sig"])
        if key is None or signature is None or (
                key_id not in fast.timeline.expected(envelope["seq"])):
            return None
        return Screened(envelope, key, raw_to_der(signature), signed)
    except Exception:  # anything unforeseen: the general checks will say what it is
        return None


def signature_valid(entry: Screened) -> bool:
    """Whether a screened entry's signature verifies: then it is clean."""
    try:
        entry.key.verify(entry.signature, entry.signed, _ECDSA)
    except InvalidSignature:
        return False
    return True


def _envelope(raw: bytes | str) -> dict[str, Any] | None:
    envelope = orjson.loads(raw)
    if type(envelope) is not dict or tuple(envelope) != _KEYS:
        return None
    return envelope if tuple(map(type, envelope.values())) in TYPINGS else None


def _header_ok(envelope: dict[str, Any], index: Index | None, fast: Fast) -> bool:
    """Index columns, algorithm, format, sequence numbers, first flag, identity and chain."""
    chain_seq = envelope["chain_seq"]
    first = chain_seq == 1
    if (envelope["alg"] not in ALGORITHMS or envelope["format_version"] not in FORMAT_VERSIONS
            or chain_seq < 1 or envelope["seq"] < 1 or envelope["first"] is not first
            or (envelope["prev_sig"] is None) is not first):
        return False
    if fast.register_id is not None and (envelope["register_id"] != fast.register_id
                                         or envelope["store_id"] != fast.store_id):
        return False
    record = envelope["record"]
    kind = record.get("type")
    if type(kind) is not str:
        return False
    chain = "training" if record.get("training") is True else CHAIN_OF_TYPE.get(kind)
    return chain == envelope["chain"] and (index is None or index_columns(envelope) == index)


def _signed_data(envelope: dict[str, Any], fast: Fast) -> bytes | None:
    """The rebuilt data-to-sign when it is the stored one and the times agree, else ``None``."""
    at_utc, at_local = envelope["at_utc"], envelope["at_local"]
    if len(at_utc) != 27 or at_utc[-1] != "Z":
        return None
    local = _parse_time(at_local)
    if local.tzinfo is None or _parse_time(at_utc) != local:
        return None
    register = envelope["register_id"]
    text = signed_text(envelope["record"], _stamp(at_local, local),
                       fast.register_text if register == fast.register_id else escape(register),
                       envelope["chain_seq"], envelope["prev_sig"], envelope["content_hash"])
    return text.encode() if text == envelope["data_to_sign"] else None


def _stamp(at_local: str, local: dt.datetime) -> str:
    """``local_stamp(local)``, read off the text when it has the usual layout."""
    if (at_local[4] == "-" and at_local[7] == "-" and at_local[10] == "T" and at_local[13] == ":"
            and at_local[16] == ":"):  # then [:19] is the parsed YYYY-MM-DDTHH:MM:SS
        return at_local[:19].replace("-", "").replace("T", "").replace(":", "")
    return local_stamp(local)
