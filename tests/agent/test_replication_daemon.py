"""``tillbox run`` with ``[cloud]`` enabled: the daemon runs the replication task."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import orjson
from daemonkit import running_daemon
from replkit import BOX, cloud_for, mosquitto, wait_for


def replicate_until_drained(data_dir: Path, port: int) -> dict[str, Any]:
    """Run the daemon until ``/health`` says the backlog is empty; return that ``/health``."""
    env = {"TILLBOX_CLOUD__ENABLED": "true", "TILLBOX_CLOUD__BROKER": f"mqtt://127.0.0.1:{port}",
           "TILLBOX_CLOUD__BOX_ID": BOX, "TILLBOX_CLOUD__BACKOFF_MIN_SECONDS": "0.05"}
    with running_daemon(data_dir, **env) as daemon:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            health: dict[str, Any] = httpx.get(f"{daemon.url}/health").json()
            if health["replication"]["backlog"] == 0:
                return health
            time.sleep(0.05)
    raise AssertionError("the backlog did not drain")


async def test_the_daemon_replicates_and_says_offline_when_stopped(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker, cloud_for(broker.port) as cloud:
        health = await asyncio.to_thread(replicate_until_drained, tmp_path / "data", broker.port)
        await wait_for(lambda: orjson.loads(cloud.messages("status")[-1][0])["state"]
                       == "offline", what="the offline status")
    assert health["replication"]["link"] == "connected"
    acked = health["replication"]["acked_through"]
    with closing(sqlite3.connect(tmp_path / "data" / "journal.sqlite3")) as db:
        rows = dict(db.execute("SELECT seq, body FROM entries WHERE seq <= ?", (acked,)))
    assert {seq: cloud.entries[seq] for seq in rows} == rows
    assert acked >= 2  # the initialisation and the start event (JET 1000) at least
