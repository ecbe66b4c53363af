"""The customer display Protocol and the serial pole display driver.

``SerialDisplay`` owns one :class:`~drivers.serial_port.SerialPort` (one worker thread for every
blocking call, each with a timeout). It never raises to its caller for a device problem: a missing
display, a pulled cable or a write timeout makes its state ``unavailable(reason)`` (``unplugged``,
``write_timeout``, ``timeout``); it retries with ``Backoff`` (on the next ``show``/``clear`` once
the delay is over, or from ``run()``), and when the display is back it re-initialises it and
shows the last screen again. The loss is logged once, the recovery once.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Protocol

from drivers import states
from drivers.display.commands import CLEAR, EPSON_CP858, DisplayCommands, DisplayProfile
from drivers.errors import DeviceError, DeviceUnavailable
from drivers.serial_port import SerialPort, SerialSettings
from drivers.states import Backoff, DeviceState

__all__ = ["CustomerDisplay", "SerialDisplay"]

log = logging.getLogger(__name__)
Lines = tuple[str, str]
BLANK: Lines = ("", "")


class CustomerDisplay(Protocol):
    """A two-line display facing the customer."""

    @property
    def state(self) -> DeviceState:
        """Whether the display can show text now, and why not."""
        ...

    async def show(self, lines: Lines) -> None:
        """Show two lines (each fitted to the display's width)."""
        ...

    async def clear(self) -> None:
        """Blank the screen."""
        ...


class SerialDisplay:
    """A serial pole display (Epson or CD5220 command set); ``async with`` owns its port."""

    def __init__(self, path: str, profile: DisplayProfile = EPSON_CP858, *, baudrate: int = 9600,
                 xonxoff: bool = False, write_timeout: float = 1.0, call_timeout: float = 5.0,
                 backoff: Backoff | None = None) -> None:
        self.path, self.profile, self.commands = path, profile, DisplayCommands(profile)
        self._settings = SerialSettings(baudrate, xonxoff=xonxoff)
        self._write_timeout = write_timeout
        self._call_timeout = call_timeout
        self._backoff = backoff or Backoff()
        self._port: SerialPort | None = None
        self._opening = asyncio.Lock()  # show() and run() may both reconnect
        self._cell = states.StateCell(f"display {path}", log)
        self._screen: Lines = BLANK
        self._retry_at = 0.0
        self._lost = asyncio.Event()

    @property
    def state(self) -> DeviceState:
        """Whether the display can show text now, and why not."""
        return self._cell.value

    async def __aenter__(self) -> SerialDisplay:
        await self.reconnect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def show(self, lines: Lines) -> None:
        """Show two lines; if the display is away, they are shown when it is back."""
        self._screen = lines
        await self._send(self.commands.screen(lines))

    async def clear(self) -> None:
        """Blank the screen."""
        self._screen = BLANK
        await self._send(self.commands.wrap(CLEAR))

    async def reconnect(self) -> None:
        """Open the port now, initialise the display and show the current screen."""
        payload = self.commands.setup() + self.commands.screen(self._screen)
        try:
            await self._open()
            await self._write(payload)
        except DeviceError as exc:
            await self._lose(exc)
        else:
            self._backoff.reset()
            self._set_state(states.READY)

    async def run(self) -> None:
        """Keep reconnecting a lost display with backoff, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await self._lost.wait()
            await asyncio.sleep(max(0.0, self._retry_at - loop.time()))
            await self.reconnect()

    async def wait_for_status(self, status: states.Status, timeout: float = 5.0) -> None:
        """Wait until the state has this status; TimeoutError after ``timeout`` seconds."""
        await self._cell.wait_for(lambda state: state.status is status, timeout)

    async def aclose(self) -> None:
        """Close the port and stop the worker thread."""
        port, self._port = self._port, None
        if port is not None:
            await port.close()

    async def _send(self, payload: bytes) -> None:
        """Write to a connected display, or try to reconnect if the backoff delay is over."""
        if self._port is None:
            if asyncio.get_running_loop().time() >= self._retry_at:
                await self.reconnect()
            return
        try:
            await self._write(payload)
        except DeviceError as exc:
            await self._lose(exc)

    async def _open(self) -> None:
        """Open the port if it is closed."""
        async with self._opening:
            if self._port is None:
                self._port = await SerialPort.open(self.path, self._settings,
                                                   name=f"display {self.path}",
                                                   grace=self._call_timeout)

    async def _write(self, payload: bytes) -> None:
        """Write all bytes within the write timeout."""
        if self._port is None:
            raise DeviceUnavailable(f"display {self.path}: not open", reason="unplugged")
        await self._port.write(payload, self._write_timeout)

    async def _lose(self, exc: DeviceError) -> None:
        """Record a failure: port closed, state unavailable, next retry scheduled."""
        await self.aclose()
        delay = self._backoff.next_delay()
        self._retry_at = asyncio.get_running_loop().time() + delay
        reason = "unplugged" if isinstance(exc, DeviceUnavailable) else exc.reason  # any cause
        self._set_state(states.unavailable(reason, str(exc)))

    def _set_state(self, new: DeviceState) -> None:
        """Change state (logged once on loss and recovery); the reconnect loop follows it."""
        self._cell.set(new)
        if new.status is states.Status.UNAVAILABLE:
            self._lost.set()
        else:
            self._lost.clear()
