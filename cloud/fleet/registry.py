"""The registry of a fleet: every identity (box or cloud service) and its certificates.

One JSON file, rewritten atomically under the fleet lock. An identity's name is its
certificate's CN and its MQTT user name, so names are unique across boxes and services and
restricted to characters that are safe in a topic level (no ``/``, ``+``, ``#``, ``%``, ``$``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.fleet.errors import FleetError
from cloud.fleet.files import write_file
from cloud.fleet.layout import FleetPaths

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
Kind = Literal["box", "service"]
State = Literal["active", "revoked"]


def check_name(name: str, what: str = "box id") -> str:
    """Return ``name`` if it is a valid identity name, else raise ``FleetError``."""
    if not NAME_PATTERN.fullmatch(name):
        raise FleetError(f"invalid {what} {name!r}: 1 to 64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def check_label(value: str, what: str) -> str:
    """Return a tenant/store/register id if printable and 1–64 characters long."""
    if not 1 <= len(value) <= 64 or not value.isprintable():
        raise FleetError(f"invalid {what} {value!r}: 1 to 64 printable characters")
    return value


class Certificate(BaseModel):
    """One certificate issued to an identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None = None


class Identity(BaseModel):
    """A box (tenant, store, register) or a cloud service (role), with its certificates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Kind
    state: State = "active"
    tenant_id: str | None = None
    store_id: str | None = None
    register_id: str | None = None
    role: str | None = None
    certificates: tuple[Certificate, ...] = ()

    @property
    def serial(self) -> str | None:
        """Serial (hex) of the newest certificate."""
        return self.certificates[-1].serial if self.certificates else None


class Registry(BaseModel):
    """The whole registry, plus the number of the last CRL signed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = 1
    crl_number: int = 0
    identities: tuple[Identity, ...] = ()

    def find(self, name: str) -> Identity | None:
        """The identity called ``name``, if any."""
        return next((item for item in self.identities if item.name == name), None)

    def put(self, identity: Identity) -> Registry:
        """A registry with ``identity`` added or replacing the one of the same name."""
        others = tuple(item for item in self.identities if item.name != identity.name)
        return self.model_copy(update={"identities": (*others, identity)})


def load_registry(paths: FleetPaths) -> Registry:
    """Read the registry of an initialised fleet."""
    try:
        text = paths.registry.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FleetError(f"{paths.root} is not a fleet directory "
                         "(run `tillbox fleet init` first)") from None
    try:
        return Registry.model_validate(json.loads(text))
    except (ValueError, ValidationError) as error:
        raise FleetError(f"{paths.registry} is damaged: {error}") from error


def save_registry(paths: FleetPaths, registry: Registry) -> None:
    """Write the registry atomically."""
    write_file(paths.registry, (registry.model_dump_json(indent=2) + "\n").encode())
