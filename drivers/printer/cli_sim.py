"""The standalone printer simulator: ``tillbox sim printer --port 9100``.

It says where to connect, prints each receipt it receives as text and, with ``--out DIR``, saves
it as ``receipt-0001.txt`` and ``receipt-0001.png`` (the text on the printer's 80 mm dot grid,
QR codes drawn as QR codes). Faults are injected at start (``--fault paper_out``, repeatable;
``--drawer open``) and at run time by lines on standard input, one command a line:

    paper_out on|off     near_end on|off     cover_open on|off     offline on|off
    cutter_error on|off  silent on|off       drawer open|closed    paper N (N lines left)
    status               help

Every state change is printed as ``printer: <what> <value>`` (also those the printer makes by
itself: running out of paper mid-job), so a script can wait for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from PIL import Image

from drivers.printer.simulator import EscPosMachine, Fault, PrinterSimulator, running_simulator
from drivers.receipt.document import Paper, QrCode
from drivers.receipt.png_render import LINE, MARGIN, line_strip, qr_strip

FAULTS: dict[str, Fault] = {
    "paper_out": Fault.PAPER_OUT, "near_end": Fault.PAPER_NEAR_END,
    "paper_near_end": Fault.PAPER_NEAR_END, "cover_open": Fault.COVER_OPEN,
    "offline": Fault.OFFLINE, "cutter_error": Fault.CUTTER_ERROR, "silent": Fault.SILENT}
"""Fault names accepted on the command line and on stdin."""
WATCH_INTERVAL = 0.1
"""Seconds between two looks at the printer for changes it made by itself."""
HELP = ("commands: <fault> on|off (faults: paper_out near_end cover_open offline cutter_error "
        "silent), drawer open|closed, paper N, status, help")
_QR_LINE = re.compile(r"\[QR: (.*)\]")


@dataclass
class SimOptions:
    """What the command line asks for."""

    host: str = "127.0.0.1"
    port: int = 9100
    faults: Sequence[str] = ()
    drawer_open: bool = False
    out_dir: Path | None = None


def receipt_png(receipt: str, paper: Paper = Paper.MM80) -> bytes:
    """A received receipt as PNG: its text lines on the Font A grid, QR codes drawn."""
    dots, columns = paper.dots, paper.columns
    strips: list[Image.Image] = []
    for line in receipt.splitlines():
        qr = _QR_LINE.fullmatch(line)
        if qr:
            strips.append(qr_strip(QrCode(qr.group(1)), dots))
            continue
        chunks = [line[i : i + columns] for i in range(0, len(line), columns)] or [""]
        strips += [line_strip(chunk, dots, columns, bold=False, double=False) for chunk in chunks]
    page = Image.new("L", (dots, sum(s.height for s in strips) + 2 * MARGIN + LINE), 255)
    top = MARGIN
    for strip in strips:
        page.paste(strip, (0, top))
        top += strip.height
    out = io.BytesIO()
    page.save(out, format="PNG", optimize=True)
    return out.getvalue()


@dataclass
class Console:
    """Says what happens: receipts (and their files), state changes, answers to commands."""

    out: TextIO
    out_dir: Path | None = None
    count: int = 0
    seen: dict[str, str] = field(default_factory=dict)

    def say(self, text: str) -> None:
        """Write one message and flush (a script reads it at once)."""
        self.out.write(f"{text}\n")
        self.out.flush()

    def receipt(self, receipt: str) -> None:
        """Show a finished receipt; save it as text and PNG with ``--out``."""
        self.count += 1
        self.say(f"----- receipt -----\n{receipt}-------------------")
        if self.out_dir is not None:
            stem = self.out_dir / f"receipt-{self.count:04d}"
            stem.with_suffix(".txt").write_text(receipt, encoding="utf-8")
            stem.with_suffix(".png").write_bytes(receipt_png(receipt))
            self.say(f"saved {stem}.txt {stem}.png")

    def report(self, machine: EscPosMachine) -> None:
        """Print what changed in the printer since the last report."""
        now = state_of(machine)
        for name, value in now.items():
            if self.seen.get(name) != value:
                self.say(f"printer: {name} {value}")
        self.seen = now


def state_of(machine: EscPosMachine) -> dict[str, str]:
    """The reportable state: each fault on/off and the drawer."""
    state = {name: "on" if FAULTS[name] in machine.faults else "off"
             for name in ("paper_out", "near_end", "cover_open", "offline", "cutter_error",
                          "silent")}
    state["drawer"] = "open" if machine.drawer_open else "closed"
    return state


def apply_command(machine: EscPosMachine, line: str) -> str | None:
    """Apply one stdin command; return what to say besides the state changes (or None)."""
    words = line.split()
    if not words or words == ["status"]:
        return None
    if words == ["help"]:
        return HELP
    if len(words) == 2 and words[0] in FAULTS and words[1] in ("on", "off"):
        machine.set_fault(FAULTS[words[0]], words[1] == "on")
    elif len(words) == 2 and words[0] == "drawer" and words[1] in ("open", "closed"):
        machine.drawer_open = words[1] == "open"
    elif len(words) == 2 and words[0] == "paper" and words[1].isdigit():
        machine.paper_lines_left = int(words[1])
        return f"printer: paper {words[1]} lines left"
    else:
        return f"unknown command {line.strip()!r} ({HELP})"
    return None


def read_lines(commands: TextIO) -> asyncio.Queue[str]:
    """Lines of ``commands`` read by a daemon thread (never blocks exit); ``""`` at the end."""
    loop, lines = asyncio.get_running_loop(), asyncio.Queue[str]()

    def pump() -> None:
        with contextlib.suppress(RuntimeError, OSError, ValueError):  # loop or stdin closed
            for line in iter(commands.readline, ""):
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=pump, name="printer sim stdin", daemon=True).start()
    return lines


async def control(machine: EscPosMachine, console: Console, commands: TextIO) -> None:
    """Apply the commands read from ``commands`` until it ends, reporting each change."""
    lines = read_lines(commands)
    while line := await lines.get():
        answer = apply_command(machine, line)
        if answer is not None:
            console.say(answer)
        if line.split() == ["status"]:
            console.seen = {}
        console.report(machine)


async def watch(machine: EscPosMachine, console: Console) -> None:
    """Report the changes the printer makes by itself (paper running out mid-job)."""
    while True:
        await asyncio.sleep(WATCH_INTERVAL)
        console.report(machine)


def start_state(machine: EscPosMachine, options: SimOptions) -> None:
    """Apply ``--fault`` and ``--drawer``."""
    for name in options.faults:
        machine.set_fault(FAULTS[name])
    machine.drawer_open = options.drawer_open


async def serve(host: str = "127.0.0.1", port: int = 9100, *, out: TextIO = sys.stdout,
                started: asyncio.Future[PrinterSimulator] | None = None,
                options: SimOptions | None = None, commands: TextIO | None = None) -> None:
    """Run the simulator until cancelled (see the module docstring); ``commands``: stdin."""
    options = options or SimOptions(host, port)
    console = Console(out, options.out_dir)
    async with running_simulator(options.host, options.port) as simulator:
        start_state(simulator, options)
        simulator.on_receipt = console.receipt
        console.say(f"ESC/POS printer simulator: connect to tcp://{simulator.host}:"
                    f"{simulator.port}")
        console.report(simulator)
        if started is not None:
            started.set_result(simulator)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(watch(simulator, console))
            if commands is not None:
                tasks.create_task(control(simulator, console, commands))


def run(options: SimOptions) -> int:
    """Serve with stdin as the control until Ctrl-C."""
    if options.out_dir is not None:
        options.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(serve(options=options, commands=sys.stdin))
    except KeyboardInterrupt:
        return 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options (``--help``) and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="tillbox sim printer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9100, help="TCP port (0 picks a free one)")
    parser.add_argument("--fault", action="append", default=[], choices=sorted(FAULTS),
                        help="a fault active from the start (repeatable)")
    parser.add_argument("--drawer", choices=("open", "closed"), default="closed")
    parser.add_argument("--out", type=Path, help="save each receipt as .txt and .png here")
    args = parser.parse_args(argv)
    return run(SimOptions(args.host, args.port, args.fault, args.drawer == "open", args.out))


if __name__ == "__main__":
    raise SystemExit(main())
