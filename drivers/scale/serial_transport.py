"""Moving bytes to and from a serial scale: pyserial in one worker thread, every call timed out.

``SerialTransport`` owns one pyserial port and one single-thread executor; every blocking call
runs in that thread, which also serialises access. pyserial and OS exceptions are translated
into ``drivers.errors`` here, once, with ``raise … from``:

* the port cannot be opened, or I/O on it fails (unplugged) → ``DeviceUnavailable``
  (the port is closed; the driver reopens it later);
* no byte within the call's timeout → ``DeviceTimeout`` (the port stays open).

Line settings are a parameter (``SerialSettings``): real scales use 9600 7E1 (Toledo 8217) or
9600 7O1 (Dialog 06); on a pty use ``PTY_LINE`` (8N1), because reopening a pty with non-8N1
settings fails (termios error 22, see PERIPHERALS.md).

``read_frame`` reads until a sans-I/O ``FrameParser`` yields a frame; it is shared by the
protocol drivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import termios
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import serial
import structlog

from drivers.errors import (
    DeviceError,
    DeviceFault,
    DeviceTimeout,
    DeviceUnavailable,
    ProtocolError,
)
from drivers.states import CONNECTING, READY, Backoff, DeviceState, error, unavailable

_log = structlog.get_logger(__name__)

T = TypeVar("T")
#: What pyserial lets escape: its own errors, OS errors, and raw termios errors (tcsetattr,
#: tcflush on a vanished pty; reopening a pty with 7-bit settings gives termios error 22).
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)
FrameT = TypeVar("FrameT")


@dataclass(frozen=True)
class SerialSettings:
    """Line settings: baud rate, data bits, parity (``N``/``E``/``O``) and stop bits."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1


TOLEDO_8217_LINE = SerialSettings(9600, 7, "E", 1)
DIALOG_06_LINE = SerialSettings(9600, 7, "O", 1)
PTY_LINE = SerialSettings(9600, 8, "N", 1)


class ByteTransport(Protocol):
    """What a scale driver needs from a link: open, close, write, read with a timeout."""

    @property
    def is_open(self) -> bool:
        """Whether the link is open."""
        ...

    async def open(self) -> None:
        """Open the link or raise ``DeviceUnavailable``."""
        ...

    async def close(self) -> None:
        """Close the link (idempotent)."""
        ...

    async def write(self, data: bytes) -> None:
        """Send bytes."""
        ...

    async def read(self, timeout: float) -> bytes:
        """Return at least one byte, or raise ``DeviceTimeout`` after ``timeout`` seconds."""
        ...

    async def discard_input(self) -> None:
        """Drop bytes received and not read yet (late or stray replies)."""
        ...


class SerialTransport:
    """A pyserial port on ``path`` driven from one worker thread."""

    def __init__(self, path: str, settings: SerialSettings, *, write_timeout: float = 1.0):
        self.path = path
        self.settings = settings
        self.write_timeout = write_timeout
        self._port: Any = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._port is not None

    async def open(self) -> None:
        """Open the port with the line settings; ``DeviceUnavailable`` when it cannot."""
        if self._port is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"serial {self.path}")
        try:
            self._port = await self._run(self._open_port)
        except BaseException:
            self._shutdown_executor()
            raise

    async def close(self) -> None:
        """Close the port and stop the worker thread; safe to call twice."""
        port, self._port = self._port, None
        if port is not None:
            port.cancel_read()
            await self._run(port.close)
        self._shutdown_executor()

    async def write(self, data: bytes) -> None:
        """Write ``data`` (at most ``write_timeout`` seconds)."""
        port = self._require_port()
        written = await self._io(lambda: port.write(data))
        if written != len(data):
            await self.close()
            raise DeviceTimeout(f"{self.path}: write timed out", reason="write_timeout")

    async def read(self, timeout: float) -> bytes:
        """Return the bytes available once at least one arrived; ``DeviceTimeout`` if none."""
        port = self._require_port()
        data: bytes = await self._io(lambda: _read_some(port, timeout))
        if not data:
            raise DeviceTimeout(f"{self.path}: no answer within {timeout} s", reason="no_answer")
        return data

    async def discard_input(self) -> None:
        """Drop unread input."""
        port = self._require_port()
        await self._io(port.reset_input_buffer)

    def _open_port(self) -> Any:
        s = self.settings
        try:
            return serial.Serial(self.path, baudrate=s.baudrate, bytesize=s.bytesize,
                                 parity=s.parity, stopbits=s.stopbits, timeout=0,
                                 write_timeout=self.write_timeout)
        except _PORT_ERRORS as exc:
            reason = "not_found" if _errno(exc) == errno.ENOENT else "open_failed"
            raise DeviceUnavailable(f"{self.path}: {exc}", reason=reason) from exc

    def _require_port(self) -> Any:
        if self._port is None:
            raise DeviceUnavailable(f"{self.path}: port not open", reason="not_open")
        return self._port

    async def _io(self, call: Callable[[], T]) -> T:
        """Run an I/O call in the worker; an I/O failure closes the port (unplugged)."""
        try:
            return await self._run(call)
        except _PORT_ERRORS as exc:
            await self.close()
            raise DeviceUnavailable(f"{self.path}: {exc}", reason="io_error") from exc

    async def _run(self, call: Callable[[], T]) -> T:
        if self._executor is None:
            raise DeviceUnavailable(f"{self.path}: port not open", reason="not_open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _shutdown_executor(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


def _errno(exc: BaseException) -> int | None:
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    return code if isinstance(code, int) else None


def _read_some(port: Any, timeout: float) -> bytes:
    """Blocking: wait up to ``timeout`` for one byte, then take whatever else is buffered."""
    port.timeout = timeout
    first: bytes = port.read(1)
    if not first:
        return b""
    waiting = port.in_waiting
    return first + (port.read(waiting) if waiting else b"")


class FrameParser(Protocol, Generic[FrameT]):
    """A sans-I/O deframer: fed bytes, it returns complete frames and counts discarded bytes."""

    discarded: int

    def feed(self, data: bytes) -> list[FrameT]:
        """Consume ``data``; return the frames it completed."""
        ...


async def read_frame(transport: ByteTransport, parser: FrameParser[FrameT], *,
                     timeout: float, max_bytes: int = 256) -> FrameT:
    """Read until ``parser`` yields a frame; each wait for bytes lasts at most ``timeout``.

    Raises ``DeviceTimeout`` when the line goes quiet with nothing discarded, and
    ``ProtocolError`` when it goes quiet (or ``max_bytes`` pass) after bytes that made no frame.
    """
    received = 0
    while True:
        try:
            data = await transport.read(timeout)
        except DeviceTimeout as exc:
            if parser.discarded:
                raise ProtocolError(f"{parser.discarded} bytes of garbage",
                                    reason="garbage") from exc
            raise
        frames = parser.feed(data)
        if frames:
            return frames[0]
        received += len(data)
        if received > max_bytes:
            raise ProtocolError(f"{received} bytes without a frame", reason="garbage")


class Link:
    """A device's link: its transport, its state, reopening with backoff, one call at a time.

    ``async with link.use() as transport:`` opens the transport if needed (not before the
    backoff delay after a failed open), serialises callers, and turns the outcome into a state:
    success → ready; ``DeviceTimeout`` → unavailable(no_answer); ``DeviceUnavailable`` →
    unavailable(reason) with a backoff before the next open; ``ProtocolError`` → error(reason);
    ``DeviceFault`` → ready (the device answered), or error(reason) for ``stateful_faults``.
    The loss of a device is logged once, and its return once.
    """

    def __init__(self, transport: ByteTransport, *, name: str,
                 stateful_faults: frozenset[str] = frozenset(),
                 backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.name = name
        self.stateful_faults = stateful_faults
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.state: DeviceState = CONNECTING
        self._lock = asyncio.Lock()
        self._next_open = 0.0

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[ByteTransport]:
        """Hold the link for one exchange; see the class docstring for the states."""
        async with self._lock:
            await self._ensure_open()
            try:
                yield self.transport
            except DeviceError as exc:
                self._set(self._state_after(exc))
                raise
            self._set(READY)
            self.backoff.reset()

    async def close(self) -> None:
        """Close the transport; the next ``use`` reopens it."""
        async with self._lock:
            await self.transport.close()

    async def _ensure_open(self) -> None:
        if self.transport.is_open:
            return
        if self.clock() < self._next_open:
            reason = self.state.reason or "not_open"
            raise DeviceUnavailable(f"{self.name}: waiting before reopening", reason=reason)
        try:
            await self.transport.open()
        except DeviceUnavailable as exc:
            self._set(self._state_after(exc))
            raise

    def _state_after(self, exc: DeviceError) -> DeviceState:
        if isinstance(exc, DeviceUnavailable):
            self._next_open = self.clock() + self.backoff.next_delay()
            return unavailable(exc.reason, str(exc))
        if isinstance(exc, DeviceTimeout):
            return unavailable("no_answer", str(exc))
        if isinstance(exc, DeviceFault) and exc.reason not in self.stateful_faults:
            return READY
        return error(exc.reason, str(exc))

    def _set(self, state: DeviceState) -> None:
        if state.status != self.state.status:
            if state.usable:
                _log.info("device ready", device=self.name)
            else:
                _log.warning("device not usable", device=self.name, status=str(state.status),
                             reason=state.reason, detail=state.detail)
        self.state = state
