"""A wire-level ESC/POS receipt printer: a parser and printer model, behind a TCP 9100 server.

:class:`EscPosMachine` is sans I/O: ``feed(bytes) -> answer bytes``. It splits the stream into
commands with a real parser that knows the length of every command our encoder emits (a command
cut between two reads waits for its end), answers ``DLE EOT n`` and ``GS r n`` with the status bytes
of its faults and drawer sensor, records drawer pulses, and keeps what it printed as plain-text
receipts split at cuts, decoded with the active code page (``ESC t``; ``ESC @`` resets it to CP437).

Faults are set by tests (:meth:`EscPosMachine.set_fault`). While offline (paper out, cover open,
cutter error, offline) the printer prints and answers nothing but real-time ``DLE`` commands. Paper
can run out mid-job (``paper_lines_left``): the part already printed goes to ``interrupted`` and
what comes after stays unprinted. :class:`PrinterSimulator` serves the machine over TCP to one
client at a time, like a real network printer; ``stop()`` is the printer being unplugged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum

from drivers.errors import ProtocolError

LF, DLE, EOT, DC4, ESC, FS, GS, NUL = 0x0A, 0x10, 0x04, 0x14, 0x1B, 0x1C, 0x1D, 0x00



def _params(codes: str, count: int) -> dict[int, int]:
    return dict.fromkeys(map(ord, codes), count)


_ESC_FIXED = _params("@2im", 0) | _params("t!-EGJMRUVade{3 =", 1) | _params("c$", 2)
_ESC_FIXED[ord("p")] = 3
_GS_FIXED = _params("!BHIabfhrw", 1) | _params("LPW", 2)
_FS_FIXED = {ord("."): 0, ord("&"): 0, ord("p"): 2}
_DLE_FIXED = {EOT: 1, 0x05: 1, DC4: 3}
_FIXED = {ESC: _ESC_FIXED, GS: _GS_FIXED, FS: _FS_FIXED, DLE: _DLE_FIXED}
CODE_PAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252",
              17: "cp866", 18: "cp852", 19: "cp858"}
"""``ESC t n`` pages the simulator knows; any other page prints as CP437 and is noted."""


class Fault(StrEnum):
    """What a test can do to the printer."""

    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    CUTTER_ERROR = "cutter_error"
    OFFLINE = "offline"
    """Reports offline with no cause (self-test, feed button held)."""
    SILENT = "silent"
    """Answers nothing at all (hung, or powered off behind a live switch port)."""


@dataclass(frozen=True)
class DrawerKick:
    """One pulse on the drawer connector, with the command that asked for it."""

    pin: int
    on_ms: int
    off_ms: int
    command: bytes


def _need(buf: bytearray, i: int, length: int) -> int | None:
    return length if len(buf) - i >= length else None


def _word(buf: bytearray, i: int) -> int:
    return buf[i] + 256 * buf[i + 1]


def _until_nul(buf: bytearray, i: int, start: int) -> int | None:
    end = buf.find(NUL, i + start)
    return None if end < 0 else end + 1 - i


def _variable_length(buf: bytearray, i: int, key: tuple[int, int]) -> int | None:
    """Length of the commands whose length is in their parameters; None while incomplete."""
    if key == (ESC, ord("D")):
        return _until_nul(buf, i, 2)
    if key == (GS, ord("k")):
        if _need(buf, i, 4) is None:
            return None
        return _until_nul(buf, i, 3) if buf[i + 2] <= 6 else _need(buf, i, 4 + buf[i + 3])
    if key == (GS, ord("V")):
        return None if _need(buf, i, 3) is None else _need(buf, i, 4 if buf[i + 2] > 64 else 3)
    header = {(ESC, ord("*")): 5, (GS, ord("(")): 5, (GS, ord("v")): 8}.get(key)
    if header is None:
        raise ProtocolError(f"unknown command {bytes(key).hex(' ')}", reason="unknown_command")
    if _need(buf, i, header) is None:
        return None
    if key == (GS, ord("v")):
        return _need(buf, i, 8 + _word(buf, i + 4) * _word(buf, i + 6))
    unit = 3 if key[0] == ESC and buf[i + 2] in (32, 33) else 1
    return _need(buf, i, 5 + _word(buf, i + 3) * unit)


def command_length(buf: bytearray, i: int) -> int | None:
    """Length of the command at ``buf[i]``: None while incomplete, ProtocolError if unknown."""
    first = buf[i]
    if first in _FIXED:
        if len(buf) - i < 2:
            return None
        fixed = _FIXED[first].get(buf[i + 1])
        if fixed is not None:
            return _need(buf, i, 2 + fixed)
        return _variable_length(buf, i, (first, buf[i + 1]))
    if first < 0x20:
        return 1
    end = i
    while end < len(buf) and buf[end] >= 0x20:
        end += 1
    return end - i


class EscPosMachine:
    """The printer model: parses what the host sends, prints to text, answers status requests."""

    def __init__(self) -> None:
        self.receipts: list[str] = []
        self.interrupted: list[str] = []
        self.kicks: list[DrawerKick] = []
        self.unknown: list[bytes] = []
        self.drawer_open = False
        self.drawer_open_high = True
        self.paper_lines_left: int | None = None
        self.on_receipt: Callable[[str], None] | None = None
        self._faults: set[Fault] = set()
        self._pending = bytearray()
        self._lines: list[str] = []
        self._line = ""
        self._encoding = "cp437"
        self._qr = b""

    @property
    def faults(self) -> frozenset[Fault]:
        """The active faults."""
        return frozenset(self._faults)

    def set_fault(self, fault: Fault, active: bool = True) -> None:
        """Inject or clear a fault; clearing paper out loads a fresh roll."""
        if active:
            self._faults.add(fault)
            return
        self._faults.discard(fault)
        if fault is Fault.PAPER_OUT:
            self.paper_lines_left = None

    @property
    def offline(self) -> bool:
        """Whether the printer stopped taking print data."""
        stopping = {Fault.PAPER_OUT, Fault.COVER_OPEN, Fault.CUTTER_ERROR, Fault.OFFLINE}
        return bool(self._faults & stopping)

    @property
    def current_text(self) -> str:
        """What is printed since the last cut, as text."""
        return "".join(f"{line}\n" for line in self._lines)

    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the host and return the printer's answers."""
        self._pending += data
        answers, pos = bytearray(), 0
        while pos < len(self._pending):
            try:
                length = command_length(self._pending, pos)
            except ProtocolError:
                self.unknown.append(bytes(self._pending[pos : pos + 2]))
                length = 2
            if length is None:
                break
            answers += self._execute(bytes(self._pending[pos : pos + length]))
            pos += length
        del self._pending[:pos]
        return b"" if Fault.SILENT in self._faults else bytes(answers)

    def _execute(self, cmd: bytes) -> bytes:
        if cmd[0] == DLE:
            return self._realtime(cmd)
        if self.offline:
            return b""
        if cmd[0] in _FIXED:
            return self._command(cmd)
        if cmd[0] == LF:
            self._print_line()
        elif cmd[0] >= 0x20:
            self._line += cmd.decode(self._encoding, errors="replace")
        return b""

    def _command(self, cmd: bytes) -> bytes:
        key, arg = cmd[:2], cmd[2] if len(cmd) > 2 else 0
        if key == b"\x1dr":
            return bytes((self._transmit_status(arg),))
        if key == b"\x1b@":
            self._encoding = "cp437"
        elif key == b"\x1bt":
            self._select_page(arg)
        elif key == b"\x1bd":
            self._feed_lines(arg)
        elif key == b"\x1bp":
            self.kicks.append(DrawerKick(2 if arg in (0, 48) else 5, cmd[3] * 2, cmd[4] * 2, cmd))
        elif key == b"\x1dV":
            self._cut()
        else:
            self._graphics(key, cmd)
        return b""

    def _graphics(self, key: bytes, cmd: bytes) -> None:
        if key == b"\x1d(" and cmd[2] == ord("k") and cmd[6] == 80:
            self._qr = cmd[8:]
        elif key == b"\x1d(" and cmd[2] == ord("k") and cmd[6] == 81:
            self._print_line(f"[QR: {self._qr.decode('ascii', errors='replace')}]")
        elif key == b"\x1dv":
            self._print_line(f"[image {_word(bytearray(cmd), 4) * 8}x{_word(bytearray(cmd), 6)}]")
        elif key == b"\x1dk":
            data = cmd[3:-1] if cmd[2] <= 6 else cmd[4:]
            self._print_line(f"[barcode: {data.decode('ascii', errors='replace')}]")

    def _select_page(self, page: int) -> None:
        if page not in CODE_PAGES:
            self.unknown.append(bytes((ESC, ord("t"), page)))
        self._encoding = CODE_PAGES.get(page, "cp437")

    def _feed_lines(self, count: int) -> None:
        for _ in range(max(count, 1) if self._line else count):
            self._print_line()

    def _print_line(self, text: str | None = None) -> None:
        if text is not None and self._line:
            self._print_line()
        if self.paper_lines_left == 0:
            self._run_out()
            return
        if self.paper_lines_left is not None:
            self.paper_lines_left -= 1
        self._lines.append(self._line if text is None else text)
        self._line = ""

    def _run_out(self) -> None:
        self._faults.add(Fault.PAPER_OUT)
        if self._lines:
            self.interrupted.append(self.current_text)
        self._lines, self._line = [], ""

    def _cut(self) -> None:
        if self._line:
            self._print_line()
        while self._lines and not self._lines[-1]:
            self._lines.pop()
        if self._lines and not self.offline:
            self.receipts.append(self.current_text)
            if self.on_receipt is not None:
                self.on_receipt(self.receipts[-1])
        self._lines = []

    def _realtime(self, cmd: bytes) -> bytes:
        if cmd[1] == EOT and 1 <= cmd[2] <= 4:
            return bytes((self._realtime_status(cmd[2]),))
        if cmd[1] == DC4 and cmd[2] == 1:
            pin, time = 2 if cmd[3] == 0 else 5, cmd[4] * 100
            self.kicks.append(DrawerKick(pin, time, time, cmd))
        return b""

    def _drawer_high(self) -> bool:
        return self.drawer_open == self.drawer_open_high

    def _realtime_status(self, n: int) -> int:
        """Build a ``DLE EOT n`` answer (pattern ``0xx1xx10``) from the faults."""
        f = self._faults
        flags = {
            1: ((self._drawer_high(), 0x04), (self.offline, 0x08)),
            2: ((Fault.COVER_OPEN in f, 0x04), (Fault.PAPER_OUT in f, 0x20),
                (Fault.CUTTER_ERROR in f, 0x40)),
            3: ((Fault.CUTTER_ERROR in f, 0x08),),
            4: ((Fault.PAPER_NEAR_END in f, 0x0C), (Fault.PAPER_OUT in f, 0x60)),
        }[n]
        return 0x12 | sum(mask for active, mask in flags if active)

    def _transmit_status(self, n: int) -> int:
        """Build a ``GS r n`` answer (bits 4 and 7 clear); paper end never shows: it stops us."""
        if n in (1, 49):
            return 0x03 if Fault.PAPER_NEAR_END in self._faults else 0x00
        return 0x01 if self._drawer_high() else 0x00


class PrinterSimulator(EscPosMachine):
    """The printer model on a TCP server, serving one client at a time like a real 9100 port."""

    def __init__(self) -> None:
        super().__init__()
        self.host, self.port = "127.0.0.1", 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._one_client = asyncio.Lock()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0 picks a free port, kept in ``self.port``)."""
        self._server = await asyncio.start_server(self._serve_client, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        """Stop listening and drop every connection, like a printer being unplugged."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _serve_client(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            async with self._one_client:
                await self._converse(reader, writer)
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not writer.is_closing() and (data := await reader.read(65536)):
            answer = self.feed(data)
            if answer:
                writer.write(answer)
                await writer.drain()


@asynccontextmanager
async def running_simulator(host: str = "127.0.0.1",
                            port: int = 0) -> AsyncIterator[PrinterSimulator]:
    """Run a simulator for the length of the block (tests and the standalone command use this)."""
    simulator = PrinterSimulator()
    await simulator.start(host, port)
    try:
        yield simulator
    finally:
        await simulator.stop()
