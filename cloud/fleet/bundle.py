"""The provisioning bundle: a ``.tar.gz`` the fleet writes and a box applies.

Members (nothing else is read, nothing is ever extracted to a path from the archive):

- ``bundle.json``: ``{format, box_id, tenant_id, store_id, register_id, broker_url,
  not_after}``, and ``replaces`` (the box id this box replaces) for a replacement box;
- ``ca.pem``: the fleet CA certificate (the box trusts the broker through it);
- ``cert.pem``: the box's client certificate (CN = box id).

The box's private key is never in a bundle: it stays where ``tillbox fleet csr`` made it.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.fleet.errors import FleetError
from cloud.fleet.files import write_file

MANIFEST, CA, CERT = "bundle.json", "ca.pem", "cert.pem"
MAX_MEMBER = 64 * 1024


class Manifest(BaseModel):
    """What the bundle says about the box and where its broker is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = 1
    box_id: str = Field(min_length=1, max_length=64)
    tenant_id: str = Field(min_length=1, max_length=64)
    store_id: str = Field(min_length=1, max_length=64)
    register_id: str = Field(min_length=1, max_length=64)
    broker_url: str = Field(min_length=1, max_length=300)
    not_after: str = Field(max_length=40)
    replaces: str | None = Field(default=None, min_length=1, max_length=64)
    """The box this one replaces (its journal continues that box's chains), if any."""


class Bundle(BaseModel):
    """A whole bundle: manifest and PEM texts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest: Manifest
    ca_pem: bytes
    cert_pem: bytes


def write_bundle(path: Path, bundle: Bundle) -> None:
    """Write the bundle as a gzip-compressed tar file (mode 0644: it holds no secret)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        members = {MANIFEST: bundle.manifest.model_dump_json(
            indent=2, exclude_none=True).encode() + b"\n",
                   CA: bundle.ca_pem, CERT: bundle.cert_pem}
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    write_file(path, buffer.getvalue())


def read_bundle(path: Path) -> Bundle:
    """Read and check a bundle's members; ``FleetError`` says what is wrong."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            members = _members(archive)
    except (OSError, tarfile.TarError, EOFError) as error:
        raise FleetError(f"{path} is not a provisioning bundle: {error}") from error
    missing = {MANIFEST, CA, CERT} - members.keys()
    if missing:
        raise FleetError(f"{path} lacks {', '.join(sorted(missing))}")
    try:
        manifest = Manifest.model_validate(json.loads(members[MANIFEST]))
    except (ValueError, ValidationError) as error:
        raise FleetError(f"{path}: bad {MANIFEST}: {error}") from error
    return Bundle(manifest=manifest, ca_pem=members[CA], cert_pem=members[CERT])


def _members(archive: tarfile.TarFile) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for info in archive:
        if info.name not in {MANIFEST, CA, CERT} or not info.isfile():
            raise FleetError(f"unexpected member {info.name!r} in the bundle")
        if info.size > MAX_MEMBER or info.name in found:
            raise FleetError(f"bundle member {info.name!r} is too large or repeated")
        handle = archive.extractfile(info)
        if handle is None:
            raise FleetError(f"cannot read bundle member {info.name!r}")
        found[info.name] = handle.read(MAX_MEMBER + 1)
    return found
