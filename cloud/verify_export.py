"""Re-verify a journal export (JSONL of entry bodies, from the HQ API) offline.

An export from seq 1 is verified as a whole journal (it starts with the initialisation event,
whose certificate it trusts); one starting later is a partial read and needs the certificate
trusted at its first entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from fiscal.verify import Report, verify_entries


def _first_seq(line: bytes) -> int:
    try:
        seq = orjson.loads(line).get("seq")
    except (orjson.JSONDecodeError, AttributeError):
        seq = None
    if type(seq) is not int:
        raise ValueError("the export's first line is not a journal entry")
    return seq


def verify_file(path: Path, certificates: Sequence[str] = ()) -> Report:
    """Verify the bodies of an export file; ``ValueError`` if it holds none."""
    lines = [line for line in path.read_bytes().split(b"\n") if line]
    if not lines:
        raise ValueError(f"{path} holds no entry")
    first = _first_seq(lines[0])
    return verify_entries(lines, trusted_certificates=certificates, partial=first != 1)
