"""A pole display simulator on a real pty: interprets Epson and CD5220 commands into a 2×20 screen.

``ScreenModel`` is the sans-I/O interpreter: bytes in (any split), screen text out. It speaks the
union of both command sets, decodes text with the selected code table (CP437 after power-on,
CP858 with table 19, CP866 with table 17) and ignores bytes meant for a printer it is
daisy-chained behind (between ``ESC = 1`` and ``ESC = 2``).

``DisplaySimulator`` runs a ``ScreenModel`` on the master end of a pty; drivers open ``path``, a
stable symlink to the slave end (like ``/dev/serial/by-id``). Fault injection: ``unplug()`` /
``replug()`` (a new pty behind the same path, a power-cycled screen) and ``stall()`` /
``resume()`` (XOFF and stop reading: writes time out).

The pty pair behind a stable path is ``drivers.pty_link.PtyLink``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from drivers.pty_link import PtyLink

__all__ = ["CODE_TABLES", "DisplaySimulator", "ScreenModel"]

CODE_TABLES = {0: "cp437", 16: "cp1252", 17: "cp866", 19: "cp858"}
XON, XOFF = b"\x11", b"\x13"
MAX_QUOTED = 64  # longest ESC Q … CR accepted before the bytes count as garbage
# Commands of a fixed length: (first byte, second byte) → total length.
_FIXED = {
    (0x1B, 0x40): 2, (0x1B, 0x3D): 3, (0x1B, 0x74): 3, (0x1B, 0x63): 3, (0x1B, 0x6C): 4,
    (0x1B, 0x2A): 3, (0x1B, 0x5F): 3, (0x1F, 0x24): 4, (0x1F, 0x01): 2, (0x1F, 0x02): 2,
    (0x1F, 0x03): 2, (0x1F, 0x58): 3, (0x1F, 0x43): 3,
}


class ScreenModel:
    """The state of a 2×20 pole display, driven by the bytes it receives."""

    def __init__(self, columns: int = 20, rows: int = 2) -> None:
        self.columns, self.rows = columns, rows
        self.unknown: list[bytes] = []
        self._buffer = b""
        self.reset()

    def reset(self) -> None:
        """Power-on state (``ESC @``)."""
        self.cells = [[" "] * self.columns for _ in range(self.rows)]
        self.col = self.row = 0
        self.encoding, self.brightness, self.cursor_visible = "cp437", 4, True
        self.mode, self.selected, self.marquee = "overwrite", True, ""

    @property
    def lines(self) -> tuple[str, ...]:
        """The screen, one string per row, trailing spaces kept."""
        return tuple("".join(row) for row in self.cells)

    def feed(self, data: bytes) -> None:
        """Interpret received bytes; an incomplete command waits for the rest."""
        self._buffer += data
        while self._buffer:
            used = self._step(self._buffer)
            if used == 0:
                return
            self._buffer = self._buffer[used:]

    def _step(self, buf: bytes) -> int:
        """Interpret the command at the head of the buffer; return the bytes used (0: wait)."""
        if buf[0] in (0x1B, 0x1F):
            return self._escape(buf)
        if self.selected:
            self._byte(buf[0])
        return 1

    def _escape(self, buf: bytes) -> int:
        """An ESC or US command, fixed length or ``ESC Q x … CR``."""
        if len(buf) < 2:
            return 0
        if buf[:2] == b"\x1bQ":
            return self._quoted(buf)
        length = _FIXED.get((buf[0], buf[1]))
        if length is None:
            self.unknown.append(buf[:2])
            return 2
        if len(buf) < length:
            return 0
        if self.selected or buf[:2] == b"\x1b=":
            self._command(buf[:length])
        return length

    def _quoted(self, buf: bytes) -> int:
        """``ESC Q A|B|D text CR``: write line 1, line 2, or the marquee."""
        end = buf.find(b"\r", 3)
        if end < 0:
            if len(buf) > MAX_QUOTED:
                self.unknown.append(buf[:3])
                return 3
            return 0
        if self.selected:
            self._write_quoted(buf[2:3], buf[3:end].decode(self.encoding, "replace"))
        return end + 1

    def _write_quoted(self, which: bytes, text: str) -> None:
        """Set a whole line from an ``ESC Q`` command."""
        if which == b"D":
            self.marquee = text
        if which in (b"A", b"D"):
            self.cells[0] = list(text[: self.columns].ljust(self.columns))
        elif which == b"B":
            self.cells[1] = list(text[: self.columns].ljust(self.columns))
        else:
            self.unknown.append(b"\x1bQ" + which)

    def _command(self, cmd: bytes) -> None:
        """Apply a complete fixed-length command."""
        key, arg = cmd[:2], cmd[2:]
        actions: dict[bytes, Callable[[], None]] = {
            b"\x1b@": self.reset,
            b"\x1b=": lambda: setattr(self, "selected", arg[0] == 2),
            b"\x1bt": lambda: self._code_table(arg[0]),
            b"\x1bc": lambda: self._code_table(arg[0]),
            b"\x1bl": lambda: self._move(arg[0], arg[1]),
            b"\x1f$": lambda: self._move(arg[0], arg[1]),
            b"\x1b*": lambda: setattr(self, "brightness", arg[0]),
            b"\x1fX": lambda: setattr(self, "brightness", arg[0]),
            b"\x1b_": lambda: setattr(self, "cursor_visible", bool(arg[0])),
            b"\x1fC": lambda: setattr(self, "cursor_visible", bool(arg[0])),
            b"\x1f\x01": lambda: setattr(self, "mode", "overwrite"),
            b"\x1f\x02": lambda: setattr(self, "mode", "vscroll"),
            b"\x1f\x03": lambda: setattr(self, "mode", "hscroll"),
        }
        actions[key]()

    def _code_table(self, number: int) -> None:
        """Select a code table; an unknown number is recorded and leaves the table as it is."""
        if number in CODE_TABLES:
            self.encoding = CODE_TABLES[number]
        else:
            self.unknown.append(bytes((0x1B, 0x74, number)))

    def _move(self, column: int, row: int) -> None:
        """Move the cursor (1-based), clamped to the screen."""
        self.col = min(max(column, 1), self.columns) - 1
        self.row = min(max(row, 1), self.rows) - 1

    def _byte(self, byte: int) -> None:
        """A control character or a printable one."""
        if byte == 0x0C:
            self.cells = [[" "] * self.columns for _ in range(self.rows)]
            self.col = self.row = 0
        elif byte == 0x18:
            self.cells[self.row] = [" "] * self.columns
            self.col = 0
        elif byte == 0x0D:
            self.col = 0
        elif byte == 0x0A:
            self.row = min(self.row + 1, self.rows - 1)
        elif byte == 0x08:
            self.col = max(self.col - 1, 0)
        elif byte >= 0x20:
            self._put(bytes((byte,)).decode(self.encoding, "replace"))

    def _put(self, char: str) -> None:
        """Write a character at the cursor; past the line end, wrap or scroll per the mode."""
        if self.col >= self.columns:
            if self.mode == "hscroll":
                self.cells[self.row] = [*self.cells[self.row][1:], " "]
                self.col = self.columns - 1
            else:
                self.col, self.row = 0, (self.row + 1) % self.rows
        self.cells[self.row][self.col] = char
        self.col += 1


class DisplaySimulator:
    """A pole display on a pty, showing what the driver sent; use as a context manager."""

    def __init__(self, columns: int = 20, rows: int = 2) -> None:
        self.model = ScreenModel(columns, rows)
        self.link = PtyLink("ttyDISPLAY")
        self.received = bytearray()
        self._changed = threading.Condition()
        self._stalled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="display-sim", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        """Where the driver connects."""
        return self.link.path

    @property
    def lines(self) -> tuple[str, ...]:
        """The screen now, one string per row."""
        with self._changed:
            return self.model.lines

    @property
    def text(self) -> str:
        """The screen now as text, rows separated by newlines."""
        return "\n".join(self.lines)

    def wait_for(self, lines: tuple[str, ...], timeout: float = 5.0) -> bool:
        """Wait until the screen shows these lines (padded to the width); False on timeout."""
        wanted = tuple(line.ljust(self.model.columns) for line in lines)
        with self._changed:
            return self._changed.wait_for(lambda: self.model.lines == wanted, timeout)

    def unplug(self) -> None:
        """Pull the cable: the driver's writes fail and its path is gone."""
        self.link.unplug()

    def replug(self) -> None:
        """Plug a power-cycled display back in, at the same path."""
        with self._changed:
            self.model = ScreenModel(self.model.columns, self.model.rows)
        self.link.plug()

    def stall(self) -> None:
        """Stop taking bytes (XOFF, then no reads): the driver's writes time out."""
        self._stalled.set()
        self.link.write(XOFF)

    def resume(self) -> None:
        """Take bytes again (XON)."""
        self._stalled.clear()
        self.link.write(XON)

    def close(self) -> None:
        """Stop the simulator thread and remove the pty."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.link.close()

    def __enter__(self) -> DisplaySimulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _serve(self) -> None:
        """Read and interpret bytes until closed."""
        while not self._stop.is_set():
            if self._stalled.is_set() or not self.link.plugged:
                self._stop.wait(0.02)
                continue
            data = self.link.read(0.05)
            if data:
                with self._changed:
                    self.received += data
                    self.model.feed(data)
                    self._changed.notify_all()
