"""The box's local event bus: what frontends follow live (``GET /v1/events``, later MQTT).

Producers (the scanner and scale loops, device state changes, the sales service when a ticket is
finalized, the cash service, …) call ``bus.publish(kind, data)``; it never blocks and never
fails. Each subscriber has a bounded queue: a subscriber too slow to keep up loses its oldest
events and is told so by a ``lagged`` event carrying the number lost, rather than slowing the
till down. Events carry a per-run increasing ``id`` (the SSE ``id:`` field).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

QUEUE_SIZE = 256

EVENT_KINDS = (
    "scan", "weight", "device", "drawer", "ticket.updated", "ticket.finalized", "ticket.voided",
    "ticket.parked", "cash", "closure", "receipt", "alarm", "lagged",
)
"""The kinds published today (documented in docs/api.md)."""


@dataclass(frozen=True)
class BoxEvent:
    """One published event."""

    id: int
    kind: str
    data: Mapping[str, Any]
    at: str


@dataclass
class _Subscriber:
    kinds: frozenset[str] | None
    queue: asyncio.Queue[BoxEvent] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lost: int = 0


class EventBus:
    """Fan-out of events to every subscriber, newest kept when one lags."""

    def __init__(self, now_text: Callable[[], str]) -> None:
        self._now_text = now_text
        self._ids = itertools.count(1)
        self._subscribers: list[_Subscriber] = []

    @property
    def subscriber_count(self) -> int:
        """How many listeners are attached."""
        return len(self._subscribers)

    def publish(self, kind: str, data: Mapping[str, Any]) -> BoxEvent:
        """Publish ``data`` under ``kind`` to every interested subscriber, now."""
        event = BoxEvent(next(self._ids), kind, dict(data), self._now_text())
        for subscriber in self._subscribers:
            if subscriber.kinds is None or kind in subscriber.kinds:
                self._offer(subscriber, event)
        return event

    def _offer(self, subscriber: _Subscriber, event: BoxEvent) -> None:
        while subscriber.queue.full():
            subscriber.queue.get_nowait()
            subscriber.lost += 1
        subscriber.queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, kinds: frozenset[str] | None = None
                        ) -> AsyncIterator[Callable[[], AsyncIterator[BoxEvent]]]:
        """Attach a listener for ``kinds`` (all when None); yield its event iterator factory."""
        subscriber = _Subscriber(kinds)
        self._subscribers.append(subscriber)

        async def events() -> AsyncIterator[BoxEvent]:
            while True:
                event = await subscriber.queue.get()
                if subscriber.lost:
                    lost, subscriber.lost = subscriber.lost, 0
                    yield BoxEvent(next(self._ids), "lagged", {"lost": lost}, self._now_text())
                yield event

        try:
            yield events
        finally:
            self._subscribers.remove(subscriber)
