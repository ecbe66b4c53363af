"""The network receipt printer (raw TCP 9100).

:class:`TcpTransport` moves bytes over one TCP connection; :class:`NetworkPrinter` is the shared
:class:`~drivers.printer.stream.StreamPrinter` (job and status logic, states, supervisor) over it.
A network printer serves one TCP client at a time, so the driver keeps one long-lived connection.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import TypeVar

from drivers.errors import DeviceTimeout, DeviceUnavailable
from drivers.printer.stream import PrinterLink, StreamPrinter
from drivers.states import Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")


class TcpTransport:
    """Moves bytes over one TCP connection; socket errors and timeouts become driver errors."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float) -> TcpTransport:
        """Open a connection, or raise ``DeviceUnavailable(reason="unreachable")``."""
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:  # TimeoutError is an OSError
            raise DeviceUnavailable(f"cannot connect to {host}:{port}: {exc!r}",
                                    reason="unreachable") from exc
        return cls(reader, writer)

    async def send(self, data: bytes, timeout: float) -> None:
        """Write ``data`` and wait until the socket took it."""
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(data)
                await self._writer.drain()
        except TimeoutError as exc:
            raise DeviceTimeout("the printer does not take data", reason="offline") from exc
        except OSError as exc:
            raise DeviceUnavailable(f"connection lost: {exc!r}", reason="unreachable") from exc

    async def receive(self, size: int, timeout: float) -> bytes:
        """Read exactly ``size`` bytes."""
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.readexactly(size)
        except TimeoutError as exc:
            raise DeviceTimeout(f"no answer within {timeout} s", reason="offline") from exc
        except (asyncio.IncompleteReadError, OSError) as exc:
            raise DeviceUnavailable(f"connection lost: {exc!r}", reason="unreachable") from exc

    async def close(self) -> None:
        """Close the connection (never raises)."""
        self._writer.close()
        with suppress(OSError):
            await self._writer.wait_closed()


class NetworkPrinter(StreamPrinter):
    """A ``ReceiptPrinter`` on raw TCP 9100; ``async with`` keeps it connected and polled."""

    def __init__(self, host: str, port: int = 9100, *, timeout: float = 3.0,
                 job_timeout: float = 60.0, poll_interval: float = 10.0,
                 backoff: Backoff | None = None) -> None:
        async def connect() -> PrinterLink:
            return await TcpTransport.connect(host, port, timeout)

        super().__init__(connect, name=f"{host}:{port}", timeout=timeout,
                         job_timeout=job_timeout, poll_interval=poll_interval, backoff=backoff)
        self.host, self.port = host, port
