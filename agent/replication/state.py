"""What the replication shows of itself: link state, backlog, lag, last ack, counters.

``ReplicationSnapshot`` is read by ``/health`` (as ``ReplicationOut``), the status page and
``/metrics``. Link states:

* ``connecting`` — a connection attempt is under way;
* ``connected`` — the session is up: batches flow and acks come back;
* ``offline`` — no connection (broker unreachable, link lost): retrying with backoff;
* ``refused`` — the broker refused us (not authorised, banned, …): an alarm was raised and
  the next attempt waits ``cloud.refused_backoff_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

LinkState = Literal["connecting", "connected", "offline", "refused"]
LINK_STATES: tuple[LinkState, ...] = ("connecting", "connected", "offline", "refused")


@dataclass
class Counters:
    """Monotonic counts since the box started (Prometheus counters)."""

    batches_sent: int = 0
    entries_sent: int = 0
    acks: int = 0
    nacks: int = 0
    ack_timeouts: int = 0
    connections: int = 0
    connection_failures: int = 0
    refusals: int = 0


@dataclass(frozen=True)
class ReplicationSnapshot:
    """The replication now."""

    link: LinkState
    broker: str
    box_id: str
    epoch: str
    journal_seq: int
    acked_through: int
    backlog: int
    lag_seconds: float
    last_ack_at: str | None
    last_error: str | None
    counters: Counters


class ReplicationOut(BaseModel):
    """Replication to the cloud, in ``/health``."""

    link: LinkState
    broker: str
    box_id: str
    epoch: str
    acked_through: int
    backlog: int
    lag_seconds: float
    last_ack_at: str | None
    last_error: str | None

    @classmethod
    def of(cls, snapshot: ReplicationSnapshot) -> ReplicationOut:
        """The ``/health`` view of a snapshot."""
        return cls(link=snapshot.link, broker=snapshot.broker, box_id=snapshot.box_id,
                   epoch=snapshot.epoch, acked_through=snapshot.acked_through,
                   backlog=snapshot.backlog, lag_seconds=snapshot.lag_seconds,
                   last_ack_at=snapshot.last_ack_at, last_error=snapshot.last_error)
