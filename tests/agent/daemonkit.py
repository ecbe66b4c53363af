"""Test kit for a real ``tillbox run`` process: start it, wait for ``/health``, pair, stop it.

Used by the tests that must go through a real socket (the end-to-end trading day, the
schemathesis fuzz run). Import as ``daemonkit`` from tests in ``tests/agent``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT = 20.0
ADMIN_PIN = "123456"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Daemon:
    """A running daemon: its process, base URL and data directory."""

    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    ready_seconds: float = 0.0

    def pair(self, name: str = "caisse 1") -> str:
        """Pair a frontend with the code read off the status page; return its token."""
        page = httpx.get(f"{self.url}/").text
        match = re.search(r'id="pairing-code">(\d{6})<', page)
        assert match, "no pairing code on the status page"
        answer = httpx.post(f"{self.url}/v1/pairing", json={"code": match[1], "name": name})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token

    def signed_in(self, user: str = "admin", pin: str = ADMIN_PIN,
                  name: str = "caisse 1") -> httpx.Client:
        """A client of a newly paired frontend with ``user`` signed in."""
        client = httpx.Client(base_url=self.url, timeout=30,
                              headers={"Authorization": f"Bearer {self.pair(name)}"})
        answer = client.post("/v1/session", json={"user_id": user, "pin": pin})
        assert answer.status_code == 200, answer.text
        return client


def daemon_env(**extra: str) -> dict[str, str]:
    """The caller's environment without TILLBOX_* settings, plus ``extra``."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("TILLBOX_") and name not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    return env | {"TILLBOX_ACCESS__INITIAL_ADMIN_PIN": ADMIN_PIN} | extra


def wait_ready(process: subprocess.Popen[str], url: str) -> float:
    """Poll ``/health`` until it answers 200; return the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < READY_TIMEOUT:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise AssertionError("the daemon did not become ready")


@contextmanager
def running_daemon(data_dir: Path, **env: str) -> Iterator[Daemon]:
    """``tillbox run`` on a free port over ``data_dir``; SIGTERM and wait on exit."""
    port = free_port()
    command = [sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir),
               "--http", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, env=daemon_env(**env), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    daemon = Daemon(process, f"http://127.0.0.1:{port}", data_dir)
    try:
        daemon.ready_seconds = wait_ready(process, daemon.url)
        yield daemon
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0, stderr
