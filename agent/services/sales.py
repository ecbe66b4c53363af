"""Selling: ticket drafts, lines, discounts, payments, finalize; park/resume; voids; returns.

(Skeleton: filled in by the sales work. ``Sales.open`` is the constructor the composition root
calls.)
"""

from __future__ import annotations

from agent.boxdb import BoxDb
from agent.devices import Devices
from agent.events import EventBus
from agent.observability import Health
from agent.services.catalog import Catalog
from fiscal.journal import Journal


class Sales:
    """Ticket drafts and their finalization into the journal."""

    def __init__(self, db: BoxDb, journal: Journal, catalog: Catalog, health: Health,
                 bus: EventBus, devices: Devices | None) -> None:
        self.db, self.journal, self.catalog = db, journal, catalog
        self.health, self.bus, self.devices = health, bus, devices

    @classmethod
    async def open(cls, db: BoxDb, journal: Journal, catalog: Catalog, health: Health,
                   bus: EventBus, devices: Devices | None) -> Sales:
        """Create the tables if needed."""
        return cls(db, journal, catalog, health, bus, devices)
