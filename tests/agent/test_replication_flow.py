"""The replicator against a real Mosquitto and a test cloud: drain, restarts, timeouts, nacks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from boxkit import running_box
from replkit import (
    cloud_for,
    cloud_settings,
    fill,
    mosquitto,
    replicating,
    stored_bodies,
    wait_for,
)

from agent.replication.replicator import Replicator
from agent.replication.watermark import Watermarks
from fiscal.journal import Journal


def replicator_of(box: object) -> Replicator:
    replicator = box.services.replicator  # type: ignore[attr-defined]
    assert isinstance(replicator, Replicator)
    return replicator


async def test_a_backlog_drains_in_order_exactly_once(tmp_path: Path) -> None:
    """300 entries reach the cloud as consecutive batches, each entry the very stored text."""
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port) as cloud:
        await fill(box.journal, 300)
        replicator = replicator_of(box)
        async with replicating(replicator):
            await wait_for(lambda: replicator.acked_through == box.journal.state.seq,
                           what="the backlog to drain")
            status = orjson.loads(cloud.messages("status")[-1][0])
        assert cloud.entries == await stored_bodies(box.journal)
        assert cloud.batches[0][0] == 1
        assert all(later[0] == earlier[1] + 1
                   for earlier, later in zip(cloud.batches, cloud.batches[1:], strict=False))
        assert max(last - first + 1 for first, last in cloud.batches) <= 50
        stored = await Watermarks(box.services.db).load(await box.journal.epoch())
        assert stored.acked_through == box.journal.state.seq
        assert status["state"] == "online"
        assert status["epoch"] == cloud.epoch
        await wait_for(lambda: orjson.loads(cloud.messages("status")[-1][0])["state"]
                       == "offline", what="the offline status on stopping")


async def test_a_broker_restart_resumes_from_the_watermark(tmp_path: Path) -> None:
    """Killed mid-stream and restarted on its port, the broker gets the rest: no gap, no loss.

    Batches published before the cloud is back on the new broker are lost with it: the ack
    timeout brings them back."""
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data",
                        cloud=cloud_settings(broker.port, ack_timeout_seconds=0.5)) as box, \
            cloud_for(broker.port) as cloud:
        replicator = replicator_of(box)
        stop = asyncio.Event()
        selling = asyncio.create_task(keep_writing(box.journal, stop))
        async with replicating(replicator):
            await wait_for(lambda: cloud.watermark > 100, what="replication under way")
            broker.kill()
            await wait_for(lambda: replicator.link_state != "connected", what="the link lost")
            await asyncio.sleep(0.3)
            await broker.start()
            await wait_for(lambda: replicator.counters.connections >= 2, what="a reconnection")
            stop.set()
            await selling
            await wait_for(lambda: cloud.watermark == box.journal.state.seq
                           and replicator.acked_through == box.journal.state.seq,
                           what="the cloud to catch up")
        assert cloud.entries == await stored_bodies(box.journal)
        assert replicator.counters.connection_failures >= 1


async def keep_writing(journal: Journal, stop: asyncio.Event) -> None:
    """Commit entries until told to stop (never cancelled in the middle of a commit)."""
    while not stop.is_set():
        await fill(journal, 10)
        await asyncio.sleep(0.01)


async def test_an_ack_timeout_resends_from_the_watermark(tmp_path: Path) -> None:
    """The cloud swallows the first batch's ack: after the timeout the batch goes again."""
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data",
                        cloud=cloud_settings(broker.port, ack_timeout_seconds=0.3)) as box, \
            cloud_for(broker.port, drop_acks=1) as cloud:
        await fill(box.journal, 20)
        replicator = replicator_of(box)
        async with replicating(replicator):
            await wait_for(lambda: replicator.acked_through == box.journal.state.seq,
                           what="the resend to be acknowledged")
        seq = box.journal.state.seq
        assert cloud.batches == [(1, seq), (1, seq)]
        assert replicator.counters.ack_timeouts == 1
        assert cloud.entries == await stored_bodies(box.journal)


async def test_a_nack_rewinds_to_the_expected_seq(tmp_path: Path) -> None:
    """A nack asking for seq 60 makes the next batch start at 60; the cloud ends complete."""
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port, window=1)) as box, \
            cloud_for(broker.port, nack_once_at=60) as cloud:
        await fill(box.journal, 150)
        replicator = replicator_of(box)
        async with replicating(replicator):
            await wait_for(lambda: replicator.acked_through == box.journal.state.seq,
                           what="the rewound stream to be acknowledged")
        nacked = cloud.batches.index(next(b for b in cloud.batches if b[0] <= 60 <= b[1]))
        assert cloud.batches[nacked + 1][0] == 60
        assert cloud.nacked == [60]
        assert replicator.counters.nacks >= 1
        assert cloud.entries == await stored_bodies(box.journal)


async def test_replication_over_tls_with_the_box_certificate(tmp_path: Path) -> None:
    """mqtts:// with the fleet CA and the box's client certificate (CN = box id)."""
    async with mosquitto(tmp_path / "broker", tls=True) as broker:
        assert broker.tls is not None
        settings = cloud_settings(broker.port, broker=f"mqtts://127.0.0.1:{broker.tls_port}",
                                  ca_file=broker.tls.ca, cert_file=broker.tls.box_cert,
                                  key_file=broker.tls.box_key)
        async with running_box(tmp_path / "data", cloud=settings) as box, \
                cloud_for(broker.port) as cloud:
            await fill(box.journal, 120)
            replicator = replicator_of(box)
            async with replicating(replicator):
                await wait_for(lambda: replicator.acked_through == box.journal.state.seq,
                               what="the backlog over TLS")
            assert cloud.entries == await stored_bodies(box.journal)
