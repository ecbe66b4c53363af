"""The cash drawer on a receipt printer's connector: kick, open sensor, "left open" events.

- **Kick**: ``ESC p m t1 t2`` on pin 2 or 5 with the configured on/off times, sent through the
  printer (``ReceiptPrinter.kick_drawer``: refused while the printer reports a fault, never in
  the middle of a job since the driver serialises both).
- **Sensor**: the level of connector pin 3, from ``DLE EOT 1`` bit 2 (what ``status()`` returns;
  answered even while the printer is offline) or ``GS r 2`` bit 0. Whether *high* means open
  depends on the drawer: ``DrawerConfig.open_when_high``. :func:`is_open_from_realtime` and
  :func:`is_open_from_transmit` are the sans-I/O readings of either answer byte.
- **Watcher**: :class:`DrawerTracker` (sans I/O, fed readings and a clock) turns readings into
  :class:`DrawerEvent` ``opened`` / ``closed`` / ``left_open`` (once per opening, after
  ``left_open_after`` seconds; ``seconds`` is how long it has been open). :meth:`CashDrawer.watch`
  polls the printer and yields those events as an async iterator.

A printer that cannot answer makes the drawer ``unavailable(reason)`` (``CashDrawer.state``) and
the reading ``None``: never a crash; the watcher keeps polling and emits nothing meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum

from drivers.errors import DeviceError
from drivers.printer.protocol import ReceiptPrinter
from drivers.printer.status import parse_drawer_sensor, parse_printer
from drivers.states import CONNECTING, READY, DeviceState, unavailable


@dataclass(frozen=True)
class DrawerConfig:
    """Which pin kicks the drawer, the pulse, the sensor polarity and the "left open" delay."""

    pin: int = 2
    on_ms: int = 100
    off_ms: int = 100
    open_when_high: bool = True
    left_open_after: float = 30.0
    poll_interval: float = 0.5

    def __post_init__(self) -> None:
        """Refuse a pin other than 2 or 5 and a non-positive delay."""
        if self.pin not in (2, 5):
            raise ValueError(f"drawer pin must be 2 or 5, not {self.pin}")
        if self.left_open_after <= 0 or self.poll_interval <= 0:
            raise ValueError("left_open_after and poll_interval must be positive")


def is_open(pin3_high: bool, open_when_high: bool) -> bool:
    """Whether the drawer is open, given the pin 3 level and the drawer's polarity."""
    return pin3_high == open_when_high


def is_open_from_realtime(byte: int, open_when_high: bool) -> bool:
    """Read the drawer from a ``DLE EOT 1`` answer byte (bit 2)."""
    return is_open(parse_printer(byte).drawer_high, open_when_high)


def is_open_from_transmit(byte: int, open_when_high: bool) -> bool:
    """Read the drawer from a ``GS r 2`` answer byte (bit 0)."""
    return is_open(parse_drawer_sensor(byte), open_when_high)


class DrawerEventKind(StrEnum):
    """What happened to the drawer."""

    OPENED = "opened"
    CLOSED = "closed"
    LEFT_OPEN = "left_open"


@dataclass(frozen=True)
class DrawerEvent:
    """A drawer event; ``seconds`` is how long the drawer has been (or was) open."""

    kind: DrawerEventKind
    seconds: float


class DrawerTracker:
    """Sans-I/O: readings with their time in, events out."""

    def __init__(self, left_open_after: float) -> None:
        self.left_open_after = left_open_after
        self._opened_at: float | None = None
        self._reported_left_open = False

    def update(self, open_now: bool, now: float) -> list[DrawerEvent]:
        """Take one reading taken at ``now`` (monotonic seconds); return the new events."""
        if open_now and self._opened_at is None:
            self._opened_at, self._reported_left_open = now, False
            return [DrawerEvent(DrawerEventKind.OPENED, 0.0)]
        if self._opened_at is None:
            return []
        seconds = now - self._opened_at
        if not open_now:
            self._opened_at = None
            return [DrawerEvent(DrawerEventKind.CLOSED, seconds)]
        if seconds >= self.left_open_after and not self._reported_left_open:
            self._reported_left_open = True
            return [DrawerEvent(DrawerEventKind.LEFT_OPEN, seconds)]
        return []


class CashDrawer:
    """A drawer on a printer's connector; its state follows the printer's answers."""

    def __init__(self, printer: ReceiptPrinter, config: DrawerConfig | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.printer = printer
        self.config = config or DrawerConfig()
        self.clock = clock
        self._state = CONNECTING

    @property
    def state(self) -> DeviceState:
        """``ready`` after a good reading, ``unavailable(reason)`` when the printer failed."""
        return self._state

    async def open(self) -> None:
        """Kick the drawer open (raises the printer's ``DeviceError`` if refused)."""
        c = self.config
        await self.printer.kick_drawer(c.pin, c.on_ms, c.off_ms)

    async def read(self) -> bool | None:
        """Whether the drawer is open now; None (state unavailable) if the printer cannot say."""
        try:
            status = await self.printer.status()
        except DeviceError as exc:
            self._state = unavailable(exc.reason, str(exc))
            return None
        self._state = READY
        return is_open(status.drawer_high, self.config.open_when_high)

    async def watch(self) -> AsyncIterator[DrawerEvent]:
        """Poll every ``poll_interval`` and yield events, forever (cancel or break to stop)."""
        tracker = DrawerTracker(self.config.left_open_after)
        while True:
            reading = await self.read()
            if reading is not None:
                for event in tracker.update(reading, self.clock()):
                    yield event
            await asyncio.sleep(self.config.poll_interval)
