"""What the box publishes by itself: bus events, retained device states and status, last will."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

from boxkit import START, box_settings, running_box
from mqttapikit import (
    Cutter,
    MqttFrontend,
    api_of,
    local_mqtt,
    mosquitto,
    mqtt_box,
    serving,
    wait_until,
)

from agent.composition import compose
from agent.settings import DevicesSettings
from fiscal.testing import FakeClock

SCANNER_ONLY = DevicesSettings(printer="none", drawer="none", display="none", scale="none",
                               scanner="simulated")


async def test_bus_events_are_forwarded_to_event_topics(tmp_path: Path) -> None:
    """A scan published on the bus arrives on ``event/scan`` as ``{id, kind, at, data}``."""
    async with (mosquitto(tmp_path / "broker") as port, mqtt_box(tmp_path / "data", port) as box,
                MqttFrontend(port, api_of(box).topics.prefix) as front):
        await front.subscribe("event/#")
        published = box.services.bus.publish("scan", {"code": "3017620422003"})
        box.services.bus.publish("ticket.finalized", {"id": "T-1", "seq": 7})
        scan = await front.wait_for("event/scan")
        finalized = await front.wait_for("event/ticket.finalized")
        retained = [retain for topic, _, retain in front.received if "/event/" in topic]
    assert scan == {"id": published.id, "kind": "scan", "at": published.at,
                    "data": {"code": "3017620422003"}}
    assert finalized["data"] == {"id": "T-1", "seq": 7}
    assert not any(retained), "events are not retained"


async def test_a_late_subscriber_finds_status_and_current_device_states(tmp_path: Path) -> None:
    """Status and device states are retained; a device coming up is republished on change."""
    async with (mosquitto(tmp_path / "broker") as port,
                compose(box_settings(tmp_path / "data", devices=SCANNER_ONLY,
                                     local_mqtt=local_mqtt(port)), clock=FakeClock(START))
                as box, serving(box)):
        prefix = api_of(box).topics.prefix
        async with MqttFrontend(port, prefix) as early:
            await early.subscribe("device/+/state")
            before = await early.wait_for("device/scanner/state")
        async with _running(box.devices.tasks()["states"]()), box.devices:
            async with MqttFrontend(port, prefix) as watcher:
                await watcher.subscribe("device/scanner/state")
                await watcher.wait_for("device/scanner/state",
                                       lambda state: state["status"] == "ready")
            async with MqttFrontend(port, prefix) as late:
                await late.subscribe("status", "device/+/state")
                status = await late.wait_for("status")
                scanner = await late.wait_for("device/scanner/state")
                printer = await late.wait_for("device/printer/state")
    assert (before["kind"], before["status"], before["reason"]) == \
        ("scanner", "unavailable", "not_connected")
    assert (scanner["status"], scanner["driver"]) == ("ready", "simulated")
    assert (printer["status"], printer["reason"]) == ("unavailable", "not_configured")
    assert (status["state"], status["box"]) == ("online", api_of(box).box_id)
    assert all(retain for _, _, retain in late.received)


@contextlib.asynccontextmanager
async def _running(loop: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(loop)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_last_will_says_offline_when_the_connection_dies(tmp_path: Path) -> None:
    """The agent's connection dropped without DISCONNECT: the broker publishes the retained
    offline will; the agent reconnects and says online again."""
    async with mosquitto(tmp_path / "broker") as broker:
        cutter = Cutter(broker)
        await cutter.start()
        try:
            async with (running_box(tmp_path / "data", local_mqtt=local_mqtt(cutter.port))
                        as box, serving(box) as api,
                        MqttFrontend(broker, api.topics.prefix) as front):
                await front.subscribe("status")
                await front.wait_for("status", lambda status: status["state"] == "online")
                front.received.clear()
                cutter.cut()
                offline = await front.wait_for("status", lambda s: s["state"] == "offline")
                online = await front.wait_for("status", lambda s: s["state"] == "online")
                await wait_until(lambda: api.state == "connected")
        finally:
            await cutter.close()
    assert offline == {"state": "offline", "box": api.box_id, "version": online["version"],
                       "since": online["since"]}
    assert [status["state"] for status in front.seen("status")] == ["offline", "online"]


async def test_a_clean_stop_says_offline(tmp_path: Path) -> None:
    """Cancelling the task (the daemon stopping) leaves ``offline`` retained on ``status``."""
    async with (mosquitto(tmp_path / "broker") as port,
                running_box(tmp_path / "data", local_mqtt=local_mqtt(port)) as box):
        async with serving(box) as api:
            pass
        assert api.state == "stopped"
        async with MqttFrontend(port, api.topics.prefix) as late:
            await late.subscribe("status")
            status = await late.wait_for("status")
    assert status["state"] == "offline"


async def test_without_a_broker_the_box_keeps_running_and_connects_later(
        tmp_path: Path) -> None:
    """No broker: the API is ``unavailable`` and retries; once a broker answers it connects."""
    async with mosquitto(tmp_path / "broker") as broker:
        cutter = Cutter(broker)
        async with (running_box(tmp_path / "data", local_mqtt=local_mqtt(cutter.port)) as box,
                    serving(box, connected=False) as api):
            await wait_until(lambda: api.state == "unavailable")
            error = api.last_error
            await asyncio.sleep(0.3)  # a few retries
            retrying: str = api.state
            await cutter.start()
            try:
                await wait_until(lambda: api.state == "connected")
                async with MqttFrontend(broker, api.topics.prefix) as front:
                    health = await front.ok("get_health")
            finally:
                await cutter.close()
    assert error
    assert retrying in ("unavailable", "connecting")
    assert health["journal"]["seq"] == box.journal.state.seq
