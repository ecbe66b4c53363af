"""Test kit for the local MQTT API: a private Mosquitto, a box serving on it, an MQTT frontend.

* ``mosquitto(tmp_path)`` — a broker of our own on a free port (no ACL, no persistence);
* ``Cutter(broker_port)`` — a TCP relay in front of it whose ``cut()`` drops every connection
  without a DISCONNECT (the broker then publishes the agent's last will);
* ``mqtt_box(tmp_path, port)`` — a composed box with ``[local_mqtt]`` on ``port``, its API task
  running (``serving``) until the block ends;
* ``MqttFrontend`` — an aiomqtt client that sends requests and reads replies by correlation
  data, and collects what arrives on the topics it subscribed to.
Import as ``mqttapikit`` from tests in ``tests/agent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
from boxkit import running_box
from daemonkit import free_port
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.composition import Box
from agent.mqtt_api import LocalMqttApi
from agent.mqtt_api.link import NO_DELAY
from agent.settings import LocalMqttSettings

MOSQUITTO = "/usr/sbin/mosquitto"
WAIT = 5.0


async def wait_until(condition: Any, timeout: float = WAIT) -> None:
    """Poll ``condition()`` until true, at most ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@asynccontextmanager
async def mosquitto(directory: Path) -> AsyncIterator[int]:
    """A Mosquitto broker on a free port of 127.0.0.1; yields the port, stops it on exit."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                      "persistence false\nset_tcp_nodelay true\n")
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO, "-c", str(config), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(WAIT):
            while not await _listening(port):
                await asyncio.sleep(0.01)
        yield port
    finally:
        process.terminate()
        await process.wait()


class Cutter:
    """A TCP relay to the broker; ``cut()`` aborts every relayed connection."""

    def __init__(self, broker_port: int, port: int | None = None) -> None:
        self.broker_port, self.port = broker_port, port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(_pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    def cut(self) -> None:
        """Drop every connection at once (no MQTT DISCONNECT goes through)."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            self.cut()
            await self._server.wait_closed()
        for pump in list(self._pumps):
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.transport.abort()


def local_mqtt(port: int, **overrides: Any) -> LocalMqttSettings:
    """``[local_mqtt]`` enabled on ``port`` with a unique box id and quick retries."""
    values: dict[str, Any] = {"enabled": True, "port": port,
                              "box_id": f"box-{uuid.uuid4().hex[:12]}",
                              "retry_min_seconds": 0.05, "retry_max_seconds": 0.2}
    return LocalMqttSettings(**(values | overrides))


def api_of(box: Box) -> LocalMqttApi:
    """The box's local MQTT API."""
    api = box.services.local_mqtt
    assert api is not None
    return api


@asynccontextmanager
async def serving(box: Box, connected: bool = True) -> AsyncIterator[LocalMqttApi]:
    """Run the box's MQTT API task (waiting until connected if asked); cancel it on exit."""
    api = api_of(box)
    task = asyncio.create_task(api.run(box.app), name="local-mqtt")
    try:
        if connected:
            await wait_until(lambda: api.state == "connected" or task.done())
            assert not task.done(), task
        yield api
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def mqtt_box(data_dir: Path, port: int, *, devices: bool = False,
                   **overrides: Any) -> AsyncIterator[Box]:
    """A box with its local MQTT API connected to the broker on ``port``."""
    async with (running_box(data_dir, devices=devices, local_mqtt=local_mqtt(port, **overrides))
                as box, serving(box)):
        yield box


class MqttFrontend:
    """A frontend speaking only MQTT to a box's broker (``async with`` connects it)."""

    def __init__(self, port: int, prefix: str, token: str | None = None) -> None:
        self.prefix, self.token = prefix, token
        self.name = f"front-{uuid.uuid4().hex[:8]}"
        self.reply_topic = f"{prefix}res/{self.name}"
        self.client = aiomqtt.Client("127.0.0.1", port, identifier=self.name,
                                     protocol=aiomqtt.ProtocolVersion.V5,
                                     socket_options=(NO_DELAY,))
        self.received: list[tuple[str, Any, bool]] = []
        self._replies: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MqttFrontend:
        await self.client.__aenter__()
        await self.client.subscribe(self.reply_topic, qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._reader is not None
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.client.__aexit__(None, None, None)

    async def subscribe(self, *suffixes: str) -> None:
        """Subscribe to topics under the box's prefix (``event/#``, ``status``, …)."""
        for suffix in suffixes:
            await self.client.subscribe(f"{self.prefix}{suffix}", qos=1)

    async def _read(self) -> None:
        async for message in self.client.messages:
            payload: Any = json.loads(message.payload) if message.payload else None
            correlation = getattr(message.properties, "CorrelationData", None)
            if message.topic.value == self.reply_topic and correlation in self._replies:
                self._replies.pop(correlation).set_result(payload)
            else:
                self.received.append((message.topic.value, payload, message.retain))

    async def request(self, operation: str, payload: dict[str, Any] | bytes | None = None, *,
                      token: str | None = None, response_topic: str | None = None,
                      timeout: float = WAIT) -> dict[str, Any]:
        """Send a request; return the reply (its JSON)."""
        correlation = f"c{next(self._ids)}".encode()
        reply = asyncio.get_running_loop().create_future()
        self._replies[correlation] = reply
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = response_topic or self.reply_topic
        properties.CorrelationData = correlation
        if token or self.token:
            properties.UserProperty = [("authorization", f"Bearer {token or self.token}")]
        body = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
        await self.client.publish(f"{self.prefix}cmd/{operation}", body, qos=1,
                                  properties=properties)
        async with asyncio.timeout(timeout):
            result: dict[str, Any] = await reply
        return result

    async def ok(self, operation: str, payload: dict[str, Any] | None = None,
                 status: int = 200) -> Any:
        """The result of a request that must succeed with ``status``."""
        reply = await self.request(operation, payload)
        assert (reply["ok"], reply["status"]) == (True, status), reply
        return reply["result"]

    def seen(self, topic_suffix: str) -> list[Any]:
        """Payloads received so far on ``prefix + topic_suffix``."""
        return [payload for topic, payload, _ in self.received
                if topic == f"{self.prefix}{topic_suffix}"]

    async def wait_for(self, topic_suffix: str, match: Any = None,
                       timeout: float = WAIT) -> Any:
        """The first payload on ``prefix + topic_suffix`` (satisfying ``match``), waited for."""
        def found() -> Any:
            return next((payload for payload in self.seen(topic_suffix)
                         if match is None or match(payload)), None)
        await wait_until(lambda: found() is not None, timeout)
        return found()
