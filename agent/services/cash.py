"""Cash sessions: open with a float, cash in/out, safe drop, X, close with the count → Z.

(Skeleton: filled in by the cash-session work. ``CashDesk.open`` is the constructor the
composition root calls.)
"""

from __future__ import annotations

from agent.boxdb import BoxDb
from agent.events import EventBus
from agent.observability import Health
from fiscal.journal import Journal


class CashDesk:
    """The cash sessions of the till."""

    def __init__(self, db: BoxDb, journal: Journal, health: Health, bus: EventBus) -> None:
        self.db, self.journal, self.health, self.bus = db, journal, health, bus

    @classmethod
    async def open(cls, db: BoxDb, journal: Journal, health: Health,
                   bus: EventBus) -> CashDesk:
        """Create the tables if needed."""
        return cls(db, journal, health, bus)
