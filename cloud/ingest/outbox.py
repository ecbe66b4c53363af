"""The worker's answers (acks, nacks) on their way to the broker, off the message loop.

Publishing at QoS 1 waits for the broker's PUBACK; a worker awaiting it in its message loop
would not see the broker die (aiomqtt only tells the loop that iterates its messages) and would
block until aiomqtt's timeout. So the stages only ``offer`` an answer, and one sender task per
connection publishes them in order, each PUBACK awaited at most ``PUBLISH_TIMEOUT``. An answer
that cannot go (the link is lost, the outbox is full, the PUBACK is late) is dropped: that is
harmless, the box resends after its ack timeout and the duplicate is acked with the watermark.
The outbox belongs to one connection and goes with it.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import structlog

log = structlog.get_logger("tillbox.cloud.ingest")

PUBLISH_TIMEOUT = 2.0
"""Seconds a PUBACK is awaited before the answer is given up."""
CAPACITY = 1000
"""Answers waiting to be published, at most (more are dropped)."""


class Outbox:
    """Answers to publish on one connection, in the order they were offered."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(capacity)
        self.dropped = 0
        """Answers given up: outbox full, publish failed or PUBACK late."""

    def offer(self, topic: str, payload: bytes) -> None:
        """Queue an answer without waiting (dropped when the outbox is full)."""
        try:
            self._queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            self._drop(topic, "outbox full")

    async def send(self, client: aiomqtt.Client) -> None:
        """Publish the answers as they come, until cancelled (never raises on a lost link)."""
        while True:
            topic, payload = await self._queue.get()
            try:
                await client.publish(topic, payload, qos=1, timeout=PUBLISH_TIMEOUT)
            except aiomqtt.MqttError as error:
                self._drop(topic, str(error))

    def _drop(self, topic: str, why: str) -> None:
        self.dropped += 1
        log.info("ingest_answer_dropped", topic=topic, error=why)
