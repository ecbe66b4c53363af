"""``tillbox run`` with ``[local_mqtt]`` enabled serves MQTT beside HTTP and says when it stops."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from daemonkit import running_daemon
from mqttapikit import MqttFrontend, mosquitto


@pytest.mark.slow
async def test_the_daemon_serves_mqtt_and_says_offline_when_it_stops(tmp_path: Path) -> None:
    """The ``local-mqtt`` task answers requests; SIGTERM leaves ``offline`` on ``status``."""
    prefix = "tillbox/daemon-box/"
    async with mosquitto(tmp_path / "broker") as port:
        with running_daemon(tmp_path / "data", TILLBOX_LOCAL_MQTT__ENABLED="true",
                            TILLBOX_LOCAL_MQTT__PORT=str(port),
                            TILLBOX_LOCAL_MQTT__BOX_ID="daemon-box") as daemon:
            async with MqttFrontend(port, prefix) as front:
                await front.subscribe("status")
                online = await front.wait_for("status", lambda s: s["health"] == "ok")
                session = await front.request("get_v1_session")
                health = await front.ok("get_health")
            http_health = httpx.get(f"{daemon.url}/health").json()
        async with MqttFrontend(port, prefix) as late:
            await late.subscribe("status")
            stopped = await late.wait_for("status")
    assert (online["state"], online["box"]) == ("online", "daemon-box")
    assert (session["status"], session["error"]["code"]) == (401, "unauthorized")
    assert health["journal"]["heads"] == http_health["journal"]["heads"]
    assert stopped["state"] == "offline"
