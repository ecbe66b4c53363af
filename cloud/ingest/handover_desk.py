"""The ingest's handover desk: answers replacement boxes asking for their predecessor's chains.

A box publishes on ``tillbox/v1/{box}/handover/req`` (QoS 1, MQTT 5 ``ResponseTopic`` and
``CorrelationData``)::

    {"replaces": "<predecessor box id>", "store_id": "…", "register_id": "…"}

Workers read it on the shared subscription ``$share/ingest/tillbox/v1/+/handover/req``; the
requester is the box of the topic (the broker's ACL confines a box to its own subtree). The
answer goes to the requester's own ``tillbox/v1/{box}/handover/res`` (the only response topic
accepted: an answer is never sent into another box's subtree), with the request's correlation
data: ``{"ok": true, "handover": {…}}`` (see ``cloud.ingest.handover``) or
``{"ok": false, "error": {"code", "detail"}}``.

Requests are rare: the message loop only ``offer``s them; one task per connection answers them
in order through a database connection of its own, so that the journal's hot path never waits
for a handover.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiomqtt
import orjson
import psycopg
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.db import connect
from cloud.ingest.handover import INVALID_REQUEST, HandoverRefused, Request, grant
from cloud.ingest.store import Connection
from cloud.ingest.wire import PREFIX, SHARE_GROUP

log = structlog.get_logger("tillbox.cloud.ingest")

REQUEST_LEAF, RESPONSE_LEAF = "handover/req", "handover/res"
REQUEST_FILTER = f"$share/{SHARE_GROUP}/{PREFIX}/+/{REQUEST_LEAF}"
MAX_REQUEST = 4096
CAPACITY = 100
PUBLISH_TIMEOUT = 5.0
_BOX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LABEL_MAX = 128


def response_topic(box: str) -> str:
    """Where the answers to ``box`` go."""
    return f"{PREFIX}/{box}/{RESPONSE_LEAF}"


def _field(document: dict[str, Any], name: str, pattern: re.Pattern[str] | None) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= _LABEL_MAX or (
            pattern is not None and not pattern.fullmatch(value)):
        raise HandoverRefused(INVALID_REQUEST, f"{name} must be a box id" if pattern
                              else f"{name} must be a non-empty string")
    return value


def parse_request(payload: bytes, box: str) -> Request:
    """Read a request published under ``box``'s topic (``HandoverRefused`` if malformed)."""
    if len(payload) > MAX_REQUEST:
        raise HandoverRefused(INVALID_REQUEST, f"request of {len(payload)} bytes")
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise HandoverRefused(INVALID_REQUEST, f"the request is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise HandoverRefused(INVALID_REQUEST, "the request is not a JSON object")
    return Request(box, _field(document, "replaces", _BOX_ID),
                   _field(document, "store_id", None), _field(document, "register_id", None))


def ok_payload(handover: dict[str, Any]) -> bytes:
    """The answer carrying the handover."""
    return orjson.dumps({"ok": True, "handover": handover})


def refused_payload(code: str, detail: str) -> bytes:
    """The answer of a refused request."""
    return orjson.dumps({"ok": False, "error": {"code": code, "detail": detail[:500]}})


async def answer(conn: Connection, box: str, payload: bytes) -> bytes:
    """The answer to one request (database errors other than a lost connection: refused)."""
    try:
        request = parse_request(payload, box)
        handover = await grant(conn, request)
    except HandoverRefused as refused:
        log.warning("handover_refused", box=box, code=refused.code, detail=refused.detail)
        return refused_payload(refused.code, refused.detail)
    except (psycopg.DataError, psycopg.IntegrityError) as error:
        log.warning("handover_failed", box=box, error=str(error))
        return refused_payload("unavailable", "the request could not be served; ask again")
    log.info("handover_given", box=box, replaces=request.predecessor,
             last_seq=handover["last_seq"])
    return ok_payload(handover)


class HandoverDesk:
    """Queues handover requests from the message loop and answers them on its own task."""

    def __init__(self, dsn: str, schema: str, capacity: int = CAPACITY) -> None:
        self.dsn, self.schema = dsn, schema
        self._queue: asyncio.Queue[tuple[str, bytes, bytes | None]] = asyncio.Queue(capacity)
        self.answered = 0

    def offer(self, box: str, message: aiomqtt.Message) -> None:
        """Queue a request without waiting (dropped when full: the box asks again)."""
        payload = message.payload if isinstance(message.payload, bytes) else b""
        correlation = getattr(message.properties, "CorrelationData", None)
        try:
            self._queue.put_nowait((box, payload, correlation))
        except asyncio.QueueFull:
            log.warning("handover_request_dropped", box=box)

    async def serve(self, client: aiomqtt.Client) -> None:
        """Answer the requests as they come, until cancelled (a lost database raises)."""
        async with await connect(self.dsn, self.schema) as conn:
            while True:
                box, payload, correlation = await self._queue.get()
                reply = await answer(conn, box, payload)
                await self._publish(client, box, reply, correlation)

    async def _publish(self, client: aiomqtt.Client, box: str, reply: bytes,
                       correlation: bytes | None) -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if correlation:
            props.CorrelationData = correlation
        try:
            await client.publish(response_topic(box), reply, qos=1, properties=props,
                                 timeout=PUBLISH_TIMEOUT)
        except aiomqtt.MqttError as error:  # the box asks again
            log.info("handover_answer_dropped", box=box, error=str(error))
            return
        self.answered += 1
