"""ESC/POS printers behind a device file (``/dev/usb/lp0``, the kernel ``usblp`` driver).

Two cases, chosen by configuration (the kernel and the printer decide, not us):

- **Bidirectional** (:class:`FilePrinter`): the file is opened read-write and ``usblp`` hands the
  printer's answers back through ``read()``. It is then the same driver as the serial and network
  ones (:class:`~drivers.printer.serial_printer.StreamPrinter`): status checks around each job,
  ``GS r 1`` barrier, drawer sensor.
- **Write-only** (:class:`WriteOnlyFilePrinter`): the printer (or the kernel) gives no answers.
  Jobs are written and are "done" once the kernel took them; nothing confirms they printed.
  The state is ``ready`` with detail ``status_unknown`` while writes succeed, ``unavailable`` when
  the file cannot be opened or written; :meth:`WriteOnlyFilePrinter.status` raises
  ``DeviceUnavailable(reason="status_unknown")``, so a drawer sensor is unavailable too. The job
  journal cannot detect paper out on such a printer: prefer the bidirectional mode.

All blocking calls run in one worker thread per printer, on a non-blocking fd with ``select``
and a timeout; OS errors become ``DeviceUnavailable`` and silence ``DeviceTimeout(offline)``.
USB through pyusb (detaching ``usblp``) is not in this module.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import TypeVar

from drivers.errors import DeviceTimeout, DeviceUnavailable
from drivers.printer.serial_printer import os_error_reason
from drivers.printer.status import PrinterStatus, drawer_kick
from drivers.printer.stream import PrinterLink, StreamPrinter
from drivers.states import CONNECTING, Backoff, DeviceState, Status, unavailable

T = TypeVar("T")
STATUS_UNKNOWN = DeviceState(Status.READY, None, "status_unknown")
"""The state of a write-only printer that takes data: usable, but nothing is confirmed."""
_EMPTY_READ_WAIT = 0.01
"""Seconds to wait after a read that returned nothing (EOF on a file that cannot answer)."""


class FileLink:
    """A device file opened non-blocking, driven from one worker thread; a ``PrinterLink``."""

    def __init__(self, fd: int, executor: ThreadPoolExecutor, path: str) -> None:
        self._fd, self._executor, self.path = fd, executor, path

    @classmethod
    async def open(cls, path: str, *, readable: bool = True) -> FileLink:
        """Open ``path`` (read-write or write-only), or raise ``DeviceUnavailable``."""
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"printer {path}")
        flags = (os.O_RDWR if readable else os.O_WRONLY) | os.O_NONBLOCK | os.O_NOCTTY
        try:
            fd = await asyncio.get_running_loop().run_in_executor(
                executor, lambda: os.open(path, flags))
        except OSError as exc:
            executor.shutdown(wait=True)
            raise DeviceUnavailable(f"{path}: {exc}", reason=os_error_reason(exc)) from exc
        return cls(fd, executor, path)

    async def send(self, data: bytes, timeout: float) -> None:
        """Write all of ``data`` within ``timeout`` seconds."""
        if not await self._io(lambda: _write_all(self._fd, data, timeout)):
            raise DeviceTimeout(f"{self.path}: the printer does not take data", reason="offline")

    async def receive(self, size: int, timeout: float) -> bytes:
        """Read exactly ``size`` bytes within ``timeout`` seconds."""
        data = await self._io(lambda: _read_exactly(self._fd, size, timeout))
        if len(data) < size:
            raise DeviceTimeout(f"{self.path}: no answer within {timeout} s", reason="offline")
        return data

    async def close(self) -> None:
        """Close the file and stop the worker thread (never raises)."""
        with suppress(OSError):
            await asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: os.close(self._fd))
        self._executor.shutdown(wait=True)

    async def _io(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except OSError as exc:
            raise DeviceUnavailable(f"{self.path}: {exc}", reason="io_error") from exc


def _write_all(fd: int, data: bytes, timeout: float) -> bool:
    """Blocking: write ``data``; False if the file stopped taking it before ``timeout``."""
    deadline, view = time.monotonic() + timeout, memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
            return False
        with suppress(BlockingIOError):
            view = view[os.write(fd, view):]
    return True


def _read_exactly(fd: int, size: int, timeout: float) -> bytes:
    """Blocking: read up to ``size`` bytes, waiting at most ``timeout`` in all."""
    deadline, data = time.monotonic() + timeout, b""
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        try:
            chunk = os.read(fd, size - len(data))
        except BlockingIOError:
            continue
        if not chunk:
            time.sleep(min(_EMPTY_READ_WAIT, max(remaining, 0)))
        data += chunk
    return data


class FilePrinter(StreamPrinter):
    """A bidirectional printer behind a device file: the full serial/network driver."""

    def __init__(self, path: str = "/dev/usb/lp0", *, timeout: float = 3.0,
                 job_timeout: float = 60.0, poll_interval: float = 10.0,
                 backoff: Backoff | None = None) -> None:
        async def connect() -> PrinterLink:
            return await FileLink.open(path)

        super().__init__(connect, name=path, timeout=timeout, job_timeout=job_timeout,
                         poll_interval=poll_interval, backoff=backoff)
        self.path = path


class WriteOnlyFilePrinter:
    """A printer that cannot answer: jobs are written, the status is unknown (see module)."""

    def __init__(self, path: str = "/dev/usb/lp0", *, timeout: float = 3.0,
                 job_timeout: float = 60.0) -> None:
        self.path = path
        self._timeout, self._job_timeout = timeout, job_timeout
        self._lock = asyncio.Lock()
        self._state = CONNECTING

    @property
    def state(self) -> DeviceState:
        """``status_unknown`` (ready) after a successful write, else unavailable(reason)."""
        return self._state

    async def status(self) -> PrinterStatus:
        """Always ``DeviceUnavailable(status_unknown)``: this printer cannot answer."""
        raise DeviceUnavailable(f"{self.path}: write-only, no status", reason="status_unknown")

    async def print_job(self, job_id: str, data: bytes) -> None:
        """Write one job; returns when the kernel took it (not a proof it printed)."""
        await self._write(data, self._job_timeout)

    async def kick_drawer(self, pin: int, on_ms: int = 50, off_ms: int = 50) -> None:
        """Write the drawer pulse ``ESC p``."""
        await self._write(drawer_kick(pin, on_ms, off_ms), self._timeout)

    async def _write(self, data: bytes, timeout: float) -> None:
        async with self._lock:
            try:
                link = await FileLink.open(self.path, readable=False)
                try:
                    await link.send(data, timeout)
                finally:
                    await link.close()
            except (DeviceUnavailable, DeviceTimeout) as exc:
                self._state = unavailable(exc.reason, str(exc))
                raise
            self._state = STATUS_UNKNOWN
