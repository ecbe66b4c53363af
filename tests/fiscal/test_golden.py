"""Golden vectors: the signed bytes of one record of every type never change by accident.

The scenario (``golden/scenario.py``) is rebuilt with the current code and compared with the
checked-in ``golden/*.json``; if this fails after a deliberate format change, read
``golden/regenerate.py``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fiscal.chain import CHAINS
from fiscal.keys import public_key_id, verify_raw
from fiscal.signed_data import head_data

GOLDEN = Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.json"))
GOLDEN_KEY_ID = "e3b7cff2f1b80efa"


@cache
def scenario() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden_scenario", GOLDEN / "scenario.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@cache
def rebuilt() -> dict[str, dict[str, Any]]:
    return {vector.file_name: vector.to_json() for vector in scenario().build()}


def stored(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def public_key() -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_private_key((GOLDEN / "test-key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.public_key()


def test_vector_files_are_exactly_the_scenario() -> None:
    """The checked-in vector files are the scenario's entries, none missing and none stale."""
    assert [path.name for path in FILES] == sorted(rebuilt())
    assert len(FILES) >= 13


def test_vectors_cover_every_chain_and_record_type() -> None:
    """Together the vectors exercise every chain and every record type but the unused ones."""
    vectors = [stored(path) for path in FILES]
    assert {v["chain"] for v in vectors} == set(CHAINS)
    types = {v["record"]["type"] for v in vectors}
    assert types == {"sale", "return", "invoice", "credit_note", "copy", "day_closure",
                     "month_closure", "year_closure", "archive", "event", "cash_movement"}
    assert any(v["chain_seq"] > 1 for v in vectors)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_rebuilt_vector_is_byte_identical(path: Path) -> None:
    """Rebuilding the entry gives the same record, data-to-sign, hash, signature and body."""
    expected = stored(path)
    actual = rebuilt()[path.name]
    for field in ("record", "data_to_sign", "content_hash", "sig", "head_sig", "body"):
        assert actual[field] == expected[field], field
    assert actual == expected


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_golden_signatures_verify_with_the_public_key(path: Path) -> None:
    """Each stored signature and head signature verifies with the test key's public half."""
    vector = stored(path)
    key = public_key()
    assert verify_raw(key, vector["sig"], vector["data_to_sign"].encode("utf-8"))
    head = head_data("R1", vector["chain"], vector["chain_seq"], vector["seq"], vector["sig"])
    assert verify_raw(key, vector["head_sig"], head.encode("utf-8"))
    assert not verify_raw(key, vector["sig"], vector["data_to_sign"].encode("utf-8") + b" ")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_stored_body_is_consistent_with_its_fields(path: Path) -> None:
    """The stored body carries the signed fields; the data-to-sign ends with the hash."""
    vector = stored(path)
    body = json.loads(vector["body"])
    assert body["key_id"] == GOLDEN_KEY_ID
    for field in ("seq", "chain", "chain_seq", "record", "data_to_sign", "content_hash", "sig"):
        assert body[field] == vector[field], field
    assert vector["data_to_sign"].split(",")[-1] == vector["content_hash"]
    assert body["first"] == (vector["chain_seq"] == 1)


def test_golden_key_id_is_pinned() -> None:
    """The fixed test key's id is the pinned one (so the key file itself cannot drift)."""
    assert public_key_id(public_key()) == GOLDEN_KEY_ID
