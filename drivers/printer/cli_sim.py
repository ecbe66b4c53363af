"""The standalone printer simulator: ``tillbox sim printer --port 9100`` prints receipts as text."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from drivers.printer.simulator import PrinterSimulator, running_simulator


def _show(receipt: str, out: TextIO) -> None:
    out.write(f"----- receipt -----\n{receipt}-------------------\n")
    out.flush()


async def serve(host: str = "127.0.0.1", port: int = 9100, *, out: TextIO = sys.stdout,
                started: asyncio.Future[PrinterSimulator] | None = None) -> None:
    """Run the simulator until cancelled, telling where to connect and printing each receipt."""
    async with running_simulator(host, port) as simulator:
        simulator.on_receipt = lambda receipt: _show(receipt, out)
        out.write(f"ESC/POS printer simulator: connect to tcp://{simulator.host}:{simulator.port}\n")
        out.flush()
        if started is not None:
            started.set_result(simulator)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``--host``/``--port`` and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="tillbox sim printer", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9100, help="TCP port (0 picks a free one)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
