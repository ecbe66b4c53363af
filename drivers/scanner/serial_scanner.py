"""USB-CDC and serial barcode scanners: bytes ending in CR and/or LF are scans.

``ScanFramer`` is the sans-I/O part: bytes in (any split), scans out; CR, LF and CRLF all end a
scan, empty lines are skipped, and a run of bytes too long to be a barcode is dropped as
garbage up to the next CR/LF. ``SerialScanner`` reads a :class:`~drivers.serial_port.SerialPort`
(one worker thread, every read with a timeout); a pulled cable or a missing port makes it
``unavailable("unplugged")`` and it reopens the port with backoff, without ending its ``scans()``
iterator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import TracebackType

from drivers import states
from drivers.errors import DeviceError, DeviceUnavailable
from drivers.serial_port import SerialPort, SerialSettings
from drivers.states import Backoff, DeviceState, Status

__all__ = ["ScanFramer", "SerialScanner"]

log = logging.getLogger(__name__)
MAX_SCAN = 512  # bytes; longer runs without CR/LF are noise, not a barcode


class ScanFramer:
    """Splits the scanner's byte stream into scans."""

    def __init__(self, terminators: bytes = b"\r\n", encoding: str = "latin-1") -> None:
        self.terminators = frozenset(terminators)
        self.encoding = encoding
        self.dropped = 0  # garbage runs thrown away
        self._pending = bytearray()
        self._overflow = False  # in a garbage run: drop everything up to the next CR/LF

    def feed(self, data: bytes) -> list[str]:
        """Take bytes; return the scans they complete."""
        scans: list[str] = []
        for byte in data:
            if byte in self.terminators:
                if self._pending and not self._overflow:
                    scans.append(self._pending.decode(self.encoding, "replace"))
                self._pending.clear()
                self._overflow = False
            elif len(self._pending) >= MAX_SCAN:
                if not self._overflow:
                    self.dropped += 1
                    self._overflow = True
            else:
                self._pending.append(byte)
        return scans


class SerialScanner:
    """A scanner on a serial port or ``/dev/ttyACM*``; ``async with`` owns the port."""

    def __init__(self, path: str, *, baudrate: int = 9600, read_timeout: float = 0.2,
                 call_timeout: float = 5.0, backoff: Backoff | None = None,
                 framer: ScanFramer | None = None) -> None:
        self.path = path
        self._settings = SerialSettings(baudrate)
        self._read_timeout = read_timeout
        self._call_timeout = call_timeout
        self._backoff = backoff or Backoff()
        self._framer = framer or ScanFramer()
        self._port: SerialPort | None = None
        self._opening = asyncio.Lock()
        self._cell = states.StateCell(f"scanner {path}", log)

    @property
    def state(self) -> DeviceState:
        """Whether the scanner is connected, and why not."""
        return self._cell.value

    async def __aenter__(self) -> SerialScanner:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def connect(self) -> bool:
        """Open the port now; False (state unavailable) if it cannot be opened."""
        try:
            await self._open()
        except DeviceError as exc:
            await self._lose(exc)
            return False
        self._backoff.reset()
        self._cell.set(states.READY)
        return True

    async def scans(self) -> AsyncIterator[str]:
        """Yield scans as they arrive, riding out disconnections, until cancelled."""
        while True:
            if self._port is None and not await self.connect():
                await asyncio.sleep(self._backoff.next_delay())
                continue
            try:
                data = await self._read()
            except DeviceError as exc:
                await self._lose(exc)
                continue
            for scan in self._framer.feed(data):
                yield scan

    async def wait_for_status(self, status: Status, timeout: float = 5.0) -> None:
        """Wait until the state has this status; TimeoutError after ``timeout`` seconds."""
        await self._cell.wait_for(lambda state: state.status is status, timeout)

    async def aclose(self) -> None:
        """Close the port and stop the worker thread."""
        port, self._port = self._port, None
        if port is not None:
            await port.close()

    async def _open(self) -> None:
        """Open the port if it is closed (one opener at a time)."""
        async with self._opening:
            if self._port is None:
                self._port = await SerialPort.open(self.path, self._settings,
                                                   name=f"scanner {self.path}",
                                                   grace=self._call_timeout)

    async def _read(self) -> bytes:
        """What has arrived, waiting at most the read timeout."""
        if self._port is None:
            raise DeviceUnavailable(f"scanner {self.path}: not open", reason="unplugged")
        return await self._port.read_available(self._read_timeout)

    async def _lose(self, exc: DeviceError) -> None:
        """Record a failure: port closed, state unavailable (any missing port is unplugged)."""
        await self.aclose()
        reason = "unplugged" if isinstance(exc, DeviceUnavailable) else exc.reason
        self._cell.set(states.unavailable(reason, str(exc)))

