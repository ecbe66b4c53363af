"""``tillbox sim printer`` as a real subprocess: faults from the command line and from stdin,
state changes on stdout, receipts saved as text and PNG; the printer answers on TCP accordingly."""

from __future__ import annotations

import io
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from escpos.printer import Dummy
from PIL import Image

from drivers.printer.cli_sim import receipt_png

SIM = [sys.executable, "-m", "agent.cli", "sim", "printer", "--port", "0"]
WAIT = 20.0
DLE_EOT = b"\x10\x04"


class Simulator:
    """The subprocess, its stdout lines in a queue, and a TCP connection to it."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([*SIM, *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        banner = self.expect("connect to tcp://")
        address = re.search(r"tcp://([\d.]+):(\d+)", banner)
        assert address, banner
        self.conn = socket.create_connection((address.group(1), int(address.group(2))), 5)
        self.conn.settimeout(5)

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, ""):
            self.lines.put(line.rstrip("\n"))

    def expect(self, wanted: str) -> str:
        """The next stdout line containing ``wanted`` (earlier lines are skipped)."""
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if wanted in line:
                return line
        raise AssertionError(f"no line with {wanted!r}")

    def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def status(self, n: int) -> int:
        """The answer byte to ``DLE EOT n``."""
        self.conn.sendall(DLE_EOT + bytes((n,)))
        return self.conn.recv(1)[0]

    def close(self) -> None:
        self.conn.close()
        self.process.kill()
        self.process.communicate(timeout=10)


@pytest.fixture
def started() -> Iterator[list[Simulator]]:
    simulators: list[Simulator] = []
    yield simulators
    for simulator in simulators:
        simulator.close()


def job(*lines: str, qr: str | None = None) -> bytes:
    dummy = Dummy()
    dummy.hw("INIT")
    dummy.charcode("CP858")
    for line in lines:
        dummy.textln(line)
    if qr:
        dummy.qr(qr, native=True)
    dummy.cut()
    return bytes(dummy.output)


def test_faults_at_start_and_on_stdin(started: list[Simulator], tmp_path: Path) -> None:
    """``--fault paper_out`` holds from the start; stdin commands change the printer's answers
    and each change is printed; a receipt is shown and saved as .txt and .png."""
    sim = Simulator("--fault", "paper_out", "--out", str(tmp_path / "out"))
    started.append(sim)
    sim.expect("printer: paper_out on")
    assert sim.status(2) == 0x12 | 0x20  # offline cause: paper end
    assert sim.status(1) & 0x08  # offline
    sim.command("paper_out off")
    sim.expect("printer: paper_out off")
    assert (sim.status(1), sim.status(2)) == (0x12, 0x12)
    sim.command("cover_open on")
    sim.expect("printer: cover_open on")
    assert sim.status(2) == 0x12 | 0x04
    sim.command("cover_open off")
    sim.command("near_end on")
    sim.expect("printer: near_end on")
    assert sim.status(4) == 0x12 | 0x0C
    sim.command("drawer open")
    sim.expect("printer: drawer open")
    assert sim.status(1) == 0x12 | 0x04
    sim.command("offline on")
    sim.expect("printer: offline on")
    sim.command("offline off")
    sim.expect("printer: offline off")
    sim.command("jam on")
    assert "unknown command 'jam on'" in sim.expect("unknown command")

    sim.conn.sendall(job("Café crème   3,50 €", qr="https://receipts.example/demo/R1/7"))
    saved = sim.expect("saved ")
    assert saved.endswith("receipt-0001.txt " + str(tmp_path / "out" / "receipt-0001.png"))
    text = (tmp_path / "out" / "receipt-0001.txt").read_text(encoding="utf-8")
    assert text == "Café crème   3,50 €\n[QR: https://receipts.example/demo/R1/7]\n"
    with Image.open(tmp_path / "out" / "receipt-0001.png") as png:
        assert png.width == 576
        assert png.height > 200  # two text lines and a QR code


def test_paper_running_out_mid_job_is_reported(started: list[Simulator]) -> None:
    """``paper 2`` leaves two lines of paper: a longer job runs it out, and that is printed."""
    sim = Simulator()
    started.append(sim)
    sim.expect("printer: paper_out off")
    sim.command("paper 2")
    sim.expect("printer: paper 2 lines left")
    sim.conn.sendall(job("one", "two", "three", "four"))
    sim.expect("printer: paper_out on")
    assert sim.status(2) == 0x12 | 0x20


def test_unknown_fault_on_the_command_line_is_refused() -> None:
    result = subprocess.run([*SIM, "--fault", "jam"], capture_output=True, text=True,
                            timeout=WAIT, check=False)
    assert result.returncode == 2
    assert "--fault" in result.stderr


def test_received_receipt_png_draws_its_qr_code() -> None:
    """The PNG of a received receipt is 576 dots wide; a QR line becomes a QR code's height."""
    with Image.open(io.BytesIO(receipt_png("Merci !\n"))) as plain, \
            Image.open(io.BytesIO(receipt_png("Merci !\n[QR: https://r.example/1]\n"))) as with_qr:
        assert plain.width == with_qr.width == 576
        assert with_qr.height - plain.height > 100
