"""What the box publishes on its own: events, device states and its status (JSON, UTF-8).

* ``event/{kind}`` — ``{id, kind, at, data}``, the bus event as ``GET /v1/events`` sends it;
* ``device/{device}/state`` — ``{kind, driver, status, reason, connection}`` as in
  ``GET /v1/devices``;
* ``status`` — ``{state: "online", box, version, health, since}``; the last will is
  ``{state: "offline", box, version, since}`` (both retained).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent.events import BoxEvent


def to_json(value: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def event_payload(event: BoxEvent) -> bytes:
    """An event of the bus."""
    return to_json({"id": event.id, "kind": event.kind, "at": event.at, "data": event.data})


def status_payload(state: str, box_id: str, version: str, since: str,
                   health: str | None = None) -> bytes:
    """The box's status (``health`` is ``ok``/``alarm``/``starting`` when online)."""
    status: dict[str, Any] = {"state": state, "box": box_id, "version": version,
                              "since": since}
    if health is not None:
        status["health"] = health
    return to_json(status)
