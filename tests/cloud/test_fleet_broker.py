"""The fleet's broker configuration on a real Mosquitto: identities, subtrees, refusals.

Negative checks use a barrier rather than a sleep: after the forbidden message, the same
client publishes a permitted marker; Mosquitto handles one connection's packets in order and
delivers in order, so once the marker has arrived, a forbidden message that got through would
have arrived before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import queue
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
import pytest
from brokerkit import Broker, Fleet, Identity, make_fleet, mqtt_client, running_broker
from paho.mqtt.enums import CallbackAPIVersion

from cloud.fleet.ca import Validity

SHARED_UP = "$share/ingest/tillbox/v1/+/journal/up"
WAIT = 2.0


def topic(box: str, leaf: str) -> str:
    return f"tillbox/v1/{box}/{leaf}"


@dataclass(frozen=True)
class World:
    fleet: Fleet
    broker: Broker
    ingest: Identity
    hq: Identity
    a: Identity
    b: Identity


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    fleet = make_fleet(tmp_path / "fleet")
    ingest, hq = fleet.service("cloud-ingest-1", "ingest"), fleet.service("cloud-hq", "hq")
    a, b = fleet.box("box-a"), fleet.box("box-b")
    with running_broker(fleet, tmp_path / "broker") as broker:
        yield World(fleet, broker, ingest, hq, a, b)


async def until(client: aiomqtt.Client, marker: bytes) -> list[tuple[str, bytes]]:
    """Every message up to and including the one whose payload is ``marker``."""
    got: list[tuple[str, bytes]] = []
    async with asyncio.timeout(WAIT):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            got.append((message.topic.value, message.payload))
            if message.payload == marker:
                return got
    raise AssertionError("message iteration ended")


async def refused(world: World, identity: Identity, alert: str) -> None:
    """An MQTT client cannot connect with ``identity``: the broker ends TLS with ``alert``."""
    with pytest.raises(aiomqtt.MqttError):
        async with mqtt_client(world.broker, identity, timeout=1):
            pass
    reader, writer = await asyncio.open_connection(world.broker.host, world.broker.port,
                                                   ssl=identity.tls_context())
    try:
        async with asyncio.timeout(WAIT):
            with pytest.raises(ssl.SSLError) as error:
                await reader.read(1)
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
    assert error.value.reason == alert


async def test_boxes_reach_the_ingest_through_the_shared_subscription(world: World) -> None:
    async with mqtt_client(world.broker, world.ingest) as ingest:
        await ingest.subscribe(SHARED_UP, qos=1)
        for box in (world.a, world.b):
            async with mqtt_client(world.broker, box) as client:
                await client.publish(topic(box.name, "journal/up"), box.name.encode(), qos=1)
        got = await until(ingest, b"box-b")
    assert got == [(topic("box-a", "journal/up"), b"box-a"),
                   (topic("box-b", "journal/up"), b"box-b")]


async def test_ingest_workers_share_the_load_with_one_identity_each(world: World) -> None:
    second = world.fleet.service("cloud-ingest-2")
    world.broker.reload()  # a service added while the broker runs: its ACL block is read
    sent = [str(n).encode() for n in range(10)]
    async with (mqtt_client(world.broker, world.ingest) as one,
                mqtt_client(world.broker, second) as two):
        for worker in (one, two):
            await worker.subscribe(SHARED_UP, qos=1)
        async with mqtt_client(world.broker, world.a) as box:
            for payload in sent:
                await box.publish(topic("box-a", "journal/up"), payload, qos=1)
        got: list[list[bytes]] = [[], []]
        done = asyncio.Event()

        async def drain(index: int, worker: aiomqtt.Client) -> None:
            async for message in worker.messages:
                assert isinstance(message.payload, bytes)
                got[index].append(message.payload)
                if sum(map(len, got)) >= len(sent):
                    done.set()

        tasks = [asyncio.create_task(drain(n, worker)) for n, worker in enumerate((one, two))]
        try:
            await asyncio.wait_for(done.wait(), WAIT)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(got[0] + got[1], key=int) == sent
    assert got[0]
    assert got[1]


async def test_a_box_cannot_publish_under_another_box(world: World) -> None:
    async with (mqtt_client(world.broker, world.ingest) as ingest,
                mqtt_client(world.broker, world.hq) as hq):
        await ingest.subscribe(SHARED_UP, qos=1)
        await hq.subscribe("tillbox/v1/#", qos=1)
        async with mqtt_client(world.broker, world.a) as box:
            for leaf in ("journal/up", "status", "config/reported", "cmd-res/x"):
                await box.publish(topic("box-b", leaf), b"forged", qos=1)
            await box.publish(topic("box-a", "status"), b"status-a", qos=1)
            await box.publish(topic("box-a", "journal/up"), b"up-a", qos=1)
        assert await until(ingest, b"up-a") == [(topic("box-a", "journal/up"), b"up-a")]
        assert await until(hq, b"status-a") == [(topic("box-a", "status"), b"status-a")]


def test_a_forbidden_publish_is_acknowledged_as_not_authorised(world: World) -> None:
    """The reason code a replicator must treat as a hard error (aiomqtt does not show it)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="box-a", protocol=paho.MQTTv5)
    client.tls_set_context(world.a.tls_context())
    acks: queue.Queue[tuple[int, int]] = queue.Queue()
    client.on_publish = lambda _c, _u, mid, code, _p: acks.put((mid, code.value))
    client.connect(world.broker.host, world.broker.port)
    client.loop_start()
    try:
        forged = client.publish(topic("box-b", "journal/up"), b"forged", qos=1)
        own = client.publish(topic("box-a", "journal/up"), b"own", qos=1)
        codes = dict(acks.get(timeout=WAIT) for _ in range(2))
    finally:
        client.disconnect()
        client.loop_stop()
    assert codes[forged.mid] == 0x87
    assert codes[own.mid] < 0x80


async def test_a_box_cannot_read_another_box_downlink(world: World) -> None:
    async with (mqtt_client(world.broker, world.a) as a,
                mqtt_client(world.broker, world.b) as b):
        await a.subscribe("tillbox/v1/+/journal/ack", qos=1)
        await a.subscribe(topic("box-b", "#"), qos=1)
        await b.subscribe(topic("box-b", "journal/ack"), qos=1)
        async with mqtt_client(world.broker, world.ingest) as ingest:
            await ingest.publish(topic("box-b", "journal/ack"), b"ack-b", qos=1)
            await ingest.publish(topic("box-a", "journal/ack"), b"ack-a", qos=1)
        assert await until(a, b"ack-a") == [(topic("box-a", "journal/ack"), b"ack-a")]
        assert await until(b, b"ack-b") == [(topic("box-b", "journal/ack"), b"ack-b")]


async def test_services_keep_to_their_role(world: World) -> None:
    async with mqtt_client(world.broker, world.a) as box:
        await box.subscribe(topic("box-a", "#"), qos=1)
        async with mqtt_client(world.broker, world.ingest) as ingest:
            await ingest.publish(topic("box-a", "cmd/print"), b"from-ingest", qos=1)
            await ingest.publish(topic("box-a", "journal/ack"), b"ack", qos=1)
        async with mqtt_client(world.broker, world.hq) as hq:
            await hq.publish(topic("box-a", "journal/ack"), b"from-hq", qos=1)
            await hq.publish(topic("box-a", "cmd/print"), b"cmd", qos=1)
        assert await until(box, b"cmd") == [(topic("box-a", "journal/ack"), b"ack"),
                                            (topic("box-a", "cmd/print"), b"cmd")]


async def test_the_client_id_is_the_certificate_name(world: World) -> None:
    """box-b asking for box-a's client id neither takes over box-a's session nor its acks."""
    async with mqtt_client(world.broker, world.a, clean_start=False) as a:
        await a.subscribe(topic("box-a", "journal/ack"), qos=1)
        async with mqtt_client(world.broker, world.b, identifier="box-a",
                               clean_start=False) as imposter:
            await imposter.subscribe("tillbox/v1/+/journal/ack", qos=1)
            await imposter.subscribe(topic("box-b", "journal/ack"), qos=1)
            async with mqtt_client(world.broker, world.ingest) as ingest:
                await ingest.publish(topic("box-a", "journal/ack"), b"ack-a", qos=1)
                await ingest.publish(topic("box-b", "journal/ack"), b"ack-b", qos=1)
            assert await until(imposter, b"ack-b") == [(topic("box-b", "journal/ack"), b"ack-b")]
        assert await until(a, b"ack-a") == [(topic("box-a", "journal/ack"), b"ack-a")]
    assert "as box-b (p5" in world.broker.log()


async def test_a_revoked_certificate_is_refused_after_a_restart(world: World) -> None:
    async with mqtt_client(world.broker, world.a):
        pass
    world.fleet.revoke("box-a")
    world.broker.restart()
    await refused(world, world.a, "SSLV3_ALERT_CERTIFICATE_REVOKED")
    async with mqtt_client(world.broker, world.b):
        pass


async def test_a_revocation_reaches_new_connections_on_reload(world: World) -> None:
    world.fleet.revoke("box-b")
    world.broker.reload()
    await refused(world, world.b, "SSLV3_ALERT_CERTIFICATE_REVOKED")
    async with mqtt_client(world.broker, world.a):
        pass


async def test_an_expired_certificate_is_refused(world: World) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = world.fleet.box("box-old", validity=Validity(now - dt.timedelta(days=400),
                                                           now - dt.timedelta(days=35)))
    await refused(world, expired, "SSLV3_ALERT_CERTIFICATE_EXPIRED")


async def test_a_certificate_from_a_foreign_ca_is_refused(world: World,
                                                          tmp_path: Path) -> None:
    foreign = make_fleet(tmp_path / "other" / "fleet").box("box-a")
    # the foreign box trusts our broker's CA, so only the broker can be the one refusing
    mixed = Identity("box-a", world.a.ca_file, foreign.cert_file, foreign.key_file)
    await refused(world, mixed, "TLSV1_ALERT_UNKNOWN_CA")
