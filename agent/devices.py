"""The box's peripherals as one service: simulators started in-process, real drivers on them.

``Devices(settings.devices)`` is built by the composition root without any I/O. ``async with
devices:`` starts, for each kind set to ``simulated``, the wire-level simulator and connects the
real driver to it: the ESC/POS printer over TCP (127.0.0.1, a free port), the pole display, the
Toledo 8217 scale and the serial scanner over ptys. A printer set to ``usb`` is a real USB
printer (``[devices.usb_printer]``, ``drivers.printer.usb_printer``; ``usb_backend`` is the
pyusb backend, None for libusb). The cash drawer hangs off the printer (``ESC p``). Leaving the
block closes every driver, then every simulator.

A device that cannot start is a state (``unavailable``, reason ``start_failed``), never an
exception. ``tasks()`` gives the long-running loops the daemon runs in its TaskGroup; each one
keeps its device's state fresh and never raises (the printer driver polls by itself):

* ``display`` — reconnects a lost display with backoff;
* ``scale`` — reads the weight every ``SCALE_PERIOD`` seconds (≤ 2 Hz), keeping ``last_weight``;
* ``scanner`` — puts every scan into ``scans`` (a bounded queue; the oldest scan is dropped);
* ``drawer`` — with a bus, reads the drawer sensor through the printer every ``DRAWER_POLL``
  seconds (polarity ``drawer_open_when_high``), publishing ``drawer`` events;
* ``states`` — watches the device states every ``STATE_PERIOD`` seconds.

With an event bus, the box's frontends hear of it: ``scan`` ``{code}`` for every scan,
``weight`` ``{grams, stable}`` when the polled weight changes, ``device`` ``{kind, state,
reason}`` when a device's state changes, ``drawer`` ``{event, seconds}`` when the drawer opens
(``opened``), closes (``closed``, seconds it was open) or stays open ``drawer_left_open_after``
seconds (``left_open``, once per opening).

``states()`` is what ``GET /v1/devices`` and ``/health`` show; ``statuses()`` feeds the page.
``screen`` takes the customer display's screens without making the caller wait
(``agent.screen_feed``); leaving the block waits for the screen being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self, TypedDict

from agent.discovered import DiscoveredDevices, Lister
from agent.events import EventBus
from agent.observability import DeviceState as PageState
from agent.observability import DeviceStatus
from agent.screen_feed import ScreenFeed
from agent.settings import DevicesSettings
from drivers.discovery import scan
from drivers.display.driver import SerialDisplay
from drivers.display.simulator import DisplaySimulator
from drivers.errors import DeviceError, DeviceUnavailable
from drivers.printer.drawer import CashDrawer, DrawerConfig
from drivers.printer.network import NetworkPrinter
from drivers.printer.simulator import PrinterSimulator
from drivers.printer.stream import StreamPrinter
from drivers.scale.dialog06 import Dialog06Scale
from drivers.scale.protocol import Weight
from drivers.scale.simulator import ScaleSimulator, pty_driver, scale_simulator
from drivers.scale.toledo8217 import Toledo8217Scale
from drivers.scanner.serial_scanner import SerialScanner
from drivers.scanner.simulator import ScannerSimulator
from drivers.states import DeviceState, Status, unavailable

log = logging.getLogger(__name__)

DEVICE_KINDS: tuple[str, ...] = ("printer", "drawer", "display", "scale", "scanner")
SCALE_PERIOD = 0.5
"""Seconds between two background weight readings (2 Hz at most)."""
PRINTER_POLL = 2.0
STATE_PERIOD = 0.5
"""Seconds between two looks at the device states (for ``device`` events)."""
SCAN_QUEUE_SIZE = 100
DRAWER_PIN, DRAWER_PULSE_MS = 2, 100
DRAWER_POLL = 0.25
"""Seconds between two readings of the drawer sensor (``DLE EOT 1`` through the printer)."""
NOT_CONNECTED = unavailable("not_connected")
NOT_CONFIGURED = unavailable("not_configured")
Loop = Callable[[], Coroutine[Any, Any, None]]
AnyScale = Toledo8217Scale | Dialog06Scale


class DeviceInfo(TypedDict):
    """One device as the API shows it."""

    kind: str
    driver: str
    status: str
    reason: str | None
    connection: str | None


class Devices:
    """The peripherals of the box; ``async with`` connects them, see the module docstring."""

    def __init__(self, settings: DevicesSettings, bus: EventBus | None = None, *,
                 usb_backend: Any = None, discovery_lister: Lister = scan) -> None:
        self.settings = settings
        self.bus = bus
        self.usb_backend = usb_backend
        self.discovered = DiscoveredDevices(settings, bus, discovery_lister)
        self.printer: StreamPrinter | None = None
        self.display: SerialDisplay | None = None
        self.scale: AnyScale | None = None
        self.scanner: SerialScanner | None = None
        self.printer_simulator: PrinterSimulator | None = None
        self.display_simulator: DisplaySimulator | None = None
        self.scale_simulator: ScaleSimulator | None = None
        self.scanner_simulator: ScannerSimulator | None = None
        self.scans: asyncio.Queue[str] = asyncio.Queue(SCAN_QUEUE_SIZE)
        self.last_weight: Weight | None = None
        self.started = False
        self.screen = ScreenFeed()
        """The customer display's screens, written in the background (``agent.screen_feed``)."""
        self._failed: dict[str, DeviceState] = {}
        self._connections: dict[str, str] = {}
        self._stack = AsyncExitStack()

    def configured(self, kind: str) -> bool:
        """Whether ``kind`` is provided (simulated) rather than absent."""
        return bool(getattr(self.settings, kind) != "none")

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start every configured simulator and connect its driver."""
        starters: dict[str, Callable[[], Awaitable[None]]] = {
            "printer": self._start_printer, "display": self._start_display,
            "scale": self._start_scale, "scanner": self._start_scanner}
        for kind, start in starters.items():
            if self.configured(kind):
                await self._start(kind, start)
        self.started = True
        self.screen.display = self.display
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Close every driver, then every simulator (once the last screen is written)."""
        self.started = False
        await self.screen.drain()
        await self._stack.aclose()

    async def _start(self, kind: str, start: Callable[[], Awaitable[None]]) -> None:
        try:
            await start()
        except Exception as error:  # a device that cannot start is a state, never a crash
            log.warning("device %s cannot start: %r", kind, error)
            self._failed[kind] = unavailable("start_failed", str(error))

    async def _start_printer(self) -> None:
        if self.settings.printer == "usb":
            await self._start_usb_printer()
            return
        simulator = PrinterSimulator()
        await simulator.start("127.0.0.1", 0)
        self._stack.push_async_callback(simulator.stop)
        self.printer_simulator = simulator
        printer = NetworkPrinter(simulator.host, simulator.port, poll_interval=PRINTER_POLL)
        self.printer = await self._stack.enter_async_context(printer)
        self._connections["printer"] = f"tcp://{simulator.host}:{simulator.port}"
        with contextlib.suppress(DeviceError):
            await printer.status()

    async def _start_usb_printer(self) -> None:
        from drivers.printer.usb_printer import UsbPrinter  # pyusb loads only for a USB printer

        target = self.settings.usb_printer
        assert target is not None  # the settings refuse "usb" without it
        printer = UsbPrinter(target.vendor_id, target.product_id, serial=target.serial,
                             port_path=target.port_path, backend=self.usb_backend,
                             poll_interval=PRINTER_POLL)
        self.printer = await self._stack.enter_async_context(printer)
        self._connections["printer"] = str(printer.target)
        with contextlib.suppress(DeviceError):
            await printer.status()

    async def _start_display(self) -> None:
        simulator = await asyncio.to_thread(DisplaySimulator)
        self._stack.push_async_callback(asyncio.to_thread, simulator.close)
        self.display_simulator = simulator
        self.display = await self._stack.enter_async_context(SerialDisplay(simulator.path))
        self._connections["display"] = simulator.path

    async def _start_scale(self) -> None:
        simulator = scale_simulator("toledo8217")
        await asyncio.to_thread(simulator.start)
        self._stack.push_async_callback(asyncio.to_thread, simulator.stop)
        self.scale_simulator = simulator
        scale = pty_driver(simulator)
        self._stack.push_async_callback(scale.close)
        self.scale = scale
        self._connections["scale"] = simulator.path
        await self._read_weight(scale)

    async def _start_scanner(self) -> None:
        simulator = await asyncio.to_thread(ScannerSimulator)
        self._stack.push_async_callback(asyncio.to_thread, simulator.close)
        self.scanner_simulator = simulator
        self.scanner = await self._stack.enter_async_context(SerialScanner(simulator.path))
        self._connections["scanner"] = simulator.path

    # -- background loops -----------------------------------------------------------------------

    def tasks(self) -> dict[str, Loop]:
        """The loops to run while the box runs, by name; each ends only when cancelled."""
        loops: dict[str, Callable[[], Awaitable[None]]] = {}
        if self.display is not None:
            loops["display"] = self.display.run
        if self.scale is not None:
            loops["scale"] = self._poll_scale
        if self.scanner is not None:
            loops["scanner"] = self._consume_scans
        loops["discovery"] = self.discovered.run
        if self.bus is not None:
            loops["states"] = self._watch_states
            if self.printer is not None and self.configured("drawer"):
                loops["drawer"] = self._watch_drawer
        return {name: _guarded(name, loop) for name, loop in loops.items()}

    async def _poll_scale(self) -> None:
        while self.scale is not None:
            await self._read_weight(self.scale)
            await asyncio.sleep(SCALE_PERIOD)

    async def _read_weight(self, scale: AnyScale) -> None:
        with contextlib.suppress(DeviceError):
            weight, previous = await scale.read_weight(), self.last_weight
            self.last_weight = weight
            if previous is None or (weight.grams, weight.stable) != (previous.grams,
                                                                     previous.stable):
                self._publish("weight", {"grams": weight.grams, "stable": weight.stable})

    async def _consume_scans(self) -> None:
        if self.scanner is None:
            return
        async for code in self.scanner.scans():
            if self.scans.full():
                self.scans.get_nowait()
            self.scans.put_nowait(code)
            self._publish("scan", {"code": code})

    async def _watch_drawer(self) -> None:
        if self.printer is None:
            return
        s = self.settings
        config = DrawerConfig(DRAWER_PIN, DRAWER_PULSE_MS, DRAWER_PULSE_MS,
                              open_when_high=s.drawer_open_when_high,
                              left_open_after=s.drawer_left_open_after, poll_interval=DRAWER_POLL)
        async for event in CashDrawer(self.printer, config).watch():
            self._publish("drawer", {"event": event.kind.value,
                                     "seconds": round(event.seconds, 1)})

    async def _watch_states(self) -> None:
        seen = {kind: self.state_of(kind) for kind in DEVICE_KINDS}
        while True:
            await asyncio.sleep(STATE_PERIOD)
            for kind in DEVICE_KINDS:
                state = self.state_of(kind)
                if (state.status, state.reason) != (seen[kind].status, seen[kind].reason):
                    self._publish("device", {"kind": kind, "state": state.status.value,
                                             "reason": state.reason})
                seen[kind] = state

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(kind, data)

    # -- states ---------------------------------------------------------------------------------

    def state_of(self, kind: str) -> DeviceState:
        """The state of one device kind."""
        if not self.configured(kind):
            return NOT_CONFIGURED
        if kind in self._failed:
            return self._failed[kind]
        if not self.started:
            return NOT_CONNECTED
        if kind == "drawer":
            return self._drawer_state()
        driver: Any = getattr(self, kind)
        return driver.state if driver is not None else NOT_CONNECTED

    def _drawer_state(self) -> DeviceState:
        if self.printer is None:
            return unavailable("no_printer")
        return self.printer.state

    def states(self) -> dict[str, DeviceInfo]:
        """Every device by name: kind, status, reason and where it is connected."""
        result: dict[str, DeviceInfo] = {}
        for kind in DEVICE_KINDS:
            state = self.state_of(kind)
            connection = self._connections.get("printer" if kind == "drawer" else kind)
            result[kind] = DeviceInfo(kind=kind, driver=getattr(self.settings, kind),
                                      status=state.status.value, reason=state.reason,
                                      connection=connection)
        return result

    def statuses(self) -> tuple[DeviceStatus, ...]:
        """The states as the status page shows them."""
        return tuple(DeviceStatus(kind=kind, driver=getattr(self.settings, kind),
                                  state=_page_state(self.state_of(kind)),
                                  reason=self.state_of(kind).reason) for kind in DEVICE_KINDS)

    def require(self, kind: str) -> Any:
        """The driver of ``kind`` (the printer for the drawer), or ``DeviceUnavailable``."""
        name = "printer" if kind == "drawer" else kind
        driver = getattr(self, name) if self.started else None
        if driver is None:
            reason = self.state_of(kind).reason or "not_connected"
            raise DeviceUnavailable(f"{kind}: {reason}", reason=reason)
        return driver


_PAGE_STATES: dict[Status, PageState] = {
    Status.CONNECTING: "connecting", Status.READY: "ready", Status.BUSY: "busy",
    Status.ERROR: "error", Status.UNAVAILABLE: "unavailable"}


def _page_state(state: DeviceState) -> PageState:
    return _PAGE_STATES[state.status]


def _guarded(name: str, loop: Callable[[], Awaitable[None]]) -> Loop:
    """Run ``loop``; an unexpected error is logged and ends the loop, never the daemon."""

    async def run() -> None:
        try:
            await loop()
        except Exception:
            log.exception("device loop %s failed", name)

    return run
