"""The box key: deterministic raw signatures, key id, and a private key file only we can read."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fiscal import keys
from fiscal.errors import KeyFileError
from fiscal.journal import Journal

NOW = dt.datetime(2026, 3, 31, 6, 0, tzinfo=dt.UTC)
GOLDEN_KEY = Path(__file__).parent / "golden" / "test-key.pem"
B64URL = re.compile(r"^[A-Za-z0-9_-]{86}$")


@pytest.fixture(scope="module")
def box_key() -> keys.BoxKey:
    return keys.from_private_pem(GOLDEN_KEY.read_bytes(), "test R1", NOW)


def test_signature_is_deterministic(box_key: keys.BoxKey) -> None:
    """Signing the same bytes twice gives the same signature; other bytes give another one."""
    first = box_key.sign(b"2000:100,100,20260331080000,R1,1,SALE,Y,,00")
    assert box_key.sign(b"2000:100,100,20260331080000,R1,1,SALE,Y,,00") == first
    assert box_key.sign(b"2000:100,100,20260331080000,R1,1,SALE,Y,,01") != first


def test_signature_is_raw_r_s_base64url_without_padding(box_key: keys.BoxKey) -> None:
    """A signature is 86 base64url characters, no padding, decoding to 64 bytes r‖s."""
    sig = box_key.sign(b"data")
    assert B64URL.match(sig)
    raw = base64.urlsafe_b64decode(sig + "==")
    assert len(raw) == 64
    assert keys.b64url_decode(sig) == raw
    assert keys.b64url(raw) == sig


def test_signature_verifies_and_tampering_does_not(box_key: keys.BoxKey) -> None:
    """verify_raw accepts the signature and refuses other data, other keys and garbage."""
    public = box_key.private_key.public_key()
    sig = box_key.sign(b"data")
    assert keys.verify_raw(public, sig, b"data")
    assert not keys.verify_raw(public, sig, b"datA")
    flipped = ("A" if sig[10] != "A" else "B").join((sig[:10], sig[11:]))
    assert not keys.verify_raw(public, flipped, b"data")
    assert not keys.verify_raw(public, sig[:-4], b"data")
    assert not keys.verify_raw(public, "***", b"data")
    other = keys.generate("other", NOW).private_key.public_key()
    assert not keys.verify_raw(other, sig, b"data")


@pytest.mark.parametrize("raw", [bytes(64), b"\x80" * 64, b"\x7f" * 64, b"\xff" * 64,
                                 bytes(31) + b"\x01" + bytes(31) + b"\x80",
                                 b"\x00\x80" + bytes(62), *(os.urandom(64) for _ in range(50))])
def test_raw_signature_to_der_is_the_standard_encoding(raw: bytes) -> None:
    """raw_to_der writes r and s as the DER INTEGERs cryptography's own encoder writes."""
    expected = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                    int.from_bytes(raw[32:], "big"))
    assert keys.raw_to_der(raw) == expected


def test_key_id_is_stable_and_derived_from_the_public_key(box_key: keys.BoxKey) -> None:
    """The key id is the first 16 hex digits of the SHA-256 of the public key DER, every time."""
    der = box_key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert box_key.key_id == hashlib.sha256(der).hexdigest()[:16] == "e3b7cff2f1b80efa"
    again = keys.from_private_pem(GOLDEN_KEY.read_bytes(), "another name", NOW)
    assert again.key_id == box_key.key_id
    assert keys.public_key_id(keys.certificate_key(box_key.certificate)) == box_key.key_id


def test_saved_key_file_is_mode_0600_and_loads_back(tmp_path: Path) -> None:
    """save writes the private key with mode 0600; load returns the same key and certificate."""
    key = keys.generate("R1", NOW)
    old_umask = os.umask(0)
    try:
        keys.save(key, tmp_path / "keys")
    finally:
        os.umask(old_umask)
    key_file = tmp_path / "keys" / keys.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    loaded = keys.load(tmp_path / "keys")
    assert loaded.key_id == key.key_id
    assert loaded.certificate_pem() == key.certificate_pem()
    assert loaded.sign(b"x") == key.sign(b"x")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606, 0o610, 0o601])
def test_load_refuses_a_key_readable_by_others(tmp_path: Path, mode: int) -> None:
    """A key file with any group or world permission bit is refused with KeyFileError."""
    keys.save(keys.generate("R1", NOW), tmp_path)
    (tmp_path / keys.KEY_FILE).chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        keys.load(tmp_path)
    assert caught.value.code == "key_file"


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_load_accepts_a_key_only_its_owner_can_use(tmp_path: Path, mode: int) -> None:
    """A key file with owner-only permissions loads."""
    key = keys.generate("R1", NOW)
    keys.save(key, tmp_path)
    (tmp_path / keys.KEY_FILE).chmod(mode)
    assert keys.load(tmp_path).key_id == key.key_id


def test_save_never_overwrites_an_existing_key(tmp_path: Path) -> None:
    """Saving over an existing key fails and leaves the first key in place."""
    first = keys.generate("R1", NOW)
    keys.save(first, tmp_path)
    before = (tmp_path / keys.KEY_FILE).read_bytes()
    with pytest.raises((OSError, KeyFileError)):
        keys.save(keys.generate("R1", NOW), tmp_path)
    assert (tmp_path / keys.KEY_FILE).read_bytes() == before
    assert keys.load(tmp_path).key_id == first.key_id


def test_missing_key_file_is_a_key_file_error(tmp_path: Path) -> None:
    """Loading from a directory without a key raises KeyFileError, not a bare OSError."""
    with pytest.raises(KeyFileError):
        keys.load(tmp_path)


def test_only_p256_keys_are_accepted() -> None:
    """A private key on another curve is refused."""
    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(KeyFileError):
        keys.from_private_pem(other, "R1", NOW)


def test_certificate_names_the_register_and_holds_the_key(box_key: keys.BoxKey) -> None:
    """The self-signed certificate carries the common name and the box's public key."""
    cert = keys.load_certificate_pem(box_key.certificate_pem())
    assert "CN=test R1" in cert.subject.rfc4514_string()
    assert keys.public_key_id(keys.certificate_key(cert)) == box_key.key_id
    assert "BEGIN PUBLIC KEY" in box_key.public_key_pem()


async def test_first_start_keeps_other_key_material(tmp_path: Path) -> None:
    """The MQTT identity provisioned before the first start (fleet csr/apply) survives it."""
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "mqtt-key.pem").write_text("mqtt key")
    (keys_dir / "fleet-ca.pem").write_text("fleet ca")
    journal = await Journal.open(tmp_path)
    await journal.close()
    assert (keys_dir / "mqtt-key.pem").read_text() == "mqtt key"
    assert (keys_dir / "fleet-ca.pem").read_text() == "fleet ca"
    assert (keys_dir / "box-key.pem").exists()
