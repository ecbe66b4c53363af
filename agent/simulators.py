"""``tillbox sim …``: run a wire-level device simulator on its own, for frontend developers.

Each command prints where a driver connects (a TCP address or a pty path), then runs until
Ctrl-C. The simulators take commands on standard input: the scanner scans each line typed,
the scale takes a weight in grams (or ``motion`` / ``still``), the printer takes faults
(``paper_out on``, ``drawer open``…, see ``drivers.printer.cli_sim``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path
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
def printer(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 9100,
    fault: Annotated[list[str] | None, typer.Option(
        help="A fault from the start (repeatable): paper_out, near_end, cover_open, offline, "
             "cutter_error, silent.")] = None,
    drawer: Annotated[str, typer.Option(help="Drawer sensor at start: open or closed.")
                      ] = "closed",
    out: Annotated[Path | None, typer.Option(
        help="Save each receipt received as .txt and .png in this directory.")] = None,
) -> None:
    """An ESC/POS network printer on TCP; prints each receipt it receives as text.

    Faults at run time, one command a line on stdin: ``paper_out on|off``, ``near_end on|off``,
    ``cover_open on|off``, ``offline on|off``, ``drawer open|closed``, ``paper N``, ``status``.
    """
    from drivers.printer.cli_sim import FAULTS, SimOptions, run

    unknown = sorted(set(fault or ()) - set(FAULTS))
    if unknown:
        raise typer.BadParameter(f"unknown {unknown}; use {sorted(FAULTS)}", param_hint="--fault")
    if drawer not in ("open", "closed"):
        raise typer.BadParameter("open or closed", param_hint="--drawer")
    run(SimOptions(host, port, tuple(fault or ()), drawer == "open", out))


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
