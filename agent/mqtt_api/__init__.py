"""The local MQTT API (DESIGN.md §7): the HTTP API's operations on the box's own broker.

A frontend publishes a request on ``tillbox/{box}/cmd/{operation}`` (the OpenAPI operation id)
with an MQTT 5 response topic and correlation data; the agent serves it with the very FastAPI
application, in process, and answers ``{ok, status, result | error}`` with the HTTP API's codes.
It also publishes the event bus, retained device states and a retained status with a last will.

Modules: ``topics`` (names), ``envelope`` (request and reply JSON), ``operations`` (the
operation ids), ``dispatch`` (MQTT request → HTTP application), ``payloads`` (what the box
publishes), ``link`` (client and backoff), ``service`` (the long-running task).
See docs/api/mqtt.md.
"""

from __future__ import annotations

from agent.mqtt_api.service import LocalMqttApi
from agent.mqtt_api.topics import Topics, box_id_for

__all__ = ["LocalMqttApi", "Topics", "box_id_for"]
