"""Where the ingest connects: a broker URL (``mqtt://`` or ``mqtts://``) and its TLS files."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiomqtt

SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}


@dataclass(frozen=True)
class BrokerAddress:
    """A broker to connect to, with credentials and TLS files when needed."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context (server checked against ``ca_file``, our certificate if given)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def parse_broker(url: str, *, ca_file: Path | None = None, cert_file: Path | None = None,
                 key_file: Path | None = None) -> BrokerAddress:
    """Read ``mqtt[s]://[user[:password]@]host[:port]`` (``ValueError`` if it is not one)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(f"broker URL {url!r}: expected mqtt://host:port or mqtts://host:port")
    tls, default_port = SCHEMES[parts.scheme]
    return BrokerAddress(
        parts.hostname, parts.port or default_port, tls or ca_file is not None,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None, ca_file, cert_file, key_file)


def mqtt_client(address: BrokerAddress, identifier: str) -> aiomqtt.Client:
    """An MQTT 5 client for ``address``: clean start, no session expiry (MQTT 5's default 0).

    The ingest keeps no session: a batch lost with a worker is sent again by its box, whose
    journal is the outbox (DESIGN §8).
    """
    return aiomqtt.Client(
        address.host, address.port, identifier=identifier, username=address.username,
        password=address.password, protocol=aiomqtt.ProtocolVersion.V5, clean_start=True,
        tls_context=address.tls_context(), keepalive=30)
