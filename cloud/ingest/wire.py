"""The replication wire contract of DESIGN §8, cloud side: topics, batches, acks and nacks.

A box publishes ``tillbox/v1/{box}/journal/up`` (QoS 1)::

    {"box": "…", "epoch": "…", "from_seq": 201, "to_seq": 400, "entries": ["{…}", …]}

where each entry is a JSON **string**: the entry's body exactly as the box stored and signed it
(the ``body`` column of its journal), so that signatures re-verify byte for byte. The cloud
answers on ``journal/ack`` ``{"epoch", "acked_through"}`` and on ``journal/nack``
``{"epoch", "expected_seq", "reason", "detail"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

PREFIX = "tillbox/v1"
SHARE_GROUP = "ingest"
UP_FILTER = f"$share/{SHARE_GROUP}/{PREFIX}/+/journal/up"
STATUS_FILTER = f"$share/{SHARE_GROUP}/{PREFIX}/+/status"
MAX_PAYLOAD = 1 << 20
"""Larger batches are refused (the box's limit is 256 KiB)."""
MAX_ID = 128

# nack reasons (stable; the box acts on them)
GAP = "gap"
"""Entries before ``expected_seq`` never came (the batch waited past the gap timeout)."""
SCHEMA = "schema"
"""The batch or an entry is malformed, or names another box."""
BAD_SIGNATURE = "bad_signature"
"""An entry's hash, signed data or signature does not verify, or its key is not trusted."""
CHAIN_BREAK = "chain_break"
"""A sequence or a chain does not continue the stored one (seq, chain_seq, prev_sig)."""
IDENTITY = "identity"
"""Store or register differ from the box's journal."""
EPOCH = "epoch"
"""The batch's epoch is not the box's current one (a re-initialised or restored journal)."""
INVALID = "invalid"
"""Any other verifier finding (totals, references, time, records)."""


class BatchError(Exception):
    """A batch refused before verification: its nack reason and a detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Batch:
    """Consecutive journal entries of one box, as published."""

    box: str
    epoch: str
    from_seq: int
    to_seq: int
    bodies: tuple[str, ...]


def box_of(topic: str, leaf: str = "journal/up") -> str | None:
    """The box id of a ``tillbox/v1/{box}/<leaf>`` topic, or ``None``."""
    head, _, rest = topic.partition(f"{PREFIX}/")
    box, _, tail = rest.partition("/")
    if head or tail != leaf or not box or len(box) > MAX_ID:
        return None
    return box


def ack_topic(box: str) -> str:
    """Where acks to ``box`` go."""
    return f"{PREFIX}/{box}/journal/ack"


def nack_topic(box: str) -> str:
    """Where nacks to ``box`` go."""
    return f"{PREFIX}/{box}/journal/nack"


def ack_payload(epoch: str, acked_through: int) -> bytes:
    """The ack: the highest contiguous seq durably stored and verified."""
    return orjson.dumps({"epoch": epoch, "acked_through": acked_through})


def nack_payload(epoch: str, expected_seq: int, reason: str, detail: str) -> bytes:
    """The nack: resend from ``expected_seq``; ``reason`` is one of this module's codes."""
    return orjson.dumps({"epoch": epoch, "expected_seq": expected_seq, "reason": reason,
                         "detail": detail[:500]})


def _int(document: dict[str, Any], name: str) -> int:
    value = document.get(name)
    if type(value) is not int or not 1 <= value < 1 << 53:
        raise BatchError(SCHEMA, f"{name} must be a positive integer")
    return value


def _identifier(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID:
        raise BatchError(SCHEMA, f"{name} must be a non-empty string of at most {MAX_ID}")
    return value


def _document(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise BatchError(SCHEMA, f"batch of {len(payload)} bytes, over {MAX_PAYLOAD}")
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise BatchError(SCHEMA, f"batch is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise BatchError(SCHEMA, "batch is not a JSON object")
    return document


def parse_batch(payload: bytes, box: str) -> Batch:
    """Read a ``journal/up`` payload published under ``box``'s topic (``BatchError`` if bad)."""
    document = _document(payload)
    if _identifier(document, "box") != box:
        raise BatchError(SCHEMA, f"batch names box {document['box']!r} on box {box!r}'s topic")
    epoch = _identifier(document, "epoch")
    from_seq, to_seq = _int(document, "from_seq"), _int(document, "to_seq")
    entries = document.get("entries")
    if not isinstance(entries, list) or not entries:
        raise BatchError(SCHEMA, "entries must be a non-empty list")
    if to_seq - from_seq + 1 != len(entries):
        raise BatchError(SCHEMA, f"{len(entries)} entries for seq {from_seq}..{to_seq}")
    if not all(isinstance(entry, str) for entry in entries):
        raise BatchError(SCHEMA, "each entry must be a JSON string: the body exactly as stored")
    return Batch(box, epoch, from_seq, to_seq, tuple(entries))


def loose_epoch(payload: bytes) -> str:
    """The epoch named by a batch that could not be read, or ``""``."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    epoch = document.get("epoch") if isinstance(document, dict) else None
    return epoch if isinstance(epoch, str) and len(epoch) <= MAX_ID else ""


def parse_status(payload: bytes) -> dict[str, Any]:
    """A box's status message as an object (a bare word such as ``offline`` → ``{state}``)."""
    if len(payload) > 4096:
        return {"state": "unreadable"}
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        text = payload.decode("utf-8", "replace").strip()[:64]
        return {"state": text or "unreadable"}
    return document if isinstance(document, dict) else {"state": str(document)[:64]}
