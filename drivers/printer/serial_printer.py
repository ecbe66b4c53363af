"""Serial ESC/POS printers.

:class:`SerialPrinter` is the shared :class:`~drivers.printer.stream.StreamPrinter` over a
:class:`SerialLink`.

:class:`SerialLink` is a :class:`~drivers.serial_port.SerialPort` (pyserial in ONE worker thread,
every call with a timeout) seen as a :class:`PrinterLink`. Errors are those of ``SerialPort``:
``DeviceUnavailable`` (``not_found``, ``open_failed``, ``io_error``: the port is closed and
reopened later), except that any silence becomes ``DeviceTimeout(reason="offline")``. On a pty
use 8N1 (the default): reopening a pty with other settings fails (PERIPHERALS.md).
"""

from __future__ import annotations

from drivers.errors import DeviceTimeout
from drivers.printer.stream import PrinterLink, StreamPrinter
from drivers.serial_port import SerialPort, SerialSettings
from drivers.serial_port import os_error_reason as os_error_reason
from drivers.states import Backoff


class SerialLink:
    """An open serial port as a :class:`PrinterLink`; silence is ``offline``."""

    def __init__(self, port: SerialPort) -> None:
        self._port, self.path = port, port.name

    @classmethod
    async def open(cls, path: str, baudrate: int = 9600, *, rtscts: bool = False,
                   xonxoff: bool = False) -> SerialLink:
        """Open ``path`` 8N1, or raise ``DeviceUnavailable(not_found|open_failed)``."""
        settings = SerialSettings(baudrate, rtscts=rtscts, xonxoff=xonxoff)
        return cls(await SerialPort.open(path, settings))

    async def send(self, data: bytes, timeout: float) -> None:
        """Write ``data``; ``DeviceTimeout(offline)`` when the printer does not take it."""
        try:
            await self._port.write(data, timeout)
        except DeviceTimeout as exc:
            raise DeviceTimeout(f"{self.path}: the printer does not take data",
                                reason="offline") from exc

    async def receive(self, size: int, timeout: float) -> bytes:
        """Read exactly ``size`` bytes; ``DeviceTimeout(offline)`` if they do not all come."""
        try:
            return await self._port.read(size, timeout)
        except DeviceTimeout as exc:
            raise DeviceTimeout(f"{self.path}: no answer within {timeout} s",
                                reason="offline") from exc

    async def close(self) -> None:
        """Close the port and stop the worker thread (never raises)."""
        await self._port.close()


class SerialPrinter(StreamPrinter):
    """An ESC/POS printer on a serial port (``/dev/ttyS0``, ``/dev/ttyUSB0``, a pty…)."""

    def __init__(self, path: str, baudrate: int = 9600, *, rtscts: bool = False,
                 xonxoff: bool = False, timeout: float = 3.0, job_timeout: float = 60.0,
                 poll_interval: float = 10.0, backoff: Backoff | None = None) -> None:
        async def connect() -> PrinterLink:
            return await SerialLink.open(path, baudrate, rtscts=rtscts, xonxoff=xonxoff)

        super().__init__(connect, name=path, timeout=timeout, job_timeout=job_timeout,
                         poll_interval=poll_interval, backoff=backoff)
        self.path = path
