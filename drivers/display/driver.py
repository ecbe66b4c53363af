"""The customer display Protocol and the serial pole display driver.

``SerialDisplay`` owns one pyserial port and one worker thread that does every blocking call
(open, write), each with a timeout. It never raises to its caller for a device problem: a missing
display, a pulled cable or a write timeout makes its state ``unavailable(reason)``; it retries
with ``Backoff`` (on the next ``show``/``clear`` once the delay is over, or from ``run()``), and
when the display is back it re-initialises it and shows the last screen again. The loss is
logged once, the recovery once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Protocol, TypeVar

import serial

from drivers import states
from drivers.display.commands import CLEAR, EPSON_CP858, DisplayCommands, DisplayProfile
from drivers.errors import DeviceError, DeviceTimeout, DeviceUnavailable
from drivers.states import Backoff, DeviceState

__all__ = ["CustomerDisplay", "SerialDisplay"]

log = logging.getLogger(__name__)
T = TypeVar("T")
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
        self._serial_options: dict[str, Any] = {
            "baudrate": baudrate, "xonxoff": xonxoff, "write_timeout": write_timeout}
        self._call_timeout = call_timeout
        self._backoff = backoff or Backoff()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="display")
        self._port: serial.Serial | None = None
        self._state = states.CONNECTING
        self._screen: Lines = BLANK
        self._retry_at = 0.0
        self._lost = asyncio.Event()
        self._changed = asyncio.Event()

    @property
    def state(self) -> DeviceState:
        """Whether the display can show text now, and why not."""
        return self._state

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
            await self._call(self._open_and_write, payload)
        except DeviceError as exc:
            self._lose(exc)
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
        async with asyncio.timeout(timeout):
            while self._state.status is not status:
                await self._changed.wait()

    async def aclose(self) -> None:
        """Close the port and stop the worker thread."""
        with contextlib.suppress(DeviceError):
            await self._call(self._close_port)
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def _send(self, payload: bytes) -> None:
        """Write to a connected display, or try to reconnect if the backoff delay is over."""
        if self._port is None:
            if asyncio.get_running_loop().time() >= self._retry_at:
                await self.reconnect()
            return
        try:
            await self._call(self._write, payload)
        except DeviceError as exc:
            self._lose(exc)

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in the worker thread, with the call timeout."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        try:
            return await asyncio.wait_for(future, self._call_timeout)
        except TimeoutError as exc:
            raise DeviceTimeout(f"display {self.path}: no answer", reason="timeout") from exc

    def _lose(self, exc: DeviceError) -> None:
        """Record a failure: state unavailable, port closed, next retry scheduled."""
        self._executor.submit(self._close_port)
        delay = self._backoff.next_delay()
        self._retry_at = asyncio.get_running_loop().time() + delay
        self._set_state(states.unavailable(exc.reason, str(exc)))

    def _set_state(self, new: DeviceState) -> None:
        """Change state, logging a loss or a recovery once."""
        old, self._state = self._state, new
        self._changed.set()
        self._changed = asyncio.Event()
        if new.status is states.Status.UNAVAILABLE:
            self._lost.set()
            if old.status is not states.Status.UNAVAILABLE:
                log.warning("display %s unavailable: %s", self.path, new.detail)
        else:
            self._lost.clear()
            if old.status is states.Status.UNAVAILABLE:
                log.info("display %s back", self.path)

    # Blocking calls, in the worker thread only. pyserial errors are mapped here.

    def _open_and_write(self, payload: bytes) -> None:
        """Open the port (if closed) and write the initialisation and the screen."""
        if self._port is None:
            try:
                self._port = serial.Serial(self.path, **self._serial_options)
            except (serial.SerialException, OSError) as exc:
                raise DeviceUnavailable(f"display {self.path}: {exc}", reason="unplugged") from exc
        self._write(payload)

    def _write(self, payload: bytes) -> None:
        """Write all bytes within the write timeout."""
        if self._port is None:
            raise DeviceUnavailable(f"display {self.path}: not open", reason="unplugged")
        try:
            self._port.write(payload)
        except serial.SerialTimeoutException as exc:
            raise DeviceTimeout(f"display {self.path}: write timed out",
                                reason="write_timeout") from exc
        except (serial.SerialException, OSError) as exc:
            raise DeviceUnavailable(f"display {self.path}: {exc}", reason="unplugged") from exc

    def _close_port(self) -> None:
        """Close the port, ignoring errors of a port already gone."""
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
