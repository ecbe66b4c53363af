"""Who may publish and subscribe where: the topic rules of boxes and cloud services.

Boxes are confined to their own subtree ``tillbox/v1/{box}/…`` through Mosquitto ``pattern``
lines on ``%u`` (the user name, which the broker takes from the client certificate's CN).
Cloud services have a role, each role a fixed set of topics across all boxes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cloud.fleet.errors import FleetError
from cloud.fleet.registry import Identity

PREFIX = "tillbox/v1"
BOX_PUBLISHES = ("journal/up", "status", "config/reported", "cmd-res/#", "handover/req")
BOX_SUBSCRIBES = ("journal/ack", "journal/nack", "config/desired", "cmd/#", "handover/res")


@dataclass(frozen=True)
class Role:
    """A cloud service's rights over every box's subtree."""

    description: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]


ROLES: dict[str, Role] = {
    "ingest": Role("journal ingest: receives journal/up (shared subscription), sends acks; "
                   "answers replacement boxes' handover requests",
                   reads=("journal/up", "handover/req"),
                   writes=("journal/ack", "journal/nack", "handover/res")),
    "hq": Role("HQ: reads status, reported config and command results; sends config, commands",
               reads=("status", "config/reported", "cmd-res/#"),
               writes=("config/desired", "cmd/#")),
}


def box_lines() -> list[str]:
    """The ``pattern`` lines that confine every client to its own subtree."""
    return ([f"pattern write {PREFIX}/%u/{topic}" for topic in BOX_PUBLISHES]
            + [f"pattern read {PREFIX}/%u/{topic}" for topic in BOX_SUBSCRIBES])


def service_lines(identity: Identity) -> list[str]:
    """The ``user`` block of an active cloud service."""
    role = ROLES.get(identity.role or "")
    if role is None:
        raise FleetError(f"service {identity.name!r} has an unknown role {identity.role!r}")
    return ([f"user {identity.name}"]
            + [f"topic read {PREFIX}/+/{topic}" for topic in role.reads]
            + [f"topic write {PREFIX}/+/{topic}" for topic in role.writes])


def render_acl(identities: Iterable[Identity]) -> str:
    """The whole Mosquitto ACL file: box patterns, then one block per active service."""
    lines = ["# tillbox fleet ACL, rendered by `tillbox fleet mosquitto-conf`: do not edit.",
             "# Boxes: the user name is the certificate's CN (use_identity_as_username).",
             *box_lines()]
    for identity in sorted(identities, key=lambda item: item.name):
        if identity.kind == "service" and identity.state == "active":
            block = service_lines(identity)
            description = ROLES[identity.role or ""].description
            lines += ["", f"# service {identity.name}: {description}", *block]
    return "\n".join(lines) + "\n"
