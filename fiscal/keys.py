"""The box key: ECDSA P-256 with deterministic signatures, its certificate and its file.

The key is generated on the box on first use and stored PEM-encoded with mode 0600; a
self-signed X.509 certificate names the register. ``key_id`` is the first 16 hex characters of
the SHA-256 of the public key (SubjectPublicKeyInfo DER).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from fiscal.errors import KeyFileError

FILE_PREFIX = "box-"
"""The box signing key's files (key, certificate, the next key during a rotation) start so."""
KEY_FILE = "box-key.pem"
CERT_FILE = "box-cert.pem"
_DETERMINISTIC = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


class Signer(Protocol):
    """What the chain needs to sign: a key id and a deterministic signature."""

    @property
    def key_id(self) -> str:
        """Identify the public key that verifies these signatures."""
        ...

    def sign(self, data: bytes) -> str:
        """Return base64url (unpadded) of the raw 64-byte r‖s signature of ``data``."""
        ...


def b64url(data: bytes) -> str:
    """Encode base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; raises ``ValueError`` on malformed input."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """Return the key id of a public key."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def raw_to_der(raw: bytes) -> bytes:
    """Convert a raw 64-byte r‖s signature to DER (a SEQUENCE of two INTEGERs).

    Each integer is its big-endian bytes without leading zeros, with one zero byte in front
    when the first would read as negative (and for zero itself).
    """
    if len(raw) != 64:
        raise ValueError("raw P-256 signature must be 64 bytes")
    r, s = raw[:32].lstrip(b"\0"), raw[32:].lstrip(b"\0")
    if not r or r[0] & 0x80:
        r = b"\0" + r
    if not s or s[0] & 0x80:
        s = b"\0" + s
    return b"\x30%c\x02%c%b\x02%c%b" % (len(r) + len(s) + 4, len(r), r, len(s), s)


def verify_raw(public_key: ec.EllipticCurvePublicKey, sig: str, data: bytes) -> bool:
    """Return whether ``sig`` (base64url raw r‖s) is a valid signature of ``data``."""
    try:
        public_key.verify(raw_to_der(b64url_decode(sig)), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class BoxKey:
    """A private key with its certificate; signs deterministically."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    key_id: str = field(init=False)
    """The id of this key's public half (computed once)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", public_key_id(self.private_key.public_key()))

    def sign(self, data: bytes) -> str:
        """Sign ``data``: RFC 6979 ECDSA P-256 SHA-256, raw r‖s, base64url."""
        r, s = decode_dss_signature(self.private_key.sign(data, _DETERMINISTIC))
        return b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def certificate_pem(self) -> str:
        """The certificate as PEM text."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def public_key_pem(self) -> str:
        """The public key as PEM text."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
        ).decode("ascii")


def self_signed(private_key: ec.EllipticCurvePrivateKey, common_name: str,
                now: dt.datetime) -> x509.Certificate:
    """Make a ten-year self-signed certificate for the box key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tillbox register")])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3653))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )


def generate(common_name: str, now: dt.datetime) -> BoxKey:
    """Generate a new box key and its self-signed certificate."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    return BoxKey(private_key, self_signed(private_key, common_name, now))


def from_private_pem(pem: bytes, common_name: str, now: dt.datetime) -> BoxKey:
    """Load a key from PEM (tests and golden vectors use a fixed key this way)."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError("the box key must be an ECDSA P-256 private key")
    return BoxKey(key, self_signed(key, common_name, now))


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file with ``mode`` and flush it to disk."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(key: BoxKey, directory: Path, *, suffix: str = "") -> None:
    """Write the key (mode 0600) and its certificate; never overwrites an existing key.

    Both go to temporary files first; the certificate is renamed into place, then the key, so
    a key file that exists always has its certificate next to it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / f"box-key{suffix}.pem"
    if key_path.exists():
        raise KeyFileError(f"{key_path} exists already; a box key is never overwritten")
    pem = key.private_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    cert_path = directory / f"box-cert{suffix}.pem"
    _write_new(cert_path.with_suffix(".pem.tmp"), key.certificate_pem().encode("ascii"), 0o644)
    _write_new(key_path.with_suffix(".pem.tmp"), pem, 0o600)
    os.replace(cert_path.with_suffix(".pem.tmp"), cert_path)
    os.replace(key_path.with_suffix(".pem.tmp"), key_path)
    fsync_directory(directory)


def load(directory: Path, *, suffix: str = "") -> BoxKey:
    """Load the key and its certificate.

    Refuses a key file readable by others (``key_file``), and reports missing, malformed or
    mismatched material as ``key_incomplete``.
    """
    key_path = directory / f"box-key{suffix}.pem"
    try:
        mode = stat.S_IMODE(key_path.stat().st_mode)
    except OSError as error:
        raise KeyFileError(f"cannot read the box key: {error}", code="key_incomplete") from error
    if mode & 0o077:
        raise KeyFileError(f"{key_path} is readable by others (mode {mode:o}); chmod 600")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate((directory / f"box-cert{suffix}.pem").read_bytes())
    except (OSError, ValueError, TypeError) as error:
        raise KeyFileError(f"cannot read the box key or certificate: {error}",
                           code="key_incomplete") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError("the box key must be an ECDSA P-256 private key")
    if public_key_id(certificate_key(cert)) != public_key_id(key.public_key()):
        raise KeyFileError("the certificate does not hold the box key's public key",
                           code="key_incomplete")
    return BoxKey(key, cert)


def load_certificate_pem(pem: str) -> x509.Certificate:
    """Parse a PEM certificate (raises ``ValueError`` when malformed)."""
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def certificate_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    """Return the P-256 public key of a certificate."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("certificate does not hold an EC public key")
    return key
