"""Moving bytes to and from a serial scale, and the link logic the scale drivers share.

``SerialTransport`` is a ``ByteTransport`` over a :class:`~drivers.serial_port.SerialPort`
(pyserial in one worker thread, every call timed out, errors mapped there):

* the port cannot be opened, or I/O on it fails (unplugged) → ``DeviceUnavailable``
  (the port is closed; the driver reopens it later);
* a write the scale does not take in time → ``DeviceTimeout(write_timeout)`` (the port is closed);
* no byte within the call's timeout → ``DeviceTimeout(no_answer)`` (the port stays open).

Line settings are a parameter (``SerialSettings``): real scales use 9600 7E1 (Toledo 8217) or
9600 7O1 (Dialog 06); on a pty use ``PTY_LINE`` (8N1), because reopening a pty with non-8N1
settings fails (termios error 22, see PERIPHERALS.md).

``read_frame`` reads until a sans-I/O ``FrameParser`` yields a frame; it is shared by the
protocol drivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import structlog

from drivers.errors import (
    DeviceError,
    DeviceFault,
    DeviceTimeout,
    DeviceUnavailable,
    ProtocolError,
)
from drivers.serial_port import SerialPort, SerialSettings
from drivers.states import CONNECTING, READY, Backoff, DeviceState, error, unavailable

_log = structlog.get_logger(__name__)

T = TypeVar("T")
FrameT = TypeVar("FrameT")

__all__ = ["DIALOG_06_LINE", "PTY_LINE", "TOLEDO_8217_LINE", "ByteTransport", "FrameParser",
           "Link", "SerialSettings", "SerialTransport", "read_frame"]

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
    """A :class:`ByteTransport` over a :class:`SerialPort` on ``path``; a failed call closes it."""

    def __init__(self, path: str, settings: SerialSettings, *, write_timeout: float = 1.0):
        self.path = path
        self.settings = settings
        self.write_timeout = write_timeout
        self._port: SerialPort | None = None

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._port is not None

    async def open(self) -> None:
        """Open the port with the line settings; ``DeviceUnavailable`` when it cannot."""
        if self._port is None:
            self._port = await SerialPort.open(self.path, self.settings)

    async def close(self) -> None:
        """Close the port and stop the worker thread; safe to call twice."""
        port, self._port = self._port, None
        if port is not None:
            await port.close()

    async def write(self, data: bytes) -> None:
        """Write ``data`` (at most ``write_timeout`` seconds)."""
        await self._io(lambda port: port.write(data, self.write_timeout))

    async def read(self, timeout: float) -> bytes:
        """Return the bytes available once at least one arrived; ``DeviceTimeout`` if none."""
        data = await self._io(lambda port: port.read_available(timeout))
        if not data:
            raise DeviceTimeout(f"{self.path}: no answer within {timeout} s", reason="no_answer")
        return data

    async def discard_input(self) -> None:
        """Drop unread input."""
        await self._io(lambda port: port.discard_input())

    async def _io(self, call: Callable[[SerialPort], Awaitable[T]]) -> T:
        """Run a port call; a failure (unplugged, write timeout) closes the port."""
        if self._port is None:
            raise DeviceUnavailable(f"{self.path}: port not open", reason="not_open")
        try:
            return await call(self._port)
        except DeviceError:
            await self.close()
            raise


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
