"""Generate ``entry.schema.json``: the JSON Schema of a stored journal entry and its record.

The schema is derived from the pydantic records of ``fiscal.records`` (the record of an entry is
one of them, told apart by its ``type``) and from an envelope model mirroring
``fiscal.chain.Entry``. Every property is required, because the stored form is
``model_dump(mode="json")``, which writes every field, defaults included. Archives carry a copy
of the schema so that they stay readable after a software change.

Run ``python -m fiscal.schemas.generate`` after changing a record, and check the file in; a test
asserts that the checked-in file equals a fresh generation.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fiscal.chain import CHAINS, Entry
from fiscal.records import (
    ArchiveRecord,
    CashMovement,
    Closure,
    Copy,
    Event,
    Invoice,
    Ticket,
)
from fiscal.signed_data import ALGORITHM

SCHEMA_FILE = Path(__file__).with_name("entry.schema.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"

Record = Annotated[Ticket | Invoice | Copy | Closure | ArchiveRecord | Event | CashMovement,
                   Field(discriminator="type")]
Signature = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{86}$")]


class Envelope(BaseModel):
    """A journal entry as stored, replicated and archived (mirrors ``fiscal.chain.Entry``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, title="Entry")

    seq: Annotated[int, Field(ge=1)]
    chain: Literal[CHAINS]  # type: ignore[valid-type]
    chain_seq: Annotated[int, Field(ge=1)]
    first: bool
    prev_sig: Signature | None
    data_to_sign: str
    content_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    sig: Signature
    alg: Literal[ALGORITHM]  # type: ignore[valid-type]
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    format_version: Annotated[int, Field(ge=1)]
    at_utc: Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")]
    at_local: str
    register_id: str
    store_id: str
    record: Record


def _require_all(node: Any) -> None:
    """Mark every property of every object schema as required (the stored form has them all)."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            node["required"] = sorted(node["properties"])
        for value in node.values():
            _require_all(value)
    elif isinstance(node, list):
        for value in node:
            _require_all(value)


def stored_fields() -> set[str]:
    """Return the names of the fields ``Entry.to_json`` writes (the stored envelope)."""
    blank: dict[str, Any] = {f.name: None for f in dataclasses.fields(Entry) if f.compare}
    blank["record"] = {}
    return set(Entry(**blank).to_json())


def entry_schema() -> dict[str, Any]:
    """Return the JSON Schema of a stored entry envelope."""
    if set(Envelope.model_fields) != stored_fields():
        raise RuntimeError("the schema envelope no longer mirrors fiscal.chain.Entry")
    schema = Envelope.model_json_schema(mode="serialization")
    _require_all(schema)
    schema["$schema"] = DIALECT
    schema["description"] = ("A tillbox journal entry: the signed envelope and its business "
                             "record, exactly as stored (one canonical JSON object).")
    return schema


def render() -> str:
    """Return the schema file's text (stable: sorted keys, two-space indent)."""
    return json.dumps(entry_schema(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def main() -> None:
    """Write the schema file next to this module."""
    SCHEMA_FILE.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
