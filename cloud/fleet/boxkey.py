"""The box's MQTT TLS identity: its key and certificate signing request (box side).

This key (``keys/mqtt-key.pem``) authenticates the box to the cloud broker; it is distinct
from the journal signing key (``keys/box-key.pem``), which never leaves the fiscal layer.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from cloud.fleet.files import new_key, read_key, write_file, write_key
from cloud.fleet.registry import check_name

MQTT_KEY = "mqtt-key.pem"
MQTT_CERT = "mqtt-cert.pem"
MQTT_CSR = "mqtt-csr.pem"
FLEET_CA = "fleet-ca.pem"


def keys_dir(data_dir: Path) -> Path:
    """The box's key directory (created with mode 0700 when missing)."""
    directory = data_dir / "keys"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def make_csr(data_dir: Path, box_id: str, *, fresh: bool = False) -> bytes:
    """A PEM CSR with CN = ``box_id`` for the box's MQTT key, made on first use (0600).

    An existing key is reused unless ``fresh``; the CSR is also kept as ``keys/mqtt-csr.pem``.
    """
    check_name(box_id)
    directory = keys_dir(data_dir)
    key_path = directory / MQTT_KEY
    if fresh or not key_path.exists():
        write_key(key_path, new_key())
    key = read_key(key_path)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, box_id)]))
           .sign(key, hashes.SHA256()))
    pem = csr.public_bytes(serialization.Encoding.PEM)
    write_file(directory / MQTT_CSR, pem)
    return pem
