"""Receipts from journal entries: documents, print queue, e-mail queue, copies, text and PNG.

(Skeleton: filled in by the receipts work. ``Receipts.open`` is the constructor the composition
root calls; ``tasks()`` are the loops the daemon runs.)
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from agent.boxdb import BoxDb
from agent.devices import Devices
from agent.events import EventBus
from agent.settings import Settings
from fiscal.journal import Journal


class Receipts:
    """Receipt documents and their delivery (printer, e-mail)."""

    def __init__(self, db: BoxDb, journal: Journal, settings: Settings, devices: Devices | None,
                 bus: EventBus) -> None:
        self.db, self.journal, self.settings = db, journal, settings
        self.devices, self.bus = devices, bus

    @classmethod
    async def open(cls, db: BoxDb, journal: Journal, settings: Settings,
                   devices: Devices | None, bus: EventBus) -> Receipts:
        """Create the tables if needed."""
        return cls(db, journal, settings, devices, bus)

    def tasks(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """The background loops the daemon runs (print queue, e-mail queue)."""
        return {}

    async def close(self) -> None:
        """Release what ``open`` took."""
