"""The local MQTT API as one long-running task: ``await api.run(box.app)`` until cancelled.

While connected to the box's broker it

* answers requests on ``cmd/{operation}`` (each in its own task, at most
  ``max_concurrent_requests`` at once) on the request's MQTT 5 response topic with its
  correlation data, by serving them with the HTTP application (``agent.mqtt_api.dispatch``);
* forwards every event of the bus to ``event/{kind}`` (QoS 1, not retained);
* keeps ``device/{device}/state`` (retained) current: all at connect, then on ``device`` events;
* keeps ``status`` (retained) current: ``online`` with the box's health at connect and when the
  health changes, ``offline`` before a clean stop; the last will says ``offline`` otherwise.

A missing or refusing broker is a state (``state`` is ``unavailable`` and ``last_error`` says
why), never an exception: the task retries with backoff for as long as the box runs. A request
still running when the connection drops is finished and answered on the connection of the moment
(lost if there is none: the frontend retries it with the same ``Idempotency-Key``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiomqtt
import structlog
from fastapi import FastAPI
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.devices import Devices
from agent.events import BoxEvent, EventBus
from agent.mqtt_api.dispatch import Dispatcher
from agent.mqtt_api.envelope import RequestError, encode
from agent.mqtt_api.link import Backoff, new_client
from agent.mqtt_api.payloads import event_payload, status_payload, to_json
from agent.mqtt_api.topics import Topics
from agent.observability import Health
from agent.settings import LocalMqttSettings

LinkState = Literal["stopped", "connecting", "connected", "unavailable"]
HEALTH_PERIOD = 1.0
"""Seconds between two looks at the box's health (the status is republished on change)."""
GOODBYE_TIMEOUT = 2.0

log = structlog.get_logger(__name__)


class LocalMqttApi:
    """The box's API on its own MQTT broker; see the module docstring."""

    def __init__(self, settings: LocalMqttSettings, box_id: str, *, bus: EventBus,
                 health: Health, version: str, devices: Devices | None = None) -> None:
        self.settings, self.box_id = settings, box_id
        self.topics = Topics.of(settings.topic_prefix, box_id)
        self.bus, self.health, self.version, self.devices = bus, health, version, devices
        self.state: LinkState = "stopped"
        self.last_error: str | None = None
        self._since = health.now_text()
        self._client: aiomqtt.Client | None = None
        self._published_health: str | None = None

    async def run(self, app: FastAPI) -> None:
        """Serve until cancelled, reconnecting with backoff; never raises otherwise."""
        backoff = Backoff(self.settings.retry_min_seconds, self.settings.retry_max_seconds)
        slots = asyncio.Semaphore(self.settings.max_concurrent_requests)
        try:
            async with Dispatcher(app) as dispatcher, asyncio.TaskGroup() as requests:
                serving = _Requests(self, dispatcher, requests, slots)
                while True:
                    await self._attempt(serving, backoff)
                    await asyncio.sleep(backoff.next())
        finally:
            self.state = "stopped"

    async def _attempt(self, serving: _Requests, backoff: Backoff) -> None:
        self.state = "connecting"
        will = status_payload("offline", self.box_id, self.version, self._since)
        try:
            async with (new_client(self.settings, self.box_id, self.topics, will) as client,
                        self.bus.subscribe() as events):
                backoff.reset()
                await self._session(client, events(), serving)
        except* aiomqtt.MqttError as group:
            self._unavailable(str(group.exceptions[0]))
        except* Exception as group:
            log.error("local_mqtt_failed", exc_info=group.exceptions[0])
            self._unavailable(repr(group.exceptions[0]))

    def _unavailable(self, reason: str) -> None:
        if reason != self.last_error:  # once per reason, not at every retry
            log.warning("local_mqtt_unavailable", broker=self._broker, error=reason)
        self.state, self.last_error = "unavailable", reason

    @property
    def _broker(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    async def _session(self, client: aiomqtt.Client, events: AsyncIterator[BoxEvent],
                       serving: _Requests) -> None:
        await client.subscribe(self.topics.commands, qos=1)
        await self._publish_status(client)
        await self._publish_devices(client)
        self._client, self.state, self.last_error = client, "connected", None
        log.info("local_mqtt_connected", broker=self._broker, prefix=self.topics.prefix)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._forward(client, events))
                tasks.create_task(self._watch_health(client))
                tasks.create_task(serving.listen(client))
        except asyncio.CancelledError:
            await self._goodbye(client)
            raise
        finally:
            self._client = None

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                await client.publish(self.topics.status, status_payload(
                    "offline", self.box_id, self.version, self._since), qos=1, retain=True)

    async def _forward(self, client: aiomqtt.Client, events: AsyncIterator[BoxEvent]) -> None:
        async for event in events:
            if not set(event.kind) & {"/", "+", "#"}:
                await client.publish(self.topics.event(event.kind), event_payload(event), qos=1)
            if event.kind == "device":
                await self._publish_devices(client, event.data.get("kind"))
            elif event.kind == "alarm":
                await self._publish_status(client)

    async def _watch_health(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(HEALTH_PERIOD)
            if self.health.status != self._published_health:
                await self._publish_status(client)

    async def _publish_status(self, client: aiomqtt.Client) -> None:
        health = self.health.status
        await client.publish(self.topics.status, status_payload(
            "online", self.box_id, self.version, self._since, health), qos=1, retain=True)
        self._published_health = health

    async def _publish_devices(self, client: aiomqtt.Client, only: Any = None) -> None:
        if self.devices is None:
            return
        for kind, info in self.devices.states().items():
            if only is None or kind == only:
                await client.publish(self.topics.device(kind), to_json(info), qos=1,
                                     retain=True)

    async def reply(self, topic: str, correlation: bytes | None, body: bytes) -> bool:
        """Publish a reply on the current connection; False if there is none any more."""
        client = self._client
        if client is None:
            return False
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = "application/json"
        if correlation is not None:
            properties.CorrelationData = correlation
        try:
            await client.publish(topic, body, qos=1, properties=properties)
        except aiomqtt.MqttError:
            return False
        return True


class _Requests:
    """The requests of every connection, each served in a task of ``tasks``."""

    def __init__(self, api: LocalMqttApi, dispatcher: Dispatcher,
                 tasks: asyncio.TaskGroup, slots: asyncio.Semaphore) -> None:
        self.api, self.dispatcher, self.tasks, self.slots = api, dispatcher, tasks, slots

    async def listen(self, client: aiomqtt.Client) -> None:
        """Take the requests of one connection until it drops."""
        async for message in client.messages:
            operation = self.api.topics.operation_of(message.topic.value)
            if operation is None:
                continue
            await self.slots.acquire()
            self.tasks.create_task(self._answer(operation, message),
                                   name=f"mqtt {operation}")

    async def _answer(self, operation: str, message: aiomqtt.Message) -> None:
        try:
            await self._serve(operation, message)
        except Exception:
            log.exception("local_mqtt_reply_failed", operation=operation)
        finally:
            self.slots.release()

    async def _serve(self, operation: str, message: aiomqtt.Message) -> None:
        properties = message.properties
        topic = getattr(properties, "ResponseTopic", None)
        if not isinstance(topic, str) or not self.api.topics.may_reply_to(topic):
            log.warning("local_mqtt_request_ignored", operation=operation, response_topic=topic,
                        reason="no usable MQTT 5 response topic")
            return
        correlation = getattr(properties, "CorrelationData", None)
        try:
            answer = await self.dispatcher.serve(operation, _payload(message.payload),
                                                 _authorization(properties))
        except Exception:  # answered like the HTTP API's crash handler would
            log.exception("local_mqtt_request_failed", operation=operation)
            answer = RequestError(500, "internal_error", "an unexpected error occurred").reply()
        if not await self.api.reply(topic, correlation, encode(answer)):
            log.warning("local_mqtt_reply_lost", operation=operation, status=answer["status"])


def _payload(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _authorization(properties: Properties | None) -> str | None:
    pairs = getattr(properties, "UserProperty", None) or []
    return next((value for name, value in pairs if name.lower() == "authorization"), None)
