"""What the replication shows: ``/metrics`` (Prometheus), ``/health`` and the status page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from boxkit import client_for, running_box
from replkit import cloud_for, cloud_settings, fill, free_port, mosquitto, replicating, wait_for

from fiscal.testing import FakeClock


def metric(text: str, name: str) -> float:
    """The value of a sample line ``name value``."""
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[-1])


async def test_metrics_show_the_backlog_until_the_cloud_acknowledges(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port), client_for(box) as client:
        await fill(box.journal, 25)
        seq = box.journal.state.seq
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert metric(text, "tillbox_replication_backlog_entries") == seq
        assert metric(text, "tillbox_journal_seq") == seq
        assert metric(text, "tillbox_replication_enabled") == 1
        assert 'tillbox_replication_link_state{state="offline"} 1.0' in text
        assert 'tillbox_journal_entries_total{chain="event"} 26.0' in text
        replicator = box.services.replicator
        assert replicator is not None
        async with replicating(replicator):
            await wait_for(lambda: replicator.acked_through == seq, what="the drain")
            text = (await client.get("/metrics")).text
        assert metric(text, "tillbox_replication_backlog_entries") == 0
        assert metric(text, "tillbox_replication_acked_through") == seq
        assert metric(text, "tillbox_replication_entries_sent_total") >= seq
        assert 'tillbox_replication_link_state{state="connected"} 1.0' in text
        assert metric(text, "tillbox_replication_last_ack_timestamp_seconds") > 0


async def test_health_and_status_page_show_the_link_backlog_and_lag(tmp_path: Path) -> None:
    """No broker listening: the link is offline, the backlog and its age grow."""
    clock = FakeClock(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC))
    async with running_box(tmp_path / "data", clock,
                           cloud=cloud_settings(free_port())) as box, \
            client_for(box) as client:
        await fill(box.journal, 3)
        replicator = box.services.replicator
        assert replicator is not None
        async with replicating(replicator):
            await wait_for(lambda: replicator.counters.connection_failures >= 1,
                           what="a failed attempt")
            clock.advance(minutes=5)
            health = (await client.get("/health")).json()
            page = (await client.get("/?lang=en")).text
        replication = health["replication"]
        assert replication["link"] in {"offline", "connecting"}
        assert replication["backlog"] == box.journal.state.seq == 4
        assert replication["acked_through"] == 0
        assert replication["last_ack_at"] is None
        assert replication["lag_seconds"] >= 300
        assert replication["box_id"] == "box-test"
        assert "Connection refused" in replication["last_error"]
        assert 'id="replication-backlog">4<' in page
        assert 'id="replication-link" data-state="' in page
        assert "Entries waiting" in page
        assert "Last acknowledgement" in page


async def test_metrics_without_replication(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, client_for(box) as client:
        text = (await client.get("/metrics")).text
        health = (await client.get("/health")).json()
    assert metric(text, "tillbox_replication_enabled") == 0
    assert "tillbox_replication_backlog_entries" not in text
    assert metric(text, "tillbox_tickets_total") == 0
    assert health["replication"] is None
