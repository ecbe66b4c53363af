"""The ``journal/up`` payloads: consecutive journal entries exactly as stored, ≤ 256 KiB.

``{box, epoch, from_seq, to_seq, entries: [...]}`` where each entry is the stored JSON text of
the envelope, carried as a JSON *string* (the cloud verifies and stores those very bytes, never
a re-serialisation). A batch holds at most ``max_entries`` entries and stops before the one that
would take the payload past ``MAX_PAYLOAD``; an entry larger than that on its own still travels,
alone. Rows must be consecutive from ``from_seq``: the first gap ends the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

MAX_PAYLOAD = 256 * 1024
ENVELOPE_SLACK = 256
"""Room kept for the header (box, epoch, sequence numbers) and the closing brackets."""


@dataclass(frozen=True)
class Batch:
    """One ``journal/up`` message."""

    from_seq: int
    to_seq: int
    payload: bytes
    first_at_utc: str | None = None

    @property
    def count(self) -> int:
        """How many entries it carries."""
        return self.to_seq - self.from_seq + 1


def encode_batch(box: str, epoch: str, rows: Sequence[tuple[int, str]],
                 max_bytes: int = MAX_PAYLOAD) -> Batch | None:
    """The payload of the longest consecutive run of ``rows`` that fits; None if no rows."""
    if not rows:
        return None
    encoded: list[bytes] = []
    size = ENVELOPE_SLACK
    expected = rows[0][0]
    for seq, body in rows:
        item = orjson.dumps(body)
        if seq != expected or (encoded and size + len(item) + 1 > max_bytes):
            break
        encoded.append(item)
        size += len(item) + 1
        expected += 1
    first, last = rows[0][0], rows[0][0] + len(encoded) - 1
    header = orjson.dumps({"box": box, "epoch": epoch, "from_seq": first, "to_seq": last})
    payload = header[:-1] + b',"entries":[' + b",".join(encoded) + b"]}"
    return Batch(first, last, payload, at_utc_of(rows[0][1]))


def at_utc_of(body: str) -> str | None:
    """The ``at_utc`` of a stored entry body (None if unreadable)."""
    try:
        value = orjson.loads(body).get("at_utc")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None
