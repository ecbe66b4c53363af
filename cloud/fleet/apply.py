"""``tillbox fleet apply``: install a provisioning bundle on the box (box side).

The bundle's certificate must hold the public half of the box's own MQTT key, name the
bundle's box id and be signed by the bundle's CA; then the CA and the certificate go to
``keys/`` and the ``[cloud]`` settings fragment to ``DATA_DIR/cloud.toml`` (with ``replaces``
for a box replacing another: its first start fetches that box's chains from the cloud).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from cloud.fleet.boxkey import FLEET_CA, MQTT_CERT, MQTT_KEY, keys_dir
from cloud.fleet.bundle import Bundle, Manifest, read_bundle
from cloud.fleet.errors import FleetError
from cloud.fleet.files import read_key, write_file

CLOUD_TOML = "cloud.toml"
_SPECIAL = re.compile(r'[\\"\x00-\x1f\x7f]')
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Applied:
    """What ``apply`` installed."""

    manifest: Manifest
    cloud_toml: Path
    cert_file: Path


def apply_bundle(data_dir: Path, bundle_path: Path, now: dt.datetime | None = None) -> Applied:
    """Check the bundle against the box's key, install its files, write ``cloud.toml``."""
    bundle = read_bundle(bundle_path)
    _check(bundle, data_dir.resolve() / "keys" / MQTT_KEY, now or dt.datetime.now(dt.UTC))
    keys = keys_dir(data_dir.resolve())
    write_file(keys / FLEET_CA, bundle.ca_pem)
    write_file(keys / MQTT_CERT, bundle.cert_pem)
    toml = data_dir.resolve() / CLOUD_TOML
    write_file(toml, cloud_toml(bundle.manifest, keys).encode())
    return Applied(bundle.manifest, toml, keys / MQTT_CERT)


def _check(bundle: Bundle, key_path: Path, now: dt.datetime) -> None:
    if not key_path.exists():
        raise FleetError(f"no MQTT key at {key_path}: run `tillbox fleet csr` on this box first")
    key = read_key(key_path)
    try:
        ca = x509.load_pem_x509_certificate(bundle.ca_pem)
        cert = x509.load_pem_x509_certificate(bundle.cert_pem)
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise FleetError(f"the bundle's certificate is not signed by its CA: {error}") from error
    if cert.public_key().public_bytes(*SPKI) != key.public_key().public_bytes(*SPKI):
        raise FleetError("the bundle's certificate is for another key than this box's "
                         "(was it made from this box's CSR?)")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [name.value for name in names] != [bundle.manifest.box_id]:
        raise FleetError("the bundle's certificate does not name the bundle's box id")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise FleetError(f"the bundle's certificate is not valid now "
                         f"({cert.not_valid_before_utc} to {cert.not_valid_after_utc})")


def cloud_toml(manifest: Manifest, keys: Path) -> str:
    """The ``[cloud]`` table the replicator reads (paths absolute)."""
    return "\n".join([
        "# Written by `tillbox fleet apply`; replaced by the next bundle applied.",
        f"# Fleet placement: tenant {quoted(manifest.tenant_id)}, "
        f"store {quoted(manifest.store_id)}, register {quoted(manifest.register_id)}.",
        f"# Certificate valid until {manifest.not_after}.",
        "[cloud]",
        "enabled = true",
        f"broker = {quoted(manifest.broker_url)}",
        f"box_id = {quoted(manifest.box_id)}",
        f"ca_file = {quoted(keys / FLEET_CA)}",
        f"cert_file = {quoted(keys / MQTT_CERT)}",
        f"key_file = {quoted(keys / MQTT_KEY)}",
        *([f"replaces = {quoted(manifest.replaces)}"] if manifest.replaces else []),
        "",
    ])


def quoted(value: str | Path) -> str:
    """A TOML basic string (backslash, quote and control characters escaped)."""
    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return "\\" + char if char in '\\"' else f"\\u{ord(char):04x}"

    return '"' + _SPECIAL.sub(escape, str(value)) + '"'
