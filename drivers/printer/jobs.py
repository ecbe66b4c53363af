"""A durable print-job queue in front of any ``ReceiptPrinter``: serialised, journaled, reprinted.

Every job is written to a small SQLite file (WAL, ``synchronous=FULL``) before ``submit`` returns,
under the caller's ``job_id``: submitting the same id twice is one job (the idempotency id of
PERIPHERALS.md; the first data wins, a later one is ignored with a warning). One worker
(:meth:`PrintQueue.run`) prints the jobs one at a time, in submission order::

    pending ──▶ printing ──▶ done
       ▲            │
       └────────────┘  DeviceError (paper out, cover open, unplugged, silent, garbage)

A job is ``done`` only when the driver's ``print_job`` returns, i.e. after the printer confirmed
the end of the job. When the driver raises, the job goes back to ``pending`` (``attempts`` and
``last_error`` say why) and the worker waits until the printer is usable again (the driver's
``wait_for_state`` when it has one, else polling ``printer.state`` with backoff), then prints it
again **in full**: the jobs behind it wait, so the order on paper is the order of submission.

**Trade-off after a power cut.** A job found in state ``printing`` when the queue opens was being
printed when the box lost power (or the process died). We cannot know how much of it came out,
so we reprint it in full: a receipt may come out partly twice (the part before the cut, then the
whole), but none is ever lost. The same holds for a job cut by paper out: the printed part stays
on the old roll and the whole job is printed again on the new one. Option: ``reprint_prefix``
(already-encoded ESC/POS bytes, e.g. a "REPRINT" line) is sent before any job that is printed for
the second time or more, so that the staff can tell the duplicate part apart. It is empty by
default, and it is also sent when the earlier attempt was refused before anything was printed.

State ``failed`` is in the schema for a job given up by an operator; this module never writes it
yet. One queue per file and per printer; SQLite runs in one worker thread owned by the queue.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TypeVar, runtime_checkable

from drivers.errors import DeviceError, DeviceTimeout
from drivers.printer.protocol import ReceiptPrinter
from drivers.states import Backoff, DeviceState

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id     TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'printing', 'done', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    created    REAL NOT NULL,
    finished   REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (state) WHERE state IN ('pending', 'printing');
"""
"""The queue's table; jobs print in ``rowid`` order, which is the order of submission."""

_STATE_WAIT = 10.0
"""Seconds per ``wait_for_state`` call while waiting for the printer to be usable."""


class JobState(StrEnum):
    """Where a print job is."""

    PENDING = "pending"
    PRINTING = "printing"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class PrintJob:
    """A job as the status page shows it (without its bytes)."""

    job_id: str
    state: JobState
    attempts: int
    created: float
    finished: float | None
    last_error: str | None
    size: int


@runtime_checkable
class StateWaiter(Protocol):
    """A driver that can wait for a state change (``NetworkPrinter`` can)."""

    async def wait_for_state(self, accept: Callable[[DeviceState], bool],
                             timeout: float) -> DeviceState:
        """Wait until the state satisfies ``accept``; ``DeviceTimeout`` after ``timeout`` s."""
        ...


_COLUMNS = "job_id, state, attempts, created, finished, last_error, length(data)"


def _job(row: tuple[str, str, int, float, float | None, str | None, int]) -> PrintJob:
    return PrintJob(row[0], JobState(row[1]), *row[2:])


class _Store:
    """The SQLite side, synchronous: every method runs in the queue's one worker thread."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL").fetchall()
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def recover(self) -> list[str]:
        """Put jobs cut by a power cut back in line; return their ids."""
        ids = [row[0] for row in self._db.execute(
            "SELECT job_id FROM jobs WHERE state = 'printing' ORDER BY rowid")]
        self._db.execute("UPDATE jobs SET state = 'pending', last_error = 'power_cut: "
                         "interrupted by a restart' WHERE state = 'printing'")
        return ids

    def add(self, job_id: str, data: bytes) -> bool:
        """Insert the job unless its id exists; return whether a different job had the id."""
        self._db.execute("INSERT OR IGNORE INTO jobs (job_id, data, created) VALUES (?, ?, ?)",
                         (job_id, data, time.time()))
        row = self._db.execute("SELECT data FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return bytes(row[0]) != data

    def next_pending(self) -> tuple[str, bytes, int] | None:
        row = self._db.execute("SELECT job_id, data, attempts FROM jobs WHERE state = 'pending' "
                               "ORDER BY rowid LIMIT 1").fetchone()
        return None if row is None else (row[0], bytes(row[1]), row[2])

    def mark_printing(self, job_id: str) -> None:
        self._db.execute("UPDATE jobs SET state = 'printing', attempts = attempts + 1 "
                         "WHERE job_id = ?", (job_id,))

    def mark_pending(self, job_id: str, reason: str) -> None:
        self._db.execute("UPDATE jobs SET state = 'pending', last_error = ? WHERE job_id = ?",
                         (reason, job_id))

    def mark_done(self, job_id: str) -> None:
        self._db.execute("UPDATE jobs SET state = 'done', finished = ? WHERE job_id = ?",
                         (time.time(), job_id))

    def job(self, job_id: str) -> PrintJob | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?",
                               (job_id,)).fetchone()
        return None if row is None else _job(row)

    def jobs(self) -> list[PrintJob]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY rowid")
        return [_job(row) for row in rows]


class PrintQueue:
    """Durable, ordered, idempotent print jobs for one printer; ``async with`` runs the worker."""

    def __init__(self, path: Path, printer: ReceiptPrinter, *, backoff: Backoff | None = None,
                 reprint_prefix: bytes = b"") -> None:
        self.path, self._printer = path, printer
        self._backoff = backoff or Backoff()
        self._reprint_prefix = reprint_prefix
        self._executor: ThreadPoolExecutor | None = None
        self._store: _Store | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        """Open the file, put jobs cut by a power cut back in line and start :meth:`run`."""
        await self.open()
        self._worker = asyncio.create_task(self.run(), name=f"print queue {self.path}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Stop the worker (a job being printed stays ``printing``) and close the file."""
        await self.close()

    async def open(self) -> None:
        """Open (or create) the file; a job left ``printing`` will be printed again in full."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="print-queue")
        store = self._store = await self._call(_Store, self.path)
        for job_id in await self._call(store.recover):
            log.warning("print job %s was cut by a restart: printing it again in full", job_id)

    async def close(self) -> None:
        """Stop the worker, close the connection and its thread (safe to call twice)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with suppress(asyncio.CancelledError):
                await worker
        store, self._store = self._store, None
        if store is not None:
            await self._call(store.close)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    async def submit(self, job_id: str, data: bytes) -> None:
        """Journal a job (durably, before returning); the same ``job_id`` again is ignored."""
        if await self._call(self._opened().add, job_id, data):
            log.warning("print job %s submitted again with other data: kept the first", job_id)
        self._wake.set()

    async def jobs(self) -> list[PrintJob]:
        """Every job in the file, oldest first (for the status page)."""
        return await self._call(self._opened().jobs)

    async def job(self, job_id: str) -> PrintJob:
        """One job; ``KeyError`` if unknown."""
        found = await self._call(self._opened().job, job_id)
        if found is None:
            raise KeyError(job_id)
        return found

    async def wait_job(self, job_id: str, accept: Callable[[PrintJob], bool],
                       timeout: float) -> PrintJob:
        """Wait until the job satisfies ``accept``; ``DeviceTimeout`` after ``timeout`` s."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    if accept(job := await self.job(job_id)):
                        return job
                    await changed.wait()
        except TimeoutError as exc:
            raise DeviceTimeout(f"print job {job_id} not there in {timeout} s",
                                reason="job_pending") from exc

    async def wait_done(self, job_id: str, timeout: float) -> PrintJob:
        """Wait until the job is printed; ``DeviceTimeout`` after ``timeout`` s."""
        return await self.wait_job(job_id, lambda job: job.state is JobState.DONE, timeout)

    async def run(self) -> None:
        """Print pending jobs in order, forever (until cancelled); each until it is done."""
        store = self._opened()
        while True:
            self._wake.clear()
            job = await self._call(store.next_pending)
            if job is None:
                await self._wake.wait()
                continue
            await self._print_until_done(*job)

    async def _print_until_done(self, job_id: str, data: bytes, attempts: int) -> None:
        store = self._opened()
        while True:
            await self._wait_usable()
            await self._set(store.mark_printing, job_id)
            prefix = self._reprint_prefix if attempts > 0 else b""
            attempts += 1
            try:
                await self._printer.print_job(job_id, prefix + data)
            except DeviceError as exc:
                log.warning("print job %s cut (%s): it will be printed again", job_id, exc.reason)
                await self._set(store.mark_pending, job_id, f"{exc.reason}: {exc}")
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            await self._set(store.mark_done, job_id)
            return

    async def _wait_usable(self) -> None:
        """Wait until the printer can take a job (its own wait if it has one, else polling)."""
        printer = self._printer
        if isinstance(printer, StateWaiter):
            while not printer.state.usable:
                with suppress(DeviceTimeout):
                    await printer.wait_for_state(lambda state: state.usable, _STATE_WAIT)
            return
        polling = Backoff(base=self._backoff.base, cap=self._backoff.cap)
        while not printer.state.usable:
            await asyncio.sleep(polling.next_delay())

    async def _set(self, change: Callable[..., None], *args: str) -> None:
        """Apply a state change in the file, then wake whoever waits on a job."""
        await self._call(change, *args)
        self._changed.set()
        self._changed = asyncio.Event()

    def _opened(self) -> _Store:
        if self._store is None:
            raise RuntimeError("the print queue is not open")
        return self._store

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        """Run one blocking SQLite call in the queue's thread."""
        if self._executor is None:
            raise RuntimeError("the print queue is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
