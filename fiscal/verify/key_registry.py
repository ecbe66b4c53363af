"""Which key may sign which entry: the key pool, the key timeline and how the journal builds them.

The *pool* maps key ids to public keys (SubjectPublicKeyInfo DER) from every certificate met —
the initialisation event (260), rotation events (1080) and the trusted certificates. Being in the
pool only makes a signature checkable; the *timeline* says which keys the journal trusts from
which global sequence on: the genesis key from the first entry, each rotation's new key from the
entry after the rotation when its link signature (by the key it replaces) verifies.

The timeline is built by the main process while it reads entries, before it hands them to the
workers; workers only look it up.
"""

from __future__ import annotations

import binascii
import bisect
import hashlib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fiscal.keys import certificate_key, load_certificate_pem, raw_to_der
from fiscal.verify import findings as f
from fiscal.verify.findings import Finding, Where

GENESIS = 260
ROTATION = 1080
MARKER = "certificate_pem"
MARKER_BYTES = MARKER.encode()
"""Every key event carries a certificate; other entries are skipped without parsing."""

_ECDSA = ec.ECDSA(hashes.SHA256())
_TO_STANDARD = bytes.maketrans(b"-_+/", b"+/!!")
"""base64url to the standard alphabet; ``+`` and ``/``, not base64url, become invalid."""
_LAST_CHARS = "AQgw"
"""The base64 digits whose four low bits are zero."""
_LOADED: dict[bytes, ec.EllipticCurvePublicKey] = {}


def key_id_of(der: bytes) -> str:
    """Return the key id of a public key: 16 hex characters of the SHA-256 of its DER."""
    return hashlib.sha256(der).hexdigest()[:16]


def certificate_der(pem: Any) -> bytes:
    """Return the public key DER of a PEM certificate (``ValueError`` if it is not one)."""
    if not isinstance(pem, str):
        raise ValueError("certificate PEM text expected")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a certificate the parser only warns about is refused
            key = certificate_key(load_certificate_pem(pem))
    except Exception as error:  # the parser's errors vary (InvalidVersion, UnsupportedAlgorithm…)
        raise ValueError(f"unreadable certificate: {error!r}") from error
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("certificate key is not P-256")
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key(der: bytes) -> ec.EllipticCurvePublicKey:
    """Load a public key from DER once per process."""
    key = _LOADED.get(der)
    if key is None:
        loaded = serialization.load_der_public_key(der)
        if not isinstance(loaded, ec.EllipticCurvePublicKey):
            raise ValueError("not an EC public key")
        key = _LOADED[der] = loaded
    return key


def signature_bytes(sig: Any) -> bytes | None:
    """Decode a signature: exactly the unpadded base64url of 64 bytes, or ``None``.

    Strict on purpose: a lenient decoder accepts other spellings of the same bytes (``+`` for
    ``-``, stray characters, non-zero padding bits), which would let a stored signature change
    without failing verification. 86 characters of the base64url alphabet, the last one
    leaving its four low bits (beyond the 512 of the signature) zero, are exactly those
    spellings that re-encode to themselves.
    """
    if type(sig) is not str or len(sig) != 86 or sig[85] not in _LAST_CHARS or not sig.isascii():
        return None
    try:
        return binascii.a2b_base64(sig.encode("ascii").translate(_TO_STANDARD) + b"==",
                                   strict_mode=True)
    except binascii.Error:
        return None


def verify_signature(der: bytes, sig: Any, data: bytes) -> bool:
    """Return whether ``sig`` (base64url raw r‖s) signs ``data`` under the key ``der``."""
    raw = signature_bytes(sig)
    if raw is None:
        return False
    try:
        public_key(der).verify(raw_to_der(raw), data, _ECDSA)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class KeyTimeline:
    """The key ids the journal trusts, each set from a global sequence number on."""

    starts: tuple[int, ...] = (0,)
    keys: tuple[frozenset[str], ...] = (frozenset(),)

    def expected(self, seq: int) -> frozenset[str]:
        """The key ids that may sign entry ``seq``."""
        return self.keys[max(bisect.bisect_right(self.starts, seq) - 1, 0)]

    @property
    def current(self) -> frozenset[str]:
        """The key ids trusted after the last entry read so far."""
        return self.keys[-1]

    def status(self, seq: int, key_id: str) -> str | None:
        """Return ``None`` if ``key_id`` may sign ``seq``, else the finding code."""
        if key_id in self.expected(seq):
            return None
        if any(key_id in keys for keys in self.keys):
            return f.RETIRED_KEY
        return f.UNKNOWN_KEY

    def starting(self, seq: int, keys: frozenset[str]) -> KeyTimeline:
        """Return the timeline with ``keys`` trusted from ``seq`` on."""
        at = bisect.bisect_right(self.starts, seq)
        return KeyTimeline((*self.starts[:at], seq), (*self.keys[:at], keys))


def _where(envelope: Mapping[str, Any]) -> Where:
    seq, chain, chain_seq = envelope.get("seq"), envelope.get("chain"), envelope.get("chain_seq")
    return (seq if isinstance(seq, int) else None, chain if isinstance(chain, str) else None,
            chain_seq if isinstance(chain_seq, int) else None)


class KeyRegistry:
    """Builds the pool and the timeline from key events met in journal order (main process)."""

    def __init__(self, trusted_pems: Iterable[str], *, partial: bool) -> None:
        self.partial = partial
        self.findings: list[Finding] = []
        self.pool: dict[str, bytes] = {}
        for pem in trusted_pems:
            der = certificate_der(pem)
            self.pool[key_id_of(der)] = der
        self.trusted = frozenset(self.pool)
        self.timeline = KeyTimeline(keys=(self.trusted,))

    def observe(self, raw: bytes | str, *, first: bool) -> None:
        """Read one entry's raw body in journal order; act on it if it is a key event."""
        if not first and not _has_marker(raw):
            return
        envelope = _parse(raw)
        if first and not self.partial and _code(envelope) != GENESIS:
            self._report(f.NO_GENESIS, "the journal does not start with an initialisation "
                         "event (260)", envelope or {})
        if envelope is None or not isinstance(envelope["record"].get("details"), dict):
            return
        if _code(envelope) == GENESIS:
            self._genesis(envelope, first=first)
        elif _code(envelope) == ROTATION:
            self._rotation(envelope)

    def _report(self, code: str, message: str, envelope: Mapping[str, Any]) -> None:
        self.findings.append(f.found(code, message, _where(envelope)))

    def _genesis(self, envelope: Mapping[str, Any], *, first: bool) -> None:
        if not first or (self.partial and envelope["seq"] != 1):
            self._report(f.MISPLACED_GENESIS, "initialisation event inside the journal",
                         envelope)
            return
        details = envelope["record"].get("details")
        der = self._certificate(details, envelope)
        if der is None:
            return
        key_id = key_id_of(der)
        if details.get("key_id") != key_id or envelope.get("key_id") != key_id:
            self._report(f.GENESIS_MISMATCH, "the initialisation certificate does not hold "
                         "the key named by the event and its signer", envelope)
        if self.trusted and key_id not in self.trusted:
            self._report(f.UNTRUSTED_KEY, f"genesis key {key_id} is not a trusted certificate",
                         envelope)
        self.pool[key_id] = der
        self.timeline = self.timeline.starting(int(envelope["seq"]), frozenset({key_id}))

    def _rotation(self, envelope: Mapping[str, Any]) -> None:
        details = envelope["record"].get("details")
        der = self._certificate(details, envelope)
        if der is None:
            return
        new_id = key_id_of(der)
        self.pool[new_id] = der
        old_id = details.get("old_key_id")
        old_id = old_id if isinstance(old_id, str) else ""
        problems = _rotation_problems(details, envelope, new_id, self.timeline.current)
        old = self.pool.get(old_id)
        link_ok = old is not None and verify_signature(
            old, details.get("link_sig"), b"KEYLINK," + der)
        if not link_ok:
            problems.append("the link signature does not verify with the old key")
        if problems:
            self._report(f.BAD_ROTATION, "; ".join(problems), envelope)
        if link_ok and old_id in self.timeline.current:
            self.timeline = self.timeline.starting(int(envelope["seq"]) + 1,
                                                   frozenset({new_id}))

    def _certificate(self, details: Any, envelope: Mapping[str, Any]) -> bytes | None:
        try:
            return certificate_der(details["certificate_pem"])
        except (ValueError, KeyError, TypeError) as error:
            code = f.GENESIS_MISMATCH if _code(envelope) == GENESIS else f.BAD_ROTATION
            self._report(code, f"unreadable certificate in key event: {error}", envelope)
            return None


def _rotation_problems(details: Mapping[str, Any], envelope: Mapping[str, Any], new_id: str,
                       current: frozenset[str]) -> list[str]:
    problems = []
    old_id = details.get("old_key_id")
    if details.get("new_key_id") != new_id:
        problems.append("new_key_id does not match the certificate")
    if not isinstance(old_id, str) or old_id not in current:
        problems.append("the replaced key is not the journal's current key")
    if envelope.get("key_id") != old_id:
        problems.append("the rotation is not signed by the replaced key")
    return problems


def _has_marker(raw: bytes | str) -> bool:
    return MARKER in raw if isinstance(raw, str) else MARKER_BYTES in raw


def _code(envelope: Mapping[str, Any] | None) -> Any:
    if envelope is None or envelope["record"].get("type") != "event":
        return None
    return envelope["record"].get("code")


def _parse(raw: bytes | str) -> dict[str, Any] | None:
    """Parse a body; return it if it has an integer seq and a record object, else ``None``."""
    try:
        envelope = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):  # TypeError: no body at all
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("seq"), int):
        return None
    return envelope if isinstance(envelope.get("record"), dict) else None
