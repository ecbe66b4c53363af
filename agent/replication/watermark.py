"""The cloud's acknowledged watermark, kept in the working database (``box.sqlite``).

``acked_through`` is the highest journal ``seq`` the cloud said it durably stored and
verified, for one journal ``epoch``. It is written only from a cloud ack and only ever moves
forward. It is what the replicator resends from after a reconnect, and what tail protection
compares the journal with: a journal that ends before it was truncated or restored from an
old backup (``tail_problem``).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.boxdb import BoxDb

SCHEMA = """
CREATE TABLE IF NOT EXISTS replication_watermark (
    epoch TEXT PRIMARY KEY,
    acked_through INTEGER NOT NULL,
    acked_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Watermark:
    """The cloud's acknowledgement for one epoch."""

    epoch: str
    acked_through: int = 0
    acked_at: str | None = None


class Watermarks:
    """Read and advance the persisted watermarks."""

    def __init__(self, db: BoxDb) -> None:
        self.db = db

    @classmethod
    async def open(cls, db: BoxDb) -> Watermarks:
        """Create the table if needed."""
        await db.create(SCHEMA)
        return cls(db)

    async def load(self, epoch: str) -> Watermark:
        """The watermark of ``epoch`` (0 when the cloud never acknowledged it)."""
        row = await self.db.fetch_one(
            "SELECT acked_through, acked_at FROM replication_watermark WHERE epoch = ?",
            (epoch,))
        return Watermark(epoch) if row is None else Watermark(epoch, int(row[0]), str(row[1]))

    async def other_epochs(self, epoch: str) -> list[Watermark]:
        """The watermarks of other epochs (a journal re-initialised under this box)."""
        rows = await self.db.fetch_all(
            "SELECT epoch, acked_through, acked_at FROM replication_watermark WHERE epoch != ?"
            " AND acked_through > 0 ORDER BY acked_at", (epoch,))
        return [Watermark(str(row[0]), int(row[1]), str(row[2])) for row in rows]

    async def advance(self, epoch: str, acked_through: int, at: str) -> None:
        """Record an ack; a lower value than the stored one never moves it back."""
        await self.db.execute(
            "INSERT INTO replication_watermark (epoch, acked_through, acked_at) VALUES (?, ?, ?)"
            " ON CONFLICT (epoch) DO UPDATE SET acked_through = excluded.acked_through,"
            " acked_at = excluded.acked_at WHERE excluded.acked_through > acked_through",
            (epoch, acked_through, at))


def tail_problem(journal_seq: int, current: Watermark, others: list[Watermark]) -> str | None:
    """Why the journal is behind what the cloud acknowledged, or None when it is not."""
    if current.acked_through > journal_seq:
        return (f"the journal ends at seq {journal_seq} but the cloud acknowledged through "
                f"seq {current.acked_through} (epoch {current.epoch}): truncated or restored "
                "from an old backup")
    if current.acked_through == 0 and others:
        last = others[-1]
        return (f"the journal was re-initialised (epoch {current.epoch}) after the cloud "
                f"acknowledged seq {last.acked_through} of epoch {last.epoch}")
    return None
