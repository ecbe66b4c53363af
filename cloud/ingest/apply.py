"""Apply one batch of a box: verify, then store it in one transaction under the box's row lock.

The expensive part — the journal verifier and extracting the columns — runs *before* taking the
lock, against a snapshot of the box's state, so that workers verify batches of the same box in
parallel; under the lock the state is read again, and the check is redone only when the
snapshot was stale (another key became current, or the batch now overlaps stored entries).
The outcome is an ``Answer``: an ack (stored, or a duplicate: the current watermark), a nack
(refused: nothing of the batch stored, an alarm raised), or *ahead* (a gap before the batch:
the worker holds it until the gap fills).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

import psycopg

from cloud.ingest import wire
from cloud.ingest.checks import CLEAN, Tip, Verdict, follow, refuse, trusted_after, verify_run
from cloud.ingest.handover import check_successor
from cloud.ingest.rows import EntryRow, entry_row
from cloud.ingest.store import (
    BoxState,
    Connection,
    box_state,
    epoch_seen,
    lock_box,
    raise_alarm,
    store_run,
    switch_epoch,
)
from cloud.ingest.wire import Batch, BatchError

NEW_EPOCH = "new_epoch"
STALE_EPOCH = "stale_epoch"


@dataclass(frozen=True)
class Answer:
    """What the worker publishes for a batch (``seq``: acked_through or expected_seq)."""

    kind: Literal["ack", "nack", "ahead"]
    epoch: str
    seq: int
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Checked:
    """A batch checked from ``start_seq`` on with ``certificates`` trusted: verdict and rows."""

    batch: Batch
    start_seq: int
    certificates: tuple[str, ...]
    verdict: Verdict
    rows: tuple[EntryRow, ...] = ()


@dataclass(frozen=True)
class Position:
    """Where a batch stands against the box's journal: its watermark and trusted keys."""

    acked_through: int
    certificates: tuple[str, ...]
    new_epoch: bool = False


def check(batch: Batch, start_seq: int, certificates: tuple[str, ...]) -> Checked:
    """Verify the batch's entries from ``start_seq`` and extract their rows (CPU only)."""
    bodies = batch.bodies[start_seq - batch.from_seq:]
    verdict = verify_run(bodies, start_seq, certificates)
    if not verdict.ok:
        return Checked(batch, start_seq, certificates, verdict)
    try:
        rows = tuple(entry_row(body) for body in bodies)
    except BatchError as error:
        return Checked(batch, start_seq, certificates, refuse(error.reason, error.detail))
    return Checked(batch, start_seq, certificates, CLEAN, rows)


def _same_journal(batch: Batch, state: BoxState | None) -> bool:
    return state is None or state.epoch in (None, batch.epoch)


def snapshot_position(batch: Batch, state: BoxState | None) -> Position:
    """The position to verify against, from a state read without the lock."""
    if state is None:
        return Position(0, ())
    if _same_journal(batch, state):
        return Position(state.acked_through, state.certificates)
    return Position(0, (), new_epoch=True)


def start_of(batch: Batch, position: Position) -> int:
    """The first seq of the batch not stored yet."""
    return max(batch.from_seq, position.acked_through + 1)


class Applier:
    """Applies batches through one connection (one worker: one batch at a time)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def receive(self, batch: Batch, earlier: Checked | None = None) -> tuple[
            Answer, Checked | None]:
        """Handle a batch (``prepare`` then ``apply``; ``earlier``: a check made before)."""
        prepared = earlier or await self.prepare(batch)
        if isinstance(prepared, Answer):
            return prepared, None
        return await self.apply(prepared)

    async def prepare(self, batch: Batch, checker: Executor | None = None) -> Answer | Checked:
        """Without any lock: the ack of a duplicate, or the batch checked against a snapshot.

        The check runs in ``checker`` when given (a thread: the event loop meanwhile goes on
        serving the transactions in flight, which hold a box's lock), else in this thread.
        """
        state = await box_state(self.conn, batch.box)
        position = snapshot_position(batch, state)
        if not position.new_epoch and batch.to_seq <= position.acked_through:
            return Answer("ack", batch.epoch, position.acked_through)
        start = start_of(batch, position)
        if checker is None:
            return check(batch, start, position.certificates)
        return await asyncio.get_running_loop().run_in_executor(
            checker, check, batch, start, position.certificates)

    async def apply(self, checked: Checked) -> tuple[Answer, Checked | None]:
        """Store a checked batch under the box's lock.

        Returns the answer, and the check to keep when the batch is ahead of a gap.
        """
        try:
            async with self.conn.transaction():
                answer = await self._locked(checked, skip_stored=False)
        except psycopg.errors.UniqueViolation:  # see ``store_run``
            async with self.conn.transaction():
                answer = await self._locked(checked, skip_stored=True)
        return answer, checked if answer.kind == "ahead" else None

    async def _locked(self, checked: Checked, *, skip_stored: bool) -> Answer:
        batch = checked.batch
        state, tips = await lock_box(self.conn, batch.box, batch.epoch)
        position = await self._position(batch, state)
        if position is None:
            return await self._stale(batch, state)
        if not position.new_epoch and batch.to_seq <= position.acked_through:
            return Answer("ack", batch.epoch, position.acked_through)
        if batch.from_seq > position.acked_through + 1:
            return Answer("ahead", batch.epoch, position.acked_through + 1)
        checked = _reuse(checked, batch, position) or check(
            batch, start_of(batch, position), position.certificates)
        return await self._apply(checked, state, position, tips, skip_stored)

    async def _position(self, batch: Batch, state: BoxState) -> Position | None:
        """The position under the lock; ``None`` for a batch of an earlier epoch."""
        if _same_journal(batch, state):
            return Position(state.acked_through, state.certificates)
        if await epoch_seen(self.conn, batch.box, batch.epoch):
            return None
        return Position(0, (), new_epoch=True)

    async def _stale(self, batch: Batch, state: BoxState) -> Answer:
        detail = (f"batch of epoch {batch.epoch}, an earlier journal of this box; the box "
                  f"replicates epoch {state.epoch} now (journal restored from a backup?)")
        await raise_alarm(self.conn, batch.box, batch.epoch, STALE_EPOCH,
                          refuse(wire.EPOCH, detail, batch.from_seq))
        return Answer("nack", batch.epoch, 1, wire.EPOCH, detail)

    async def _apply(self, checked: Checked, state: BoxState, position: Position,
                     known: dict[str, Tip], skip_stored: bool) -> Answer:
        """Store a run that continues the journal (tips: of the batch's epoch), or refuse it."""
        batch, expected = checked.batch, position.acked_through + 1
        verdict, tips = checked.verdict, {}
        if verdict.ok:
            identity = (None, None) if position.new_epoch else (state.store_id,
                                                                state.register_id)
            continued = follow(checked.rows, checked.start_seq, known, identity, batch.epoch)
            verdict, tips = continued.verdict, continued.tips
        if not verdict.ok:
            assert verdict.reason is not None
            await raise_alarm(self.conn, batch.box, batch.epoch, verdict.reason, verdict)
            return Answer("nack", batch.epoch, expected, verdict.reason, verdict.detail)
        if position.new_epoch:
            await self._switch(batch, state)
        if checked.start_seq == 1:  # a replacement box's journal: as handed over?
            await check_successor(self.conn, batch.box, batch.epoch, checked.rows)
        await store_run(self.conn, state, batch.epoch, checked.rows, tips,
                        trusted_after(checked.rows, position.certificates),
                        skip_stored=skip_stored)
        return Answer("ack", batch.epoch, checked.rows[-1].seq)

    async def _switch(self, batch: Batch, state: BoxState) -> None:
        await switch_epoch(self.conn, batch.box, batch.epoch)
        if state.epoch is not None:
            detail = f"the box started a new journal: epoch {state.epoch} → {batch.epoch}"
            await raise_alarm(self.conn, batch.box, batch.epoch, NEW_EPOCH,
                              refuse(NEW_EPOCH, detail, 1))

    async def expected(self, box: str, epoch: str) -> Answer:
        """The gap nack for a batch of ``box`` held too long: resend from the watermark."""
        state = await box_state(self.conn, box)
        acked = state.acked_through if state is not None and state.epoch == epoch else 0
        return Answer("nack", epoch, acked + 1, wire.GAP,
                      f"entries from seq {acked + 1} did not arrive in time")


def _reuse(checked: Checked | None, batch: Batch, position: Position) -> Checked | None:
    """An earlier check of the batch, if it was made from the same start with the same keys."""
    if checked is None or checked.batch is not batch:
        return None
    if (checked.start_seq, checked.certificates) != (start_of(batch, position),
                                                     position.certificates):
        return None
    return checked
