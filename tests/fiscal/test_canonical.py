"""Canonical JSON: our fast encoder emits exactly the RFC 8785 bytes on the journal's domain."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fiscal.canonical import MAX_SAFE_INTEGER, NotCanonicalisable, canonical_json, sha256_hex

SAFE = 2**53 - 1

ascii_keys = st.text(st.characters(max_codepoint=127), max_size=8)
tricky_chars = st.sampled_from(
    ["\x00", "\x1f", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\U0001f600", "\U0010fffd",
     '"', "\\", "/", "<", "é", "\ud7ff", "\ue000", "\b", "\f", "\n", "\r", "\t"])
texts = st.one_of(
    st.text(st.characters(codec="utf-8")),
    st.text(st.one_of(tricky_chars, st.characters(codec="utf-8"))),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-SAFE, SAFE),
    st.sampled_from([0, -1, SAFE, -SAFE, 2**31, -(2**31)]), texts,
)
journal_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(ascii_keys, children, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(journal_values)
@example({"b": 1, "a": {"z": [True, None, -0]}, "": "", "A": "\u2028\U0001f600\x00\x7f"})
@example({"key": "line\nbreak\ttab\u0001", "\x01": "control key"})
@example([SAFE, -SAFE, 0, "€"])
def test_canonical_json_equals_rfc8785(value: Any) -> None:
    """For any journal-domain value, canonical_json gives the reference RFC 8785 bytes."""
    assert canonical_json(value) == rfc8785.dumps(value)


def test_keys_are_sorted_by_code_unit() -> None:
    """Object keys are sorted (uppercase before lowercase, shorter prefix first), recursively."""
    value = {"b": {"y": 1, "x": 2}, "a": 0, "B": 0, "aa": 0, "_": 0}
    assert canonical_json(value) == b'{"B":0,"_":0,"a":0,"aa":0,"b":{"x":2,"y":1}}'


def test_tuples_serialise_as_arrays() -> None:
    """Tuples (frozen records' sequences) serialise like lists."""
    assert canonical_json({"t": (1, (2, "x"))}) == b'{"t":[1,[2,"x"]]}'


@pytest.mark.parametrize(
    "value",
    [1.0, 0.5, {"amount": 12.5}, [1, [2, 3.0]], float("nan"), MAX_SAFE_INTEGER + 1,
     -(2**53), 10**30, {"x": [2**64]}, {"é": 1}, {1: "int key"}, {"s": {1, 2}},
     {"b": b"bytes"}, object()],
)
def test_values_outside_the_domain_are_refused(value: Any) -> None:
    """Floats, integers beyond ±(2^53 − 1), non-ASCII or non-string keys and others fail."""
    with pytest.raises(NotCanonicalisable):
        canonical_json(value)


def test_lone_surrogates_are_refused() -> None:
    """A string holding a lone surrogate cannot be canonicalised (it is not valid UTF-8)."""
    with pytest.raises(NotCanonicalisable):
        canonical_json({"s": "\ud800"})


def test_sha256_hex() -> None:
    """The content hash is the lowercase hex SHA-256 of the bytes."""
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex(b'{"a":1}') == hashlib.sha256(b'{"a":1}').hexdigest()
