"""The agent's connection to the box's broker: the MQTT 5 client and the reconnection delays.

One client per connection attempt (aiomqtt), client id ``tillbox-agent-{box}``, a fresh session
each time (``clean_start``: requests sent while the agent was away are not worth running late),
the retained offline status as last will. Between attempts the agent waits an exponentially
growing, jittered delay, back to the minimum once connected.
"""

from __future__ import annotations

import random
import socket

import aiomqtt

from agent.mqtt_api.topics import Topics
from agent.settings import LocalMqttSettings

MAX_QUEUED_REQUESTS = 1000
"""Requests waiting to be read before the client drops new ones (a flood must not eat memory)."""
OPERATION_TIMEOUT = 10.0
NO_DELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
"""Replies are small: send them at once (Nagle's algorithm would hold them ~40 ms)."""


def client_id(box_id: str) -> str:
    """The agent's MQTT client id."""
    return f"tillbox-agent-{box_id}"


def new_client(settings: LocalMqttSettings, box_id: str, topics: Topics,
               will: bytes) -> aiomqtt.Client:
    """A client for one connection to the box's broker (``async with`` connects it)."""
    password = settings.password.get_secret_value() if settings.password else None
    return aiomqtt.Client(
        settings.host, settings.port, username=settings.username, password=password,
        identifier=client_id(box_id), protocol=aiomqtt.ProtocolVersion.V5,
        will=aiomqtt.Will(topics.status, will, qos=1, retain=True), clean_start=True,
        keepalive=settings.keepalive_seconds, timeout=OPERATION_TIMEOUT,
        max_queued_incoming_messages=MAX_QUEUED_REQUESTS, socket_options=(NO_DELAY,))


class Backoff:
    """Exponential delays with jitter between ``minimum`` and ``maximum`` seconds."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = minimum, max(minimum, maximum)
        self._attempts = 0

    def reset(self) -> None:
        """Back to the shortest delay (after a successful connection)."""
        self._attempts = 0

    def next(self) -> float:
        """The delay before the next attempt: half to all of the current step, at least min."""
        ceiling = min(self.maximum, self.minimum * 2 ** min(self._attempts, 32))
        self._attempts += 1
        return max(self.minimum, random.uniform(ceiling / 2, ceiling))
