"""A replacement box waiting for its handover keeps systemd from timing its start out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from boxkit import box_settings
from replkit import cloud_settings, mosquitto

from agent.composition import compose
from fiscal.journal import DB_FILE


@pytest.fixture
def systemd_socket() -> Iterator[socket.socket]:
    """A unix datagram socket standing in for systemd's ``NOTIFY_SOCKET``."""
    with tempfile.TemporaryDirectory(prefix="tb-") as directory:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(os.path.join(directory, "notify"))
        listener.setblocking(False)
        yield listener
        listener.close()


async def test_a_box_waiting_for_its_handover_extends_its_start_and_writes_no_journal(
        tmp_path: Path, systemd_socket: socket.socket,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with mosquitto(tmp_path / "broker") as broker:  # no cloud answers there
        monkeypatch.setenv("NOTIFY_SOCKET", systemd_socket.getsockname())  # not the broker's
        settings = box_settings(tmp_path / "box").model_copy(
            update={"cloud": cloud_settings(broker.port, replaces="lyon-r1-old")})

        async def start() -> None:
            async with compose(settings):
                raise AssertionError("the box started without a handover")

        starting = asyncio.create_task(start())
        try:
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(10):
                datagram = (await loop.sock_recv(systemd_socket, 4096)).decode()
            await asyncio.sleep(0.3)
            assert not starting.done()
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
    lines = datagram.splitlines()
    assert "EXTEND_TIMEOUT_USEC=60000000" in lines
    assert "STATUS=waiting for the cloud's handover of box lyon-r1-old" in lines
    assert not (tmp_path / "box" / DB_FILE).exists()
