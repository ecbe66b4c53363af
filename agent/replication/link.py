"""The box's MQTT link to the cloud broker: address, TLS, session, refusals, backoff.

* ``BrokerAddress.parse`` — ``mqtt://host:port`` (plain, default port 1883) or
  ``mqtts://host:port`` (TLS, default 8883).
* ``tls_context`` — the fleet CA as trust anchor and the box's client certificate.
* ``connect_client`` — an aiomqtt client: MQTT 5, client id = box id, ``clean_start=False``
  with a finite session expiry (aiomqtt's default, "clean on the first connect", would wipe
  the session the broker kept for us), keepalive, last will.
* ``Link`` — one connected session's publisher: QoS 1 publishes one at a time, each waiting
  for its PUBACK; a PUBACK reason code ≥ 0x80 (e.g. 0x87 not authorised) raises
  ``Refused``, a hard error, not something to retry at once.
* ``Backoff`` — exponential delays with jitter between reconnection attempts.

paho calls its callbacks from the socket reader under its own lock: the only override here
(``_on_publish``) stores the reason code and returns; the waiting coroutine reads it.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.settings import CloudSettings

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
REFUSING_CONNACK = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C})
"""CONNACK reason codes that retrying soon cannot fix (protocol, client id, credentials,
not authorised, banned, authentication method)."""


class Publisher(Protocol):
    """Publish under the box's topic subtree if connected; False when it could not."""

    def __call__(self, suffix: str, payload: bytes, *, retain: bool = False,
                 props: Properties | None = None) -> Awaitable[bool]:
        """Publish ``payload`` on ``tillbox/v1/{box}/{suffix}``."""
        ...


class Refused(Exception):
    """The broker refused us for good (a PUBACK, SUBACK or CONNACK reason code ≥ 0x80)."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(f"{what} refused by the broker (reason code 0x{code:02X})")
        self.code = code


@dataclass(frozen=True)
class BrokerAddress:
    """Where the cloud broker listens, and whether over TLS."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt[s]://host[:port]`` → address (``ValueError`` if it is not one)."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"not an mqtt:// or mqtts:// broker URL: {url!r}")
        return cls(parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme],
                   parts.scheme == "mqtts")


def properties(packet: int, **values: Any) -> Properties:
    """MQTT 5 properties of a packet type, e.g. ``properties(PUBLISH, CorrelationData=b"…")``."""
    props = Properties(packet)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, name, value)
    return props


def property_of(props: Properties | None, name: str) -> Any:
    """A property of a received packet, or None."""
    return getattr(props, name, None) if props is not None else None


def tls_context(settings: CloudSettings) -> ssl.SSLContext:
    """Trust the fleet CA (else the system's), present the box's certificate when configured."""
    context = ssl.create_default_context(
        cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.cert_file is not None:
        context.load_cert_chain(str(settings.cert_file),
                                str(settings.key_file) if settings.key_file else None)
    return context


class BoxClient(aiomqtt.Client):
    """aiomqtt's client, remembering the reason code of the last refused PUBACK."""

    refused_code: int | None = None

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Properties) -> None:
        if reason_code.is_failure:
            self.refused_code = reason_code.value
        super()._on_publish(client, userdata, mid, reason_code, properties)


def connect_client(settings: CloudSettings, box_id: str, address: BrokerAddress,
                   context: ssl.SSLContext | None, will: aiomqtt.Will) -> BoxClient:
    """A client for one connection attempt (enter it to connect)."""
    return BoxClient(
        address.host, address.port, identifier=box_id, protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False, keepalive=settings.keepalive_seconds, will=will,
        properties=properties(PacketTypes.CONNECT,
                              SessionExpiryInterval=settings.session_expiry_seconds),
        tls_context=context, timeout=max(10.0, float(settings.keepalive_seconds)),
        max_queued_incoming_messages=1000)


def connect_refusal(error: aiomqtt.MqttError) -> Refused | None:
    """A ``Refused`` when a failed connection was a CONNACK that retrying cannot fix."""
    code = getattr(error, "rc", None)
    value = code.value if isinstance(code, ReasonCode) else code
    if isinstance(error, MqttConnectError) and value in REFUSING_CONNACK:
        return Refused("connection", int(value))
    return None


class Link:
    """Publishing over one connected session: one QoS 1 publish in flight at a time."""

    def __init__(self, client: BoxClient) -> None:
        self.client = client
        self._lock = asyncio.Lock()

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False,
                      props: Properties | None = None) -> None:
        """Publish at QoS 1 and wait for the PUBACK; ``Refused`` if it says no."""
        async with self._lock:
            self.client.refused_code = None
            await self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
            if self.client.refused_code is not None:
                raise Refused(f"publish on {topic}", self.client.refused_code)

    async def subscribe(self, topics: list[str]) -> None:
        """Subscribe at QoS 1; ``Refused`` if the broker refuses one of them."""
        granted = await self.client.subscribe([(topic, 1) for topic in topics])
        values = [code.value if isinstance(code, ReasonCode) else code for code in granted]
        for topic, value in zip(topics, values, strict=False):
            if value >= 0x80:
                raise Refused(f"subscription to {topic}", value)


class Backoff:
    """Exponential delays with jitter: ``[d/2, d]`` with ``d`` doubling up to the maximum."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        ceiling = min(self.maximum, self.minimum * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """After a successful connection: start again from the minimum."""
        self.attempts = 0
