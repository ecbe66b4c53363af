"""``tillbox run`` as a real process: ready, serving, systemd notifications, clean stop."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemonkit import READY_TIMEOUT, daemon_env, free_port, wait_ready

from fiscal.journal import Journal

STOP_TIMEOUT = 10.0


@pytest.fixture
def notify_socket() -> Iterator[socket.socket]:
    """A unix datagram socket standing in for systemd's ``NOTIFY_SOCKET``."""
    with tempfile.TemporaryDirectory(prefix="tb-") as directory:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(os.path.join(directory, "notify"))
        listener.settimeout(0.2)
        yield listener
        listener.close()


def start(data_dir: Path, port: int, **env: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir),
               "--http", f"127.0.0.1:{port}"]
    return subprocess.Popen(command, env=daemon_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def notifications(listener: socket.socket, *wanted: str, timeout: float = 5.0) -> list[str]:
    """Collect sd_notify lines until every ``wanted`` line has arrived (or the timeout)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not set(wanted) <= set(lines) and time.monotonic() < deadline:
        try:
            lines += listener.recv(4096).decode().splitlines()
        except TimeoutError:
            continue
    return lines


async def events(data_dir: Path) -> list[tuple[int, dict[str, Any]]]:
    """The (code, details) of every technical event in the journal of ``data_dir``."""
    journal = await Journal.open(data_dir)
    try:
        return [(entry.record["code"], entry.record["details"])
                async for entry in journal.entries() if entry.chain == "event"]
    finally:
        await journal.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
async def test_run_serves_then_stops_cleanly(tmp_path: Path, notify_socket: socket.socket,
                                             stop_signal: signal.Signals) -> None:
    """With no config file the daemon serves the page, notifies systemd, and exits 0 on a signal."""
    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(data_dir, port, NOTIFY_SOCKET=notify_socket.getsockname(),
                    WATCHDOG_USEC="200000")
    try:
        ready = wait_ready(process, url)
        print(f"start-to-ready: {ready:.3f} s")
        sent = notifications(notify_socket, "READY=1", "WATCHDOG=1")
        health = httpx.get(f"{url}/health").json()
        page = httpx.get(f"{url}/").text
    finally:
        process.send_signal(stop_signal)
        stopped_at = time.monotonic()
        _, stderr = process.communicate(timeout=STOP_TIMEOUT)
    print(f"{stop_signal.name}-to-exit: {time.monotonic() - stopped_at:.3f} s")

    assert process.returncode == 0, stderr
    assert sent.index("READY=1") < sent.index("WATCHDOG=1")
    assert "STOPPING=1" in notifications(notify_socket, "STOPPING=1")
    assert health["status"] == "ok"
    assert health["journal"]["seq"] == 2
    assert "Boutique de démonstration" in page
    assert f'id="global-seq">{health["journal"]["seq"]}<' in page
    assert re.search(r'data-chain="event">2<', page)
    logged = [json.loads(line)["event"] for line in stderr.splitlines() if line.strip()]
    assert {"box_starting", "box_ready", "box_stopped"} <= set(logged)
    journaled = await events(data_dir)
    assert [code for code, _ in journaled] == [260, 1000, 1001]
    assert journaled[2][1] == {"signal": stop_signal.name}


async def test_run_exits_1_when_the_port_is_taken(tmp_path: Path) -> None:
    """A box that cannot listen exits 1, says why, and journals no start event."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        process = start(tmp_path / "data", port)
        _, stderr = process.communicate(timeout=READY_TIMEOUT)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in stderr
    assert [code for code, _ in await events(tmp_path / "data")] == [260]
