"""``tillbox fleet init``: a new fleet directory with its CA, empty CRL, broker certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization

from cloud.fleet.ca import Validity, create_ca, issue
from cloud.fleet.errors import FleetError
from cloud.fleet.files import locked, new_key, private_dir, write_file, write_key
from cloud.fleet.layout import FleetConfig, FleetPaths, load_config, save_config
from cloud.fleet.registry import Registry, check_name
from cloud.fleet.revoke import publish_crl

DEFAULT_PORT = 8883


def broker_url(host: str, port: int = DEFAULT_PORT) -> str:
    """``mqtts://host:port`` (IPv6 addresses in brackets)."""
    try:
        literal = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        literal = host
    return f"mqtts://{literal}:{port}"


def init_fleet(paths: FleetPaths, name: str, broker_hosts: Sequence[str], *,
               url: str | None = None, crl_days: int = 365,
               server_days: int = 825, now: dt.datetime | None = None) -> FleetConfig:
    """Create the fleet: CA, empty CRL, broker server certificate, empty registry."""
    now = now or dt.datetime.now(dt.UTC)
    check_name(name, "fleet name")
    if not broker_hosts:
        raise FleetError("give at least one broker host name (--broker-host)")
    if paths.config.exists() or paths.ca_key.exists():
        raise FleetError(f"{paths.root} holds a fleet already; a fleet CA is never replaced")
    private_dir(paths.root)
    with locked(paths.root):
        config = FleetConfig(name=name, broker_url=url or broker_url(broker_hosts[0]),
                             broker_hosts=tuple(broker_hosts), crl_days=crl_days)
        ca = create_ca(name, now)
        write_key(paths.ca_key, ca.key)
        write_file(paths.ca_cert, ca.cert.public_bytes(serialization.Encoding.PEM))
        save_config(paths, config)
        publish_crl(paths, ca, Registry(), now)
        server_key = new_key()
        cert = issue(ca, broker_hosts[0], server_key.public_key(),
                     Validity.days_from(now, server_days), "server", broker_hosts)
        private_dir(paths.server_key.parent)
        write_key(paths.server_key, server_key)
        write_file(paths.server_cert, cert.public_bytes(serialization.Encoding.PEM))
    return load_config(paths)
