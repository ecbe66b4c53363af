"""The topics of the local MQTT API under the box's prefix (DESIGN.md §7) and the box's id.

With the default prefix ``tillbox/{box_id}/``::

    tillbox/{box}/cmd/{operation}        frontend → box   requests (MQTT 5 response topic)
    tillbox/{box}/res/…                   box → frontend   where frontends should ask replies
    tillbox/{box}/event/{kind}           box → frontends  bus events (QoS 1, not retained)
    tillbox/{box}/device/{device}/state  box → frontends  retained device states
    tillbox/{box}/status                 box → frontends  retained; the last will says offline
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.settings import Settings, box_id


def box_id_for(settings: Settings) -> str:
    """The box's id: ``local_mqtt.box_id``, else the cloud's (one box, one id on both brokers)."""
    return settings.local_mqtt.box_id or box_id(settings)


@dataclass(frozen=True)
class Topics:
    """Every topic of one box, from its prefix (which ends with ``/``)."""

    prefix: str

    @classmethod
    def of(cls, template: str, box_id: str) -> Topics:
        """The topics for ``box_id`` under ``template`` (``{box_id}`` is replaced)."""
        return cls(template.replace("{box_id}", box_id))

    @property
    def commands(self) -> str:
        """The filter the box subscribes to for requests."""
        return f"{self.prefix}cmd/+"

    @property
    def status(self) -> str:
        """The retained box status."""
        return f"{self.prefix}status"

    def operation_of(self, topic: str) -> str | None:
        """The operation a request topic names, or None if it is not a request topic."""
        operation = topic.removeprefix(f"{self.prefix}cmd/")
        return operation if operation != topic and operation and "/" not in operation else None

    def event(self, kind: str) -> str:
        """Where events of ``kind`` go."""
        return f"{self.prefix}event/{kind}"

    def device(self, device_id: str) -> str:
        """The retained state of one device."""
        return f"{self.prefix}device/{device_id}/state"

    def may_reply_to(self, topic: str) -> bool:
        """Whether the box answers on ``topic``: anywhere but its own topics, except ``res/``.

        The box's client may publish on every topic of its prefix; without this rule a frontend
        could make it publish a false status, event or device state.
        """
        if not topic or "+" in topic or "#" in topic or topic.startswith("$"):
            return False
        return not topic.startswith(self.prefix) or topic.startswith(f"{self.prefix}res/")
