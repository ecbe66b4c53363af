"""Tail protection and refusals: what stops the box from trusting its journal or its link."""

from __future__ import annotations

import asyncio
from pathlib import Path

from boxkit import frontend, running_box
from replkit import BOX, cloud_for, cloud_settings, fill, mosquitto, replicating, wait_for
from saleskit import journal_events, problem

from agent.observability import INTEGRITY_FAILURE
from agent.replication.replicator import REFUSED_ALARM, TAIL_ALARM, Replicator
from agent.replication.watermark import Watermarks


def replicator_of(box: object) -> Replicator:
    replicator = box.services.replicator  # type: ignore[attr-defined]
    assert isinstance(replicator, Replicator)
    return replicator


def alarm_codes(box: object) -> list[str]:
    return [alarm.code for alarm in box.health.alarms]  # type: ignore[attr-defined]


async def test_a_journal_behind_the_cloud_stops_fiscal_writes_at_start(tmp_path: Path) -> None:
    """A journal restored from an old backup ends before the cloud's watermark: alarm, 409."""
    settings = cloud_settings(1883)
    async with running_box(tmp_path / "data", cloud=settings) as box:
        await fill(box.journal, 5)
        epoch = await box.journal.epoch()
        await Watermarks(box.services.db).advance(epoch, box.journal.state.seq + 40, "then")
        assert alarm_codes(box) == []
    async with running_box(tmp_path / "data", cloud=settings) as box:
        assert alarm_codes(box) == [TAIL_ALARM]
        [event] = await journal_events(box, INTEGRITY_FAILURE)
        assert event["details"]["scope"] == "replication"
        assert event["details"]["acked_through"] == event["details"]["journal_seq"] + 40
        async with frontend(box) as client:
            problem(await client.post("/v1/cash-sessions", json={"float": 0}), 409,
                    "integrity_alarm")
            health = (await client.get("/health")).json()
        assert health["status"] == "alarm"
        assert health["replication"]["acked_through"] > health["journal"]["seq"]


async def test_an_ack_beyond_the_journal_raises_the_alarm(tmp_path: Path) -> None:
    """The cloud acknowledging seqs the box never wrote means the journal lost its tail."""
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port) as cloud:
        replicator = replicator_of(box)
        async with replicating(replicator):
            await wait_for(lambda: replicator.acked_through == box.journal.state.seq,
                           what="the first ack")
            seq = box.journal.state.seq
            await cloud.send("journal/ack", {"epoch": cloud.epoch, "acked_through": seq + 7})
            await wait_for(lambda: TAIL_ALARM in alarm_codes(box)
                           and replicator.acked_through == seq + 7, what="the alarm")
        assert not box.health.fiscal_writes_allowed
        assert replicator.acked_through == seq + 7
        assert len(await journal_events(box, INTEGRITY_FAILURE)) == 1


async def test_an_ack_of_another_epoch_is_ignored(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port, drop_acks=1) as cloud:
        replicator = replicator_of(box)
        async with replicating(replicator):
            await wait_for(lambda: bool(cloud.batches), what="the first batch")
            await cloud.send("journal/ack", {"epoch": "another", "acked_through": 1})
            await cloud.send("journal/ack", {"epoch": cloud.epoch, "acked_through": "1"})
            await asyncio.sleep(0.2)
            assert replicator.acked_through == 0
        assert alarm_codes(box) == []


ACL_WITHOUT_JOURNAL = """\
pattern read tillbox/v1/%c/#
pattern write tillbox/v1/%c/status
pattern write tillbox/v1/%c/config/reported
pattern write tillbox/v1/%c/cmd-res/#
"""


async def test_a_refused_publish_is_an_alarm_not_a_retry_loop(tmp_path: Path) -> None:
    """The broker answers PUBACK 0x87 (not authorised): alarm once, then a long wait."""
    async with mosquitto(tmp_path / "broker", acl=ACL_WITHOUT_JOURNAL) as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box:
        replicator = replicator_of(box)
        async with replicating(replicator):
            await wait_for(lambda: replicator.link_state == "refused", what="the refusal")
            await asyncio.sleep(0.5)  # backoff_min is 0.05 s: a retry loop would show by now
            snapshot = await replicator.snapshot()
        assert alarm_codes(box) == [REFUSED_ALARM]
        assert "0x87" in box.health.alarms[0].message
        assert replicator.counters.connections == 1
        assert replicator.counters.refusals == 1
        assert snapshot.link == "refused"
        assert snapshot.acked_through == 0


async def test_a_refused_connection_is_refused_too(tmp_path: Path) -> None:
    """A broker refusing the box's credentials (CONNACK 0x87) is not retried at once either."""
    async with mosquitto(tmp_path / "broker") as broker:
        broker.config.write_text(broker.config.read_text().replace(
            "allow_anonymous true", "allow_anonymous false"))
        broker.kill()
        await broker.start()
        async with running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box:
            replicator = replicator_of(box)
            async with replicating(replicator):
                await wait_for(lambda: replicator.link_state == "refused", what="the refusal")
                await asyncio.sleep(0.3)
            assert replicator.counters.connections == 0
            assert replicator.counters.refusals == 1
            assert BOX in replicator.prefix
