"""Device states and retry backoff (DESIGN.md §10).

A device is ``connecting``, ``ready``, ``busy``, ``error(reason)`` or ``unavailable(reason)``.
A missing or broken device is a state, never a crash: drivers report it, log it once when lost
and once when back, and retry with ``Backoff``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """What a device can be doing."""

    CONNECTING = "connecting"
    READY = "ready"
    BUSY = "busy"
    ERROR = "error"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class DeviceState:
    """A device's state with the reason when it is not usable (``paper_out``, ``unplugged``…)."""

    status: Status
    reason: str | None = None
    detail: str | None = None

    @property
    def usable(self) -> bool:
        """Whether the device can take work now."""
        return self.status in (Status.READY, Status.BUSY)


READY = DeviceState(Status.READY)
CONNECTING = DeviceState(Status.CONNECTING)


def unavailable(reason: str, detail: str | None = None) -> DeviceState:
    """The device is absent or not answering."""
    return DeviceState(Status.UNAVAILABLE, reason, detail)


def error(reason: str, detail: str | None = None) -> DeviceState:
    """The device answers but reports a fault."""
    return DeviceState(Status.ERROR, reason, detail)


@dataclass
class Backoff:
    """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s … capped, reset on success."""

    base: float = 0.5
    cap: float = 30.0
    attempt: int = 0

    def next_delay(self, rng: random.Random | None = None) -> float:
        """Return the delay before the next retry and count the attempt."""
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return (rng or random).uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Forget past failures (the device is back)."""
        self.attempt = 0


class StateCell:
    """A device's current state, set in one place and awaited by callers.

    Logged once when the device is lost (or its fault changes) and once when it is back.
    """

    def __init__(self, name: str, logger: logging.Logger,
                 initial: DeviceState = CONNECTING) -> None:
        self.name = name
        self.value = initial
        self._log = logger
        self._changed = asyncio.Event()

    def set(self, new: DeviceState) -> DeviceState:
        """Change the state, wake the waiters; return the previous state."""
        old, self.value = self.value, new
        if not new.usable and new.status is not Status.CONNECTING:
            if (new.status, new.reason) != (old.status, old.reason):
                self._log.warning("%s %s (%s): %s", self.name, new.status, new.reason,
                                  new.detail or "")
        elif new.usable and not old.usable and old.status is not Status.CONNECTING:
            self._log.info("%s back: %s", self.name, new.status)
        self._changed.set()
        self._changed = asyncio.Event()
        return old

    async def wait_for(self, accept: Callable[[DeviceState], bool],
                       timeout: float) -> DeviceState:
        """Wait until the state satisfies ``accept``; ``TimeoutError`` after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while not accept(self.value):
                await self._changed.wait()
        return self.value
