"""Box replacement, box side: fetch the replaced box's chain tips and closures from the cloud.

A box provisioned to replace another (``[cloud] replaces``, from its bundle) must not start the
register's chains again: before its journal's first start, ``fetch_handover`` asks the cloud
for the predecessor's handover (DESIGN §8; the document of ``fiscal.handover``). It connects
with the box's own identity (``agent.replication.link``: MQTT 5, client id = box id, the box's
TLS certificate), subscribes to ``tillbox/v1/{box}/handover/res``, publishes on
``tillbox/v1/{box}/handover/req`` (QoS 1, ``ResponseTopic`` and ``CorrelationData``)::

    {"replaces": "<predecessor>", "store_id": "…", "register_id": "…"}

and waits for the answer with the same correlation data: ``{"ok": true, "handover": {…}}`` or
``{"ok": false, "error": {"code", "detail"}}``. It asks until it holds a valid handover of the
predecessor for this store and register: a lost link or no answer in time is retried with
exponential backoff and jitter; a refusal (the cloud's ``ok: false``, a malformed answer, or
the broker refusing us) is logged and retried after ``cloud.refused_backoff_seconds`` — the
fleet manager may fix the cloud's side meanwhile. Until then the box does not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from typing import Any

import aiomqtt
import orjson
import structlog
from paho.mqtt.packettypes import PacketTypes

from agent.replication.link import (
    Backoff,
    BoxClient,
    BrokerAddress,
    Link,
    Refused,
    connect_client,
    connect_refusal,
    properties,
    property_of,
    tls_context,
)
from agent.settings import Settings
from agent.settings import box_id as settings_box_id
from fiscal.errors import InvalidInput

REQUEST, RESPONSE = "handover/req", "handover/res"
ANSWER_TIMEOUT = 10.0
"""Seconds an answer is awaited after the request was accepted by the broker."""
UNSUBSCRIBE_TIMEOUT = 2.0
log = structlog.get_logger("tillbox.replication")


class HandoverRefused(Exception):
    """The cloud answered, but not with a usable handover (its code, or why it is unusable)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def request_payload(settings: Settings) -> bytes:
    """The request: the box replaced, and this box's store and register."""
    return orjson.dumps({"replaces": settings.cloud.replaces,
                         "store_id": settings.journal.store_id,
                         "register_id": settings.journal.register_id})


def read_answer(payload: bytes, settings: Settings) -> dict[str, Any]:
    """The handover of an ``ok`` answer, checked; ``HandoverRefused`` for anything else."""
    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise HandoverRefused("malformed_answer", "the answer is not a JSON object")
    if answer.get("ok") is not True:
        error = answer.get("error")
        error = error if isinstance(error, dict) else {}
        raise HandoverRefused(str(error.get("code", "malformed_answer")),
                              str(error.get("detail", "no detail")))
    document = answer.get("handover")
    _check(document, settings)
    assert isinstance(document, dict)
    return document


def _check(document: Any, settings: Settings) -> None:
    """A valid handover of the box replaced, for this box's store and register."""
    from fiscal.handover import Handover

    try:
        handover = Handover.from_json(document)
        handover.check_placement(settings.journal.store_id, settings.journal.register_id)
    except InvalidInput as error:
        raise HandoverRefused("malformed_answer", f"{error} ({error.field})") from error
    if handover.box_id != settings.cloud.replaces:
        raise HandoverRefused("malformed_answer", f"the handover is box {handover.box_id}'s, "
                              f"not box {settings.cloud.replaces}'s")


class _Asker:
    """One question per connection to the cloud broker, with the box's identity."""

    def __init__(self, settings: Settings) -> None:
        self.settings, self.cloud = settings, settings.cloud
        self.box_id = settings_box_id(settings)
        self.prefix = f"tillbox/v1/{self.box_id}/"
        self.address = BrokerAddress.parse(self.cloud.broker or "")
        self._tls: ssl.SSLContext | None = None

    async def ask(self, timeout: float) -> bytes:
        """Connect, ask once, and return the answer's payload (``TimeoutError`` if none)."""
        if self.address.tls and self._tls is None:
            self._tls = await asyncio.to_thread(tls_context, self.cloud)
        will = aiomqtt.Will(self.prefix + "status", orjson.dumps({"state": "offline"}), qos=1,
                            retain=True)
        async with connect_client(self.cloud, self.box_id, self.address, self._tls,
                                  will) as client:
            link = Link(client)
            await link.subscribe([self.prefix + RESPONSE])
            try:
                return await self._exchange(client, link, timeout)
            finally:  # the replicator resumes this session: leave it without our topic
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(UNSUBSCRIBE_TIMEOUT):
                        await client.unsubscribe(self.prefix + RESPONSE)

    async def _exchange(self, client: BoxClient, link: Link, timeout: float) -> bytes:
        correlation = uuid.uuid4().bytes
        props = properties(PacketTypes.PUBLISH, ResponseTopic=self.prefix + RESPONSE,
                           CorrelationData=correlation)
        await link.publish(self.prefix + REQUEST, request_payload(self.settings), props=props)
        async with asyncio.timeout(timeout):
            async for message in client.messages:
                if property_of(message.properties, "CorrelationData") == correlation:
                    payload = message.payload
                    return payload if isinstance(payload, bytes) else b""
        raise TimeoutError("the connection ended before the answer came")


async def request_handover(settings: Settings, *,
                           timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
    """Ask once: the handover, else ``HandoverRefused``, ``MqttError``, ``Refused``, a timeout.

    ``fetch_handover`` asks until it gets one.
    """
    return read_answer(await _Asker(settings).ask(timeout), settings)


async def fetch_handover(settings: Settings, *,
                         answer_timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
    """Ask the cloud until it hands over ``[cloud] replaces``; return the handover document."""
    cloud = settings.cloud
    if not (cloud.enabled and cloud.broker and cloud.replaces):
        raise ValueError("fetch_handover needs [cloud] enabled, broker and replaces")
    asker = _Asker(settings)
    backoff = Backoff(cloud.backoff_min_seconds, cloud.backoff_max_seconds)
    log.info("handover_requested", replaces=cloud.replaces, broker=cloud.broker)
    while True:
        try:
            document = read_answer(await asker.ask(answer_timeout), settings)
        except HandoverRefused as refused:
            delay = cloud.refused_backoff_seconds
            log.error("handover_refused", replaces=cloud.replaces, code=refused.code,
                      detail=refused.detail, retry_in=delay)
        except (aiomqtt.MqttError, Refused, OSError, TimeoutError) as error:
            delay = _failed(error, backoff, cloud.refused_backoff_seconds)
        else:
            return document
        await asyncio.sleep(delay)


def _failed(error: Exception, backoff: Backoff, refused_delay: float) -> float:
    """Log a failed attempt; the delay before the next (long when the broker refuses us)."""
    refusal = error if isinstance(error, Refused) else (
        connect_refusal(error) if isinstance(error, aiomqtt.MqttError) else None)
    if refusal is not None:
        log.error("handover_link_refused", error=str(refusal), retry_in=refused_delay)
        return refused_delay
    delay = backoff.next()
    log.warning("handover_no_answer", error=str(error) or type(error).__name__,
                retry_in=round(delay, 3))
    return delay
