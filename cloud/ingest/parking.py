"""Batches held by a worker because entries before them have not been stored yet.

With a shared subscription, a box's consecutive batches reach different workers and may be
applied out of order; a batch ahead of the watermark waits here (already verified) until a
commit of the gap — this worker's or another's, announced by ``NOTIFY`` — lets it through.
A batch held longer than the gap timeout is dropped and the box is nacked with the seq the
cloud expects (the box rewinds and sends again). Memory stays bounded: a few batches per box.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud.ingest.apply import Checked

MAX_PER_BOX = 32


@dataclass(frozen=True)
class Parked:
    """A checked batch and when it was first held."""

    checked: Checked
    since: float


class Parking:
    """The held batches of one worker, per box, by first seq."""

    def __init__(self, max_per_box: int = MAX_PER_BOX) -> None:
        self._boxes: dict[str, dict[int, Parked]] = {}
        self._max = max_per_box

    def hold(self, checked: Checked, now: float, since: float | None = None) -> bool:
        """Hold a batch (a resend replaces the copy held); ``False`` when the box's room is full."""
        held = self._boxes.setdefault(checked.batch.box, {})
        key = checked.batch.from_seq
        if key not in held and len(held) >= self._max:
            return False
        earlier = held.get(key)
        first = since if since is not None else earlier.since if earlier else now
        held[key] = Parked(checked, first)
        return True

    def take(self, box: str) -> list[Parked]:
        """Remove and return a box's held batches, lowest first seq first."""
        held = self._boxes.pop(box, {})
        return [held[key] for key in sorted(held)]

    def overdue(self, now: float, timeout: float) -> list[tuple[str, str]]:
        """Drop the boxes whose oldest batch waited over ``timeout``: their ``(box, epoch)``."""
        late = [(box, min(held.values(), key=lambda p: p.since).checked.batch.epoch)
                for box, held in self._boxes.items()
                if any(now - parked.since > timeout for parked in held.values())]
        for box, _ in late:
            del self._boxes[box]
        return late

    def __contains__(self, box: str) -> bool:
        return box in self._boxes

    def __len__(self) -> int:
        return sum(len(held) for held in self._boxes.values())
