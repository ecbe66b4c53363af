"""``tillbox sim …`` runs each simulator standalone and says where to connect; drivers' bytes
reach it through the real pty or TCP port."""

from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import serial

SIM = [sys.executable, "-m", "agent.cli", "sim"]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.kill()
        process.communicate(timeout=10)


def launch(started: list[subprocess.Popen[str]], *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([*SIM, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    started.append(process)
    assert process.stdout is not None
    return process, process.stdout.readline()


def read_until(process: subprocess.Popen[str], wanted: str, seconds: float = 30.0) -> str:
    """Read stdout lines until one contains ``wanted``, output ends or the deadline passes."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout

    def pump() -> None:
        for line in iter(stdout.readline, ""):
            lines.put(line)
            if wanted in line:
                return
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + seconds
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        seen.append(line)
        if not line or wanted in line:
            break
    return "".join(seen)


def test_scanner_simulator_sends_typed_codes_to_its_pty(
        started: list[subprocess.Popen[str]]) -> None:
    """A code typed on stdin arrives on the announced pty followed by CR."""
    process, banner = launch(started, "scanner")
    path = re.search(r"open (\S+)", banner)
    assert path, banner
    with serial.Serial(path.group(1), 9600, timeout=5) as port:
        assert process.stdin is not None
        process.stdin.write("3017620422003\n")
        process.stdin.flush()
        assert port.read_until(b"\r") == b"3017620422003\r"


def test_scale_simulator_answers_a_toledo_weight_request(
        started: list[subprocess.Popen[str]]) -> None:
    """W on the announced pty gets STX 01.255 CR for the default 1,255 g."""
    _, banner = launch(started, "scale", "--protocol", "toledo8217")
    path = re.search(r"open (\S+)", banner)
    assert path, banner
    with serial.Serial(path.group(1), 9600, timeout=5) as port:
        port.write(b"W")
        assert port.read_until(b"\r") == bytes.fromhex("02 30 31 2E 32 35 35 0D")


def test_display_simulator_prints_the_screen_it_is_sent(
        started: list[subprocess.Popen[str]]) -> None:
    """Epson commands written to the pty show up as the 2×20 screen on stdout."""
    process, banner = launch(started, "display", "--seconds", "20")
    path = re.search(r"open (\S+)", banner)
    assert path, banner
    # the port stays open until the screen shows: a pty hung up at once may drop unread bytes
    with serial.Serial(path.group(1), 9600, timeout=5) as port:
        port.write(b"\x1b@\x0cBaguette        1,20")
        screen = read_until(process, "|Baguette        1,20|")
    assert "|Baguette        1,20|" in screen


def test_printer_simulator_prints_received_receipts(
        started: list[subprocess.Popen[str]]) -> None:
    """ESC/POS text and a cut sent over TCP come out as a receipt on stdout."""
    process, banner = launch(started, "printer", "--port", "0")
    address = re.search(r"tcp://([\d.]+):(\d+)", banner)
    assert address, banner
    with socket.create_connection((address.group(1), int(address.group(2))), timeout=5) as conn:
        conn.sendall(b"\x1b@Bonjour tillbox\n\x1dV\x00")
    assert "Bonjour tillbox" in read_until(process, "Bonjour tillbox")
