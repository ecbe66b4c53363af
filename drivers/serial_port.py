"""One pyserial port driven from one worker thread: the serial boundary of every driver.

``SerialPort.open(path, settings)`` opens the port in a single-thread executor; every blocking
call (open, write, read, close) runs in that thread, which also serialises access, and every call
has a timeout: the I/O timeout the caller gives, plus a ``grace`` period that only a hung worker
exceeds. pyserial, OS and termios errors are translated into ``drivers.errors`` here, once, with
``raise … from``:

* the port cannot be opened (or opening hangs) → ``DeviceUnavailable(not_found | open_failed)``;
* I/O on an open port fails (cable pulled, pty gone) → ``DeviceUnavailable(io_error)``;
* a call on a closed port → ``DeviceUnavailable(not_open)``;
* the device does not take the bytes in time (flow control) → ``DeviceTimeout(write_timeout)``;
* the bytes asked for do not all come in time → ``DeviceTimeout(no_answer)``;
* the worker itself does not come back → ``DeviceTimeout(timeout)``.

Errors do not close the port: the caller decides (and calls ``close``, which never raises).
Drivers may re-label these reasons in their own vocabulary (``offline``, ``unplugged``).
On a pty use 8N1 (``SerialSettings()``): reopening a pty with other settings fails (termios
error 22, PERIPHERALS.md).
"""

from __future__ import annotations

import asyncio
import errno
import termios
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import serial

from drivers.errors import DeviceTimeout, DeviceUnavailable

__all__ = ["PORT_ERRORS", "SerialPort", "SerialSettings", "os_error_reason"]

T = TypeVar("T")
PORT_ERRORS = (serial.SerialException, OSError, termios.error)
"""What pyserial lets escape: its own errors, OS errors and raw termios errors (tcsetattr or
tcflush on a vanished pty; reopening a pty with 7-bit settings)."""


@dataclass(frozen=True)
class SerialSettings:
    """Line settings: baud rate, data bits, parity (``N``/``E``/``O``), stop bits, flow control."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    rtscts: bool = False
    xonxoff: bool = False


def os_error_reason(exc: BaseException) -> str:
    """``not_found`` when the path is missing, else ``open_failed``."""
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    return "not_found" if code == errno.ENOENT else "open_failed"


class SerialPort:
    """An open pyserial port and the one worker thread that makes all its blocking calls."""

    def __init__(self, port: Any, executor: ThreadPoolExecutor, name: str, grace: float) -> None:
        self._port, self.name, self.grace = port, name, grace
        self._executor: ThreadPoolExecutor | None = executor

    @classmethod
    async def open(cls, path: str, settings: SerialSettings = SerialSettings(), *,
                   name: str | None = None, grace: float = 5.0) -> SerialPort:
        """Open ``path``; ``DeviceUnavailable(not_found|open_failed)`` when it cannot."""
        name = name or path
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"serial {name}")
        future = asyncio.get_running_loop().run_in_executor(executor, _open, path, settings)
        try:
            async with asyncio.timeout(grace):
                port = await future
        except TimeoutError as exc:
            executor.shutdown(wait=False)
            raise DeviceUnavailable(f"{name}: open hangs", reason="open_failed") from exc
        except PORT_ERRORS as exc:
            executor.shutdown(wait=True)
            raise DeviceUnavailable(f"{name}: {exc}", reason=os_error_reason(exc)) from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(port, executor, name, grace)

    @property
    def is_open(self) -> bool:
        """Whether the port is open (``close`` not called yet)."""
        return self._executor is not None

    async def write(self, data: bytes, timeout: float) -> None:
        """Write all of ``data`` within ``timeout``; ``DeviceTimeout(write_timeout)`` if not."""
        await self._call(lambda port: _write(port, data, timeout), timeout)

    async def read(self, size: int, timeout: float) -> bytes:
        """Read exactly ``size`` bytes within ``timeout``; ``DeviceTimeout(no_answer)`` if not."""
        data = await self._call(lambda port: _read(port, size, timeout), timeout)
        if len(data) < size:
            raise DeviceTimeout(f"{self.name}: no answer within {timeout} s", reason="no_answer")
        return data

    async def read_available(self, timeout: float) -> bytes:
        """Wait up to ``timeout`` for one byte, then take what else is buffered; ``b""`` if none."""
        return await self._call(lambda port: _read_some(port, timeout), timeout)

    async def discard_input(self) -> None:
        """Drop bytes received and not read yet (late or stray replies)."""
        await self._call(lambda port: port.reset_input_buffer(), 0.0)

    async def close(self) -> None:
        """Close the port and stop the worker thread; never raises, safe to call twice."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        with suppress(*PORT_ERRORS):
            self._port.cancel_read()  # wake a read in progress
        idle = False
        try:
            future = asyncio.get_running_loop().run_in_executor(executor, self._port.close)
            async with asyncio.timeout(self.grace):
                await future
            idle = True
        except (TimeoutError, *PORT_ERRORS):
            pass
        finally:
            executor.shutdown(wait=idle)

    async def _call(self, call: Callable[[Any], T], timeout: float) -> T:
        """Run ``call(port)`` in the worker within ``timeout`` + grace, mapping its errors."""
        if self._executor is None:
            raise DeviceUnavailable(f"{self.name}: port not open", reason="not_open")
        port = self._port
        future = asyncio.get_running_loop().run_in_executor(self._executor, call, port)
        try:
            async with asyncio.timeout(timeout + self.grace):
                return await future
        except TimeoutError as exc:  # before OSError: TimeoutError is one
            raise DeviceTimeout(f"{self.name}: the port does not answer", reason="timeout") from exc
        except serial.SerialTimeoutException as exc:
            raise DeviceTimeout(f"{self.name}: write timed out", reason="write_timeout") from exc
        except PORT_ERRORS as exc:
            raise DeviceUnavailable(f"{self.name}: {exc}", reason="io_error") from exc


# Blocking calls, in the worker thread only.

def _open(path: str, settings: SerialSettings) -> Any:
    """Open the port, non-blocking reads until a read sets its timeout."""
    s = settings
    return serial.Serial(path, baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity,
                         stopbits=s.stopbits, rtscts=s.rtscts, xonxoff=s.xonxoff, timeout=0)


def _write(port: Any, data: bytes, timeout: float) -> None:
    """Write everything within ``timeout`` (setting a timeout reconfigures: only on change)."""
    if port.write_timeout != timeout:
        port.write_timeout = timeout
    written = port.write(data)
    if written is not None and written != len(data):
        raise serial.SerialTimeoutException("write timeout")


def _read(port: Any, size: int, timeout: float) -> bytes:
    """Read up to ``size`` bytes, waiting at most ``timeout`` in all."""
    if port.timeout != timeout:
        port.timeout = timeout
    return bytes(port.read(size))


def _read_some(port: Any, timeout: float) -> bytes:
    """Wait up to ``timeout`` for one byte, then take whatever else is buffered."""
    first = _read(port, 1, timeout)
    if not first:
        return b""
    waiting = port.in_waiting
    return first + (bytes(port.read(waiting)) if waiting else b"")
