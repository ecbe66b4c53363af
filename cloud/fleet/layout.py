"""Where a fleet keeps its files, and its settings (``fleet.json``).

::

    FLEET/                  mode 0700
      fleet.json            name, broker URL and host names, CRL lifetime
      ca-key.pem  ca.pem    the fleet CA (key 0600)
      crl.pem               revoked serials, signed by the CA
      registry.json         every identity ever enrolled (boxes and cloud services)
      broker/               the broker's server key (0600) and certificate
      services/NAME/        a cloud service's key (0600) and certificate
      bundles/BOX.tar.gz    provisioning bundles written by ``enroll``
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.fleet.errors import FleetError
from cloud.fleet.files import locked, write_file


@dataclass(frozen=True)
class FleetPaths:
    """The files of one fleet directory."""

    root: Path

    @property
    def config(self) -> Path:
        """The fleet's settings."""
        return self.root / "fleet.json"

    @property
    def ca_key(self) -> Path:
        """The CA private key (0600)."""
        return self.root / "ca-key.pem"

    @property
    def ca_cert(self) -> Path:
        """The CA certificate: the trust anchor of brokers, boxes and services."""
        return self.root / "ca.pem"

    @property
    def crl(self) -> Path:
        """The certificate revocation list."""
        return self.root / "crl.pem"

    @property
    def registry(self) -> Path:
        """The registry of enrolled identities."""
        return self.root / "registry.json"

    @property
    def server_key(self) -> Path:
        """The broker's TLS key (0600)."""
        return self.root / "broker" / "server-key.pem"

    @property
    def server_cert(self) -> Path:
        """The broker's TLS certificate."""
        return self.root / "broker" / "server-cert.pem"

    def service_dir(self, name: str) -> Path:
        """Where a cloud service's key and certificate go."""
        return self.root / "services" / name

    def bundle(self, box_id: str) -> Path:
        """The default place of a box's provisioning bundle."""
        return self.root / "bundles" / f"{box_id}.tar.gz"


class FleetConfig(BaseModel):
    """What ``init`` decided: the fleet's name, where boxes find the broker, CRL lifetime."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = 1
    name: str = Field(min_length=1, max_length=64)
    broker_url: str = Field(min_length=1, max_length=300)
    broker_hosts: tuple[str, ...] = Field(min_length=1)
    crl_days: int = Field(ge=1, le=3650)


def save_config(paths: FleetPaths, config: FleetConfig) -> None:
    """Write ``fleet.json``."""
    write_file(paths.config, (config.model_dump_json(indent=2) + "\n").encode())


def load_config(paths: FleetPaths) -> FleetConfig:
    """Read ``fleet.json``; a missing fleet says to run ``tillbox fleet init``."""
    try:
        text = paths.config.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FleetError(f"{paths.root} is not a fleet directory "
                         "(run `tillbox fleet init` first)") from None
    try:
        return FleetConfig.model_validate(json.loads(text))
    except (ValueError, ValidationError) as error:
        raise FleetError(f"{paths.config} is damaged: {error}") from error


@contextlib.contextmanager
def fleet_lock(paths: FleetPaths) -> Iterator[FleetConfig]:
    """Hold the lock of an existing fleet directory; yields its settings."""
    config = load_config(paths)
    with locked(paths.root):
        yield config
