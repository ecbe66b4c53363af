"""``tillbox fleet mosquitto-conf``: a Mosquitto 2.0 configuration for the fleet's broker.

Writes into one directory everything the broker needs and nothing more (not the CA key):
``mosquitto.conf``, ``acl.conf``, ``ca.pem``, ``server-cert.pem``, ``server-key.pem`` (0600)
and ``crl.pem``. The listener speaks MQTT over TLS only and requires a client certificate
from the fleet CA; the MQTT user name is the certificate's CN; ``acl.conf`` confines each box
to its own subtree; the client id is forced to the user name, so no client can take over
another's session. Render again (and send the broker SIGHUP) after a revocation or a new
cloud service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cloud.fleet.acl import render_acl
from cloud.fleet.errors import FleetError
from cloud.fleet.files import PRIVATE, write_file
from cloud.fleet.layout import FleetPaths, load_config
from cloud.fleet.registry import load_registry

CONF, ACL = "mosquitto.conf", "acl.conf"
MAX_PACKET = 1024 * 1024  # a journal/up batch is at most 256 KiB


@dataclass(frozen=True)
class BrokerOptions:
    """Listener and storage choices of the rendered broker."""

    port: int = 8883
    bind: str | None = None
    persistence_dir: Path | None = Path("/var/lib/mosquitto")
    install_dir: Path | None = None
    """Where the files will be on the broker host (default: where they are written)."""


def render_broker(paths: FleetPaths, out: Path,
                  options: BrokerOptions | None = None) -> Path:
    """Write the broker's files into ``out``; return the path of ``mosquitto.conf``."""
    options = options or BrokerOptions()
    load_config(paths)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o750)
    try:
        for source, name in ((paths.ca_cert, "ca.pem"), (paths.server_cert, "server-cert.pem"),
                             (paths.crl, "crl.pem")):
            write_file(out / name, source.read_bytes())
        write_file(out / "server-key.pem", paths.server_key.read_bytes(), PRIVATE)
    except OSError as error:
        raise FleetError(f"cannot copy the broker's TLS files: {error}") from error
    write_file(out / ACL, render_acl(load_registry(paths).identities).encode())
    conf = out / CONF
    write_file(conf, render_conf((options.install_dir or out).resolve(), options).encode())
    return conf


def render_conf(home: Path, options: BrokerOptions) -> str:
    """The text of ``mosquitto.conf`` for files installed in ``home``."""
    listener = f"listener {options.port}" + (f" {options.bind}" if options.bind else "")
    lines = [
        "# tillbox fleet broker, rendered by `tillbox fleet mosquitto-conf`: do not edit.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {home / ACL}",
        f"max_packet_size {MAX_PACKET}",
        *_persistence(options.persistence_dir),
        "",
        listener,
        "protocol mqtt",
        f"cafile {home / 'ca.pem'}",
        f"certfile {home / 'server-cert.pem'}",
        f"keyfile {home / 'server-key.pem'}",
        f"crlfile {home / 'crl.pem'}",
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
    ]
    return "\n".join(lines) + "\n"


def _persistence(directory: Path | None) -> list[str]:
    if directory is None:
        return ["persistence false"]
    return ["persistence true", f"persistence_location {directory}/", "autosave_interval 60"]

