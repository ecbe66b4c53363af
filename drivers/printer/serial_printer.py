"""Serial ESC/POS printers.

:class:`SerialPrinter` is the shared :class:`~drivers.printer.stream.StreamPrinter` over a
:class:`SerialLink`.

:class:`SerialLink` moves bytes on a pyserial port from ONE worker thread (a single-thread
executor that also serialises access); every call has a timeout. pyserial/OS/termios errors
become ``DeviceUnavailable`` (``not_found``, ``open_failed``, ``io_error``: the port is closed and
reopened later), silence becomes ``DeviceTimeout(reason="offline")``. On a pty use 8N1 (the
default): reopening a pty with other settings fails (PERIPHERALS.md).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import termios
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any, TypeVar

import serial

from drivers.errors import DeviceTimeout, DeviceUnavailable
from drivers.printer.stream import PrinterLink, StreamPrinter
from drivers.states import Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")
PORT_ERRORS = (serial.SerialException, OSError, termios.error)
"""What pyserial lets escape: its own errors, OS errors and raw termios errors."""


def os_error_reason(exc: BaseException) -> str:
    """``not_found`` when the path is missing, else ``open_failed``."""
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    return "not_found" if code == errno.ENOENT else "open_failed"


class SerialLink:
    """An open pyserial port driven from one worker thread; a :class:`PrinterLink`."""

    def __init__(self, port: Any, executor: ThreadPoolExecutor, path: str) -> None:
        self._port, self._executor, self.path = port, executor, path

    @classmethod
    async def open(cls, path: str, baudrate: int = 9600, *, rtscts: bool = False,
                   xonxoff: bool = False) -> SerialLink:
        """Open ``path`` 8N1, or raise ``DeviceUnavailable(not_found|open_failed)``."""
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"printer {path}")

        def open_port() -> Any:
            return serial.Serial(path, baudrate=baudrate, timeout=0, write_timeout=1.0,
                                 rtscts=rtscts, xonxoff=xonxoff)

        try:
            port = await asyncio.get_running_loop().run_in_executor(executor, open_port)
        except PORT_ERRORS as exc:
            executor.shutdown(wait=True)
            raise DeviceUnavailable(f"{path}: {exc}", reason=os_error_reason(exc)) from exc
        return cls(port, executor, path)

    async def send(self, data: bytes, timeout: float) -> None:
        """Write ``data``; ``DeviceTimeout(offline)`` when the printer does not take it."""
        await self._io(lambda: _write(self._port, data, timeout))

    async def receive(self, size: int, timeout: float) -> bytes:
        """Read exactly ``size`` bytes; ``DeviceTimeout(offline)`` if they do not all come."""
        data = await self._io(lambda: _read(self._port, size, timeout))
        if len(data) < size:
            raise DeviceTimeout(f"{self.path}: no answer within {timeout} s", reason="offline")
        return data

    async def close(self) -> None:
        """Close the port and stop the worker thread (never raises)."""
        with suppress(*PORT_ERRORS):
            self._port.cancel_read()
        with suppress(*PORT_ERRORS):
            await asyncio.get_running_loop().run_in_executor(self._executor, self._port.close)
        self._executor.shutdown(wait=True)

    async def _io(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except serial.SerialTimeoutException as exc:
            raise DeviceTimeout(f"{self.path}: the printer does not take data",
                                reason="offline") from exc
        except PORT_ERRORS as exc:
            raise DeviceUnavailable(f"{self.path}: {exc}", reason="io_error") from exc


def _write(port: Any, data: bytes, timeout: float) -> None:
    """Blocking: write everything within ``timeout`` (pyserial raises on a write timeout)."""
    if port.write_timeout != timeout:
        port.write_timeout = timeout
    port.write(data)


def _read(port: Any, size: int, timeout: float) -> bytes:
    """Blocking: read up to ``size`` bytes, waiting at most ``timeout`` in all."""
    if port.timeout != timeout:
        port.timeout = timeout
    data: bytes = port.read(size)
    return data


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
