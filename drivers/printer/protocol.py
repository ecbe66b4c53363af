"""The async Protocol every receipt printer driver follows (network, USB, serial, device file)."""

from __future__ import annotations

from typing import Protocol

from drivers.printer.status import PrinterStatus
from drivers.states import DeviceState


class ReceiptPrinter(Protocol):
    """An ESC/POS receipt printer with its cash drawer connector.

    Errors are those of :mod:`drivers.errors`: a fault the printer reports (paper out, cover
    open…) is a ``DeviceFault`` whose ``reason`` matches the ``error(reason)`` state; an absent or
    silent printer is ``DeviceUnavailable`` / ``DeviceTimeout``.
    """

    @property
    def state(self) -> DeviceState:
        """The printer's current state (ready, busy, error(reason), unavailable(reason)…)."""
        ...

    async def print_job(self, job_id: str, data: bytes) -> None:
        """Send one encoded job and return once the printer reports it printed.

        Raises ``DeviceFault`` if the printer is faulty before or after the job, and
        ``DeviceUnavailable``/``DeviceTimeout`` if the connection is lost or the printer is silent:
        the job may then be partly printed, and the caller decides about a reprint.
        """
        ...

    async def status(self) -> PrinterStatus:
        """Ask the printer for its real-time status."""
        ...

    async def kick_drawer(self, pin: int, on_ms: int = 50, off_ms: int = 50) -> None:
        """Pulse drawer connector pin 2 or 5 (never during a job)."""
        ...
