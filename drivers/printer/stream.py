"""The transport-neutral ESC/POS printer driver: job and status logic over any byte link.

A printer serves one client at a time, so the driver keeps one long-lived link and serialises
everything on it (jobs, status polls, drawer pulses) with one ``asyncio.Lock``.

Each job: real-time status first (a fault refuses the job), then the job's bytes followed by the
real-time status again (a fault, e.g. paper out mid-job, raises ``DeviceFault``), then ``GS r 1`` as
a barrier: the printer answers it only once everything before it is processed. If the barrier is
not answered in time the real-time status says why, and the link is opened afresh so that a late
answer cannot be misread. No answer to a status request within the timeout means the printer is
offline: ``DeviceTimeout(reason="offline")`` and state ``unavailable("offline")``.

States: ``connecting`` → ``ready`` / ``busy`` during a job / ``error(paper_out|cover_open|…)`` /
``unavailable(unreachable|offline|bad_status|not_found|…)``. Inside ``async with``, a supervisor
task polls the status every ``poll_interval`` and reopens the link with
:class:`~drivers.states.Backoff` while unavailable. Reprinting an interrupted job is the job
queue's business (``drivers.printer.jobs``), not this module's. Links: TCP
(``drivers.printer.network``), serial (``drivers.printer.serial_printer``), device files
(``drivers.printer.file_printer``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from types import TracebackType
from typing import Protocol, Self, TypeVar

from drivers.errors import DeviceError, DeviceFault, DeviceTimeout, DeviceUnavailable, ProtocolError
from drivers.printer.status import (
    DRAWER_SENSOR_REQUEST,
    PAPER_SENSOR_REQUEST,
    STATUS_REQUEST,
    PrinterStatus,
    drawer_kick,
    parse_drawer_sensor,
    parse_paper_sensor,
    parse_status,
)
from drivers.states import Backoff, DeviceState, StateCell, Status, error, unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class PrinterLink(Protocol):
    """A connected byte link to a printer (``TcpTransport`` follows it too)."""

    async def send(self, data: bytes, timeout: float) -> None:
        """Write ``data`` within ``timeout`` seconds."""
        ...

    async def receive(self, size: int, timeout: float) -> bytes:
        """Read exactly ``size`` bytes within ``timeout`` seconds."""
        ...

    async def close(self) -> None:
        """Close the link (never raises)."""
        ...


def raise_on_fault(status: PrinterStatus, what: str) -> None:
    """Raise ``DeviceFault(reason=fault)`` when the status reports one."""
    if status.fault is not None:
        raise DeviceFault(f"{what}: the printer reports {status.fault}", reason=status.fault)


def state_of(status: PrinterStatus) -> DeviceState:
    """The device state a status means: error(fault), or ready (noting paper near end)."""
    if status.fault is not None:
        return error(status.fault)
    return DeviceState(Status.READY, None, "paper_near_end" if status.paper_near_end else None)


class StreamPrinter:
    """A ``ReceiptPrinter`` over any :class:`PrinterLink`; ``async with`` keeps it polled."""

    def __init__(self, connect: Callable[[], Awaitable[PrinterLink]], *, name: str,
                 timeout: float = 3.0, job_timeout: float = 60.0, poll_interval: float = 10.0,
                 backoff: Backoff | None = None) -> None:
        self.name = name
        self._connect = connect
        self._timeout, self._job_timeout = timeout, job_timeout
        self._poll_interval = poll_interval
        self._backoff = backoff or Backoff()
        self._lock = asyncio.Lock()
        self._link: PrinterLink | None = None
        self._cell = StateCell(f"printer {name}", log)
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def state(self) -> DeviceState:
        """The printer's current state."""
        return self._cell.value

    def __str__(self) -> str:
        """The printer's name (its path or address)."""
        return self.name

    async def __aenter__(self) -> Self:
        """Start the supervisor: connect, poll the status, reconnect with backoff."""
        self._supervisor = asyncio.create_task(self._supervise(), name=f"printer {self}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Stop the supervisor and close the link."""
        await self.close()

    async def close(self) -> None:
        """Stop the supervisor and close the link."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        async with self._lock:
            await self._close_link()

    async def wait_for_state(self, accept: Callable[[DeviceState], bool],
                             timeout: float) -> DeviceState:
        """Wait until the state satisfies ``accept``; ``DeviceTimeout`` after ``timeout`` s."""
        try:
            return await self._cell.wait_for(accept, timeout)
        except TimeoutError as exc:
            raise DeviceTimeout(f"printer {self} still {self.state}", reason="state") from exc

    async def status(self) -> PrinterStatus:
        """Ask the printer for its real-time status (the state follows)."""
        async with self._lock:
            return await self._refresh()

    async def print_job(self, job_id: str, data: bytes) -> None:
        """Print one job: refused on a fault, confirmed by the ``GS r 1`` barrier."""
        async with self._lock:
            raise_on_fault(await self._refresh(), f"job {job_id} not sent")
            self._cell.set(DeviceState(Status.BUSY))
            after = await self._exchange(lambda link: self._send_job(link, data))
            self._cell.set(state_of(after))
            raise_on_fault(after, f"job {job_id} interrupted")

    async def kick_drawer(self, pin: int, on_ms: int = 50, off_ms: int = 50) -> None:
        """Pulse the drawer (``ESC p``): refused while the printer reports a fault."""
        command = drawer_kick(pin, on_ms, off_ms) + DRAWER_SENSOR_REQUEST
        async with self._lock:
            raise_on_fault(await self._refresh(), f"drawer pin {pin} not pulsed")
            await self._exchange(lambda link: self._send_kick(link, command))

    async def _send_kick(self, link: PrinterLink, command: bytes) -> None:
        await link.send(command, self._timeout)
        parse_drawer_sensor((await link.receive(1, self._timeout))[0])

    async def _send_job(self, link: PrinterLink, data: bytes) -> PrinterStatus:
        await link.send(data + STATUS_REQUEST, self._job_timeout)
        status = parse_status(await link.receive(4, self._job_timeout))
        if status.fault is not None:
            return status
        await link.send(PAPER_SENSOR_REQUEST, self._timeout)
        try:
            parse_paper_sensor((await link.receive(1, self._job_timeout))[0])
        except DeviceTimeout:
            return await self._after_stall(link)
        return status

    async def _after_stall(self, link: PrinterLink) -> PrinterStatus:
        """The job did not finish in time: ask why, then drop the link (late answers)."""
        status = await self._query_status(link)
        await self._close_link()
        if status.fault is None:
            raise DeviceTimeout(f"job not printed within {self._job_timeout} s", reason="offline")
        return status

    async def _refresh(self) -> PrinterStatus:
        status = await self._exchange(self._query_status)
        self._cell.set(state_of(status))
        return status

    async def _query_status(self, link: PrinterLink) -> PrinterStatus:
        await link.send(STATUS_REQUEST, self._timeout)
        return parse_status(await link.receive(4, self._timeout))

    async def _exchange(self, action: Callable[[PrinterLink], Awaitable[T]]) -> T:
        """Run one exchange; a lost link, silence or garbage drops it and is a state."""
        link = await self._connected()
        try:
            return await action(link)
        except (DeviceUnavailable, DeviceTimeout, ProtocolError) as exc:
            await self._close_link()
            self._cell.set(unavailable(exc.reason, str(exc)))
            raise

    async def _connected(self) -> PrinterLink:
        if self._link is None:
            try:
                self._link = await self._connect()
            except DeviceUnavailable as exc:
                self._cell.set(unavailable(exc.reason, str(exc)))
                raise
        return self._link

    async def _close_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(await self._poll_once())

    async def _poll_once(self) -> float:
        """Connect if needed and refresh the state; return the delay before the next poll."""
        async with self._lock:
            with suppress(DeviceError):
                await self._refresh()
        if self.state.status is Status.UNAVAILABLE:
            return self._backoff.next_delay()
        self._backoff.reset()
        return self._poll_interval

