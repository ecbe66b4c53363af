"""Offline verification of a period archive (``tillbox verify-archive PATH``).

Needs nothing but the zip (and, optionally, the certificates the auditor trusts). It checks, and
reports every problem as a ``Finding`` rather than stopping at the first:

* the zip is readable, holds no duplicate names and every member decompresses;
* ``manifest.json`` is readable, of a known format, and ``manifest.sig`` verifies with the
  certificate the manifest names (``key_id``), found in ``certificates/``; each certificate's
  file name is the id of its key; when trusted certificates are given, the manifest's key must
  be one of them;
* every file listed in the manifest is present with the listed SHA-256, the files every archive
  has are present, and nothing else is in the zip;
* every line of ``entries.jsonl`` is a JSON entry valid under the archive's own JSON Schema
  (``schema/entry.schema.json``, so an old archive stays readable by newer software); the
  entries are the manifest's contiguous range with its count and identity;
* ``closures.json`` and ``events.json`` are exactly the views of the entries, and ``heads.json``
  names an entry of the range for each chain;
* then the chains, with ``fiscal.verify.verify_entries`` in partial mode (the archive may start
  in the middle of each chain): signed data, signatures, chain sequences, totals, and the signed
  heads of ``heads.json``, with the archive's certificates.

Finding codes of the archive level: ``archive_unreadable``, ``file_unreadable``,
``duplicate_file``, ``file_missing``, ``file_unexpected``, ``file_hash_mismatch``,
``manifest_unreadable``, ``manifest_mismatch``, ``manifest_signature_invalid``,
``certificate_invalid``, ``certificate_mismatch``, ``untrusted_key``, ``entry_unreadable``,
``schema_violation``, ``schema_unreadable``, ``view_mismatch``, ``heads_unreadable``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jsonschema.validators import extend

from fiscal.archive import ENTRIES, FORMAT, MANIFEST, SCHEMA, SIGNATURE, view_item
from fiscal.keys import certificate_key, load_certificate_pem, public_key_id, verify_raw
from fiscal.verify import Finding, Report, verify_entries
from fiscal.verify.cli import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_NO_JOURNAL,
    finding_line,
    summary_line,
)

REQUIRED = frozenset({ENTRIES, MANIFEST, SIGNATURE, SCHEMA, "closures.json", "events.json",
                      "heads.json"})
UNSIGNED = frozenset({MANIFEST, SIGNATURE})
VIEWS = {"closures.json": ("closure", "period"), "events.json": ("event",)}
CERTIFICATES = "certificates/"
_REF = jsonschema.Draft202012Validator.VALIDATORS["$ref"]
_MEMO_LIMIT = 200_000


@dataclass
class Archive:
    """The readable members of an archive and what was learnt from them so far."""

    files: dict[str, bytes]
    findings: list[Finding] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    certificates: dict[str, x509.Certificate] = field(default_factory=dict)
    entries: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)

    def find(self, code: str, message: str, entry: Mapping[str, Any] | None = None) -> None:
        """Record a finding, located at ``entry`` when given."""
        where = entry or {}
        self.findings.append(Finding(code=code, message=message, seq=_int(where.get("seq")),
                                     chain=_str(where.get("chain")),
                                     chain_seq=_int(where.get("chain_seq"))))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# -- entry points ---------------------------------------------------------------------------


def verify_archive(path: Path, *, trusted_certificates: Sequence[str] = ()) -> Report:
    """Verify an archive offline; the report lists every finding (``.ok`` when there is none).

    ``trusted_certificates`` (PEM) are the keys the auditor trusts; when given, the manifest
    must be signed by one of them.
    """
    try:
        archive = _read(path)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as error:
        return _report([Finding(code="archive_unreadable", message=f"{path}: {error}",
                                seq=None, chain=None, chain_seq=None)], None)
    _check_manifest(archive, trusted_certificates)
    _check_files(archive)
    _check_entries(archive)
    _check_views(archive)
    chains = verify_entries((body for body, _ in archive.entries), heads=_heads(archive),
                            trusted_certificates=_start_certificates(archive), partial=True)
    return _report(archive.findings, chains)


def run_verify_archive(path: Path, json_output: bool) -> int:
    """Verify an archive and print the outcome; exit status 0 clean, 1 findings, 2 no file."""
    if not path.is_file():
        print(f"no archive at {path}", file=sys.stderr)
        return EXIT_NO_JOURNAL
    report = verify_archive(path)
    print(render(report, json_output))
    return EXIT_CLEAN if report.ok else EXIT_FINDINGS


# -- reading ------------------------------------------------------------------------------------


def _read(path: Path) -> Archive:
    """Read every member; a member that cannot be decompressed is a finding."""
    files: dict[str, bytes] = {}
    archive = Archive(files)
    with zipfile.ZipFile(path) as opened:
        for info in opened.infolist():
            if info.filename in files:
                archive.find("duplicate_file", f"{info.filename} is in the zip twice")
                continue
            try:
                files[info.filename] = opened.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
                archive.find("file_unreadable", f"{info.filename}: {error}")
    return archive


def _load_json(archive: Archive, name: str, code: str) -> Any:
    """Parse a JSON member, or record ``code`` and return ``None``."""
    if name not in archive.files:
        return None
    try:
        return orjson.loads(archive.files[name])
    except orjson.JSONDecodeError as error:
        archive.find(code, f"{name} is not JSON: {error}")
        return None


# -- manifest, certificates, files ------------------------------------------------------------


def _check_manifest(archive: Archive, trusted: Sequence[str]) -> None:
    manifest = _load_json(archive, MANIFEST, "manifest_unreadable")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        if manifest is not None:
            archive.find("manifest_unreadable", "manifest.json is not a manifest object")
        return
    archive.manifest = manifest
    if manifest.get("format") != FORMAT:
        archive.find("manifest_unreadable", f"unknown archive format {manifest.get('format')!r}")
    _load_certificates(archive)
    _check_signature(archive, str(manifest.get("key_id")), trusted)


def _load_certificates(archive: Archive) -> None:
    for name in sorted(n for n in archive.files if n.startswith(CERTIFICATES)):
        stated = name.removeprefix(CERTIFICATES).removesuffix(".pem")
        try:
            cert = load_certificate_pem(archive.files[name].decode("ascii"))
            key_id = public_key_id(certificate_key(cert))
        except (ValueError, UnicodeDecodeError) as error:
            archive.find("certificate_invalid", f"{name} is not an EC certificate: {error}")
            continue
        if key_id != stated:
            archive.find("certificate_mismatch", f"{name} holds the certificate of key {key_id}")
            continue
        archive.certificates[key_id] = cert


def _check_signature(archive: Archive, key_id: str, trusted: Sequence[str]) -> None:
    cert = archive.certificates.get(key_id)
    signature = archive.files.get(SIGNATURE, b"").decode("ascii", "replace").strip()
    if cert is None:
        archive.find("manifest_signature_invalid",
                     f"no valid certificate for the manifest's key {key_id}")
    elif not verify_raw(certificate_key(cert), signature, archive.files[MANIFEST]):
        archive.find("manifest_signature_invalid",
                     f"manifest.sig is not key {key_id}'s signature of manifest.json")
    trusted_ids = {public_key_id(certificate_key(load_certificate_pem(pem))) for pem in trusted}
    if trusted and key_id not in trusted_ids:
        archive.find("untrusted_key", f"the manifest is signed by key {key_id}, not a trusted key")


def _check_files(archive: Archive) -> None:
    listed: dict[str, Any] = archive.manifest.get("files", {})
    present = set(archive.files)
    for name in sorted((set(listed) | REQUIRED) - present):
        archive.find("file_missing", f"{name} is missing from the archive")
    for name in sorted(present - set(listed) - UNSIGNED):
        archive.find("file_unexpected", f"{name} is not listed in the manifest")
    for name in sorted(present & set(listed)):
        actual = hashlib.sha256(archive.files[name]).hexdigest()
        if actual != listed[name]:
            archive.find("file_hash_mismatch", f"{name} has SHA-256 {actual}, the manifest "
                                               f"says {listed[name]}")
    if archive.manifest and not any(n.startswith(CERTIFICATES) for n in listed):
        archive.find("file_missing", "the manifest lists no certificate")


# -- entries ----------------------------------------------------------------------------------


def _check_entries(archive: Archive) -> None:
    validate = _validator(archive)
    for number, line in enumerate(archive.files.get(ENTRIES, b"").splitlines(), start=1):
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            archive.find("entry_unreadable", f"{ENTRIES} line {number} is not JSON: {error}")
            continue
        if not isinstance(entry, dict):
            archive.find("entry_unreadable", f"{ENTRIES} line {number} is not an object")
            continue
        for message in validate(entry):
            archive.find("schema_violation", f"line {number}: {message}", entry)
        archive.entries.append((line, entry))
    _check_range(archive)


def _check_range(archive: Archive) -> None:
    manifest = archive.manifest
    if not manifest:
        return
    seqs = [entry.get("seq") for _, entry in archive.entries]
    stated = {"entry_count": len(seqs), "first_seq": seqs[0] if seqs else None,
              "last_seq": seqs[-1] if seqs else None}
    for name, actual in stated.items():
        if manifest.get(name) != actual:
            archive.find("manifest_mismatch", f"the manifest's {name} is {manifest.get(name)!r}"
                                              f", the entries give {actual!r}")
    for _, entry in archive.entries:
        for name in ("store_id", "register_id"):
            if entry.get(name) != manifest.get(name):
                archive.find("manifest_mismatch", f"{name} {entry.get(name)!r} differs from the "
                                                  f"manifest's {manifest.get(name)!r}", entry)


def _validator(archive: Archive) -> Any:
    """Return ``entry -> messages`` for the archive's schema (the bundled one if unreadable)."""
    schema = _load_json(archive, SCHEMA, "schema_unreadable")
    try:
        return EntryValidator(schema if isinstance(schema, dict) else _bundled_schema())
    except jsonschema.SchemaError as error:
        archive.find("schema_unreadable", f"{SCHEMA} is not a valid JSON Schema: {error.message}")
        return EntryValidator(_bundled_schema())


def _bundled_schema() -> dict[str, Any]:
    data = resources.files("fiscal").joinpath("schemas/entry.schema.json").read_bytes()
    schema: dict[str, Any] = json.loads(data)
    return schema


class EntryValidator:
    """Validates entries against an entry schema, dispatching the record on its ``type``.

    The schema's ``record`` property is a ``oneOf`` of the record kinds with a
    ``discriminator`` on ``type``; validating the envelope, then the record against the one
    kind its type names, is equivalent, faster and gives clearer messages (a schema without a
    discriminator is used as it is). Sub-objects met again (the same line, VAT total or
    payment in many tickets) are validated once: a ``$ref`` to a definition that an equal value
    (same canonical JSON) already satisfied is not evaluated again.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        jsonschema.Draft202012Validator.check_schema(schema)
        self._valid: set[tuple[str, bytes]] = set()
        self._cls = extend(jsonschema.Draft202012Validator, {"$ref": self._ref})
        self._whole = self._cls(schema)
        self._kinds: dict[str, Any] = {}
        mapping = schema.get("properties", {}).get("record", {}).get("discriminator", {})
        if isinstance(mapping.get("mapping"), dict):
            envelope = copy.deepcopy(schema)
            envelope["properties"]["record"] = {"type": "object"}
            self._whole = self._cls(envelope)
            defs = schema.get("$defs", {})
            self._kinds = {kind: self._cls(_root(ref, defs))
                           for kind, ref in mapping["mapping"].items()}

    def _ref(self, validator: Any, ref: str, instance: Any,
             schema: Any) -> Iterator[jsonschema.ValidationError]:
        if not isinstance(instance, dict | list):
            yield from _REF(validator, ref, instance, schema)
            return
        key = (ref, orjson.dumps(instance, option=orjson.OPT_SORT_KEYS))
        if key in self._valid:
            return
        errors = list(_REF(validator, ref, instance, schema))
        if not errors and len(self._valid) < _MEMO_LIMIT:
            self._valid.add(key)
        yield from errors

    def __call__(self, entry: Mapping[str, Any]) -> Iterator[str]:
        """Yield a message per schema violation of ``entry``."""
        for error in self._whole.iter_errors(entry):
            yield _message(error)
        if not self._kinds or not isinstance(entry.get("record"), dict):
            return
        kind = entry["record"].get("type")
        if kind not in self._kinds:
            yield f"record: type {kind!r} is not in the schema"
            return
        for error in self._kinds[kind].iter_errors(entry["record"]):
            yield _message(error, "record")


def _root(ref: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Return a schema validating like ``ref``, with the definition itself at the root."""
    name = ref.removeprefix("#/$defs/")
    if name != ref and isinstance(defs.get(name), dict):
        return {**defs[name], "$defs": defs}
    return {"$ref": ref, "$defs": defs}


def _message(error: jsonschema.ValidationError, prefix: str = "") -> str:
    where = "/".join(str(p) for p in (prefix, *error.absolute_path) if p != "")
    return f"{where or '(entry)'}: {error.message}"


# -- views and heads --------------------------------------------------------------------------


def _check_views(archive: Archive) -> None:
    for name, chains in VIEWS.items():
        stored = _load_json(archive, name, "view_mismatch")
        if name not in archive.files or stored is None:
            continue
        try:
            expected = [view_item(e) for _, e in archive.entries if e.get("chain") in chains]
        except KeyError as error:
            archive.find("view_mismatch", f"{name}: an entry lacks {error}")
            continue
        if stored != expected:
            archive.find("view_mismatch", f"{name} differs from the entries it is a view of")


def _heads(archive: Archive) -> dict[str, tuple[int, int, str, str]] | None:
    """Return the heads of ``heads.json`` as the chain verifier takes them."""
    stored = _load_json(archive, "heads.json", "heads_unreadable")
    if stored is None:
        return None
    try:
        return {str(chain): (int(h["chain_seq"]), int(h["seq"]), str(h["sig"]),
                             str(h["head_sig"])) for chain, h in stored.items()}
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        archive.find("heads_unreadable", f"heads.json is malformed: {error!r}")
        return None


# -- report -------------------------------------------------------------------------------------


def _start_certificates(archive: Archive) -> list[str]:
    """Return the certificate of the key trusted at the start of the range.

    That is the key of the first entry; later keys must be linked to it by rotation events of
    the range. Without it, every certificate is passed (and the chain verifier reports).
    """
    first = archive.entries[0][1].get("key_id") if archive.entries else None
    chosen = [cert for key_id, cert in archive.certificates.items() if key_id == first]
    return [c.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for c in chosen or archive.certificates.values()]


def _report(findings: list[Finding], chains: Report | None) -> Report:
    if chains is None:
        return Report.build(findings, 0, {})
    return chains.with_findings(findings)


def render(report: Report, json_output: bool) -> str:
    """Return the output of ``tillbox verify-archive``, in the style of ``tillbox verify``.

    A line per finding (seq, chain, chain_seq, code, message) and a summary line, or the
    report as one JSON object.
    """
    if json_output:
        return orjson.dumps(report.to_json()).decode()
    return "\n".join([*(finding_line(f) for f in report.findings), summary_line(report)])
