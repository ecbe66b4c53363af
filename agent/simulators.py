"""``tillbox sim …``: run a wire-level device simulator on its own, for frontend developers.

Each command prints where a driver connects (a TCP address or a pty path), then runs until
Ctrl-C. The pty simulators take commands on standard input: the scanner scans each line typed,
the scale takes a weight in grams (or ``motion`` / ``still``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from drivers.display.simulator import DisplaySimulator
    from drivers.scale.simulator import ScaleSimulator

sim_app = typer.Typer(help="Run a device simulator (prints where to connect).",
                      no_args_is_help=True, add_completion=False)


def _say(text: str) -> None:
    typer.echo(text)
    sys.stdout.flush()


@sim_app.command("printer")
def printer(host: str = "127.0.0.1",
            port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 9100
            ) -> None:
    """An ESC/POS network printer on TCP; prints each receipt it receives as text."""
    from drivers.printer.cli_sim import serve

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port))


@sim_app.command("scanner")
def scanner() -> None:
    """A serial (CDC) barcode scanner on a pty; every line typed on stdin is scanned."""
    from drivers.scanner.simulator import ScannerSimulator

    with ScannerSimulator() as sim:
        _say(f"barcode scanner simulator: open {sim.path} (serial); type a code and Enter")
        for line in sys.stdin:
            if line.strip():
                sim.scan(line.strip())
                _say(f"scanned {line.strip()}")


@sim_app.command("scale")
def scale(
    protocol: Annotated[str, typer.Option(help="toledo8217 or dialog06.")] = "toledo8217",
    polynomial: Annotated[str | None, typer.Option(
        help="Dialog 06 checksum polynomial, e.g. 0x1021 (from the scale maker).")] = None,
    grams: Annotated[int, typer.Option(help="Initial weight in grams.")] = 1255,
) -> None:
    """A scale on a pty; type a weight in grams, ``motion`` or ``still`` on stdin."""
    from drivers.scale.simulator import scale_simulator

    if protocol not in ("toledo8217", "dialog06"):
        raise typer.BadParameter("toledo8217 or dialog06", param_hint="--protocol")
    poly = int(polynomial, 0) if polynomial else None
    with scale_simulator(protocol, polynomial=poly) as sim:  # type: ignore[arg-type]
        sim.set_weight(grams)
        _say(f"{protocol} scale simulator: open {sim.path} (serial, 8N1 on a pty); "
             f"weight {grams} g")
        for line in sys.stdin:
            _scale_command(sim, line.strip())


def _scale_command(sim: ScaleSimulator, command: str) -> None:
    if command in ("motion", "still"):
        sim.set_motion(command == "motion")
    elif command.lstrip("-").isdigit():
        sim.set_weight(int(command))
    elif command:
        _say("expected a weight in grams, 'motion' or 'still'")
        return
    _say(f"scale: {command}")


@sim_app.command("display")
def display(seconds: Annotated[float | None, typer.Option(
        help="Stop after this many seconds (default: until Ctrl-C).")] = None) -> None:
    """A 2×20 customer pole display (Epson / CD5220) on a pty; prints the screen on change."""
    from drivers.display.simulator import DisplaySimulator

    with DisplaySimulator() as sim:
        _say(f"customer display simulator: open {sim.path} (serial)")
        _watch_screen(sim, seconds)


def _watch_screen(sim: DisplaySimulator, seconds: float | None) -> None:
    stop = threading.Event()
    deadline = None if seconds is None else time.monotonic() + seconds
    shown = sim.text
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(0.1) and (deadline is None or time.monotonic() < deadline):
            if sim.text != shown:
                shown = sim.text
                _say("+" + "-" * 20 + "+\n" + "\n".join(f"|{row}|" for row in sim.lines)
                     + "\n+" + "-" * 20 + "+")
