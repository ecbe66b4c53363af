"""The certified journal of one register: the async service every other part calls.

It owns the one writer: under a lock it validates a request (with what the store knows), builds
the record with the pure builders, chains and signs it (``fiscal.chain.append``) and commits it
with its head in one durable transaction, then returns the stored entry. An idempotency key
makes any operation safe to retry: the retry returns the entry stored the first time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fiscal import jet, keys
from fiscal.chain import ChainHead, ChainState, Entry, append, utc_text
from fiscal.closing import business_date, day_end
from fiscal.documents import build_copy, build_invoice, build_return, build_sale
from fiscal.errors import FiscalError, InvalidInput, JournalBusy, KeyFileError, NotFound
from fiscal.handover import Handover
from fiscal.money import check_amount, check_text
from fiscal.records import AnyRecord, CashMovement, Event, OriginalRef
from fiscal.requests import (
    CashMovementRequest,
    EventRequest,
    InvoiceRequest,
    ReturnRequest,
    SaleRequest,
)
from fiscal.settings import JournalSettings
from fiscal.store import DuplicateKey, Row, Store, decode

if TYPE_CHECKING:
    from fiscal.periods import Periods

Clock = Callable[[], dt.datetime]
DB_FILE = "journal.sqlite3"
LOCK_FILE = "journal.lock"
KEY_DIR = "keys"
SYSTEM = "system"


def utc_now() -> dt.datetime:
    """The wall clock, timezone-aware."""
    return dt.datetime.now(dt.UTC)


def _ref(entry: Entry) -> OriginalRef:
    return OriginalRef(seq=entry.seq, chain=entry.chain, chain_seq=entry.chain_seq,
                       register_id=entry.register_id)


class Pending:
    """A record waiting to be committed, with its index columns."""

    __slots__ = ("business_date", "record", "ref_seq")

    def __init__(self, record: AnyRecord, business_date: str | None = None,
                 ref_seq: int | None = None) -> None:
        self.record = record
        self.business_date = business_date
        self.ref_seq = ref_seq


class Journal:
    """One register's journal; open with ``await Journal.open(data_dir, settings)``."""

    def __init__(self, store: Store, key: keys.BoxKey, settings: JournalSettings,
                 clock: Clock, state: ChainState, data_dir: Path) -> None:
        self.store = store
        self.settings = settings
        self.data_dir = data_dir
        self._key = key
        self._clock = clock
        self._state = state
        self._lock = asyncio.Lock()
        self._reader = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True,
                                       check_same_thread=False)
        self.periods: Periods  # closure bookkeeping, set by ``open``
        self.continuation: Handover | None = None
        """The replaced box's journal this one continues (from its initialisation event)."""
        self._tips: Mapping[str, ChainHead] = MappingProxyType({})
        """The handed-over tips, followed by chains that have no entry of their own yet."""
        self._writer_lock: int | None = None

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, data_dir: Path, settings: JournalSettings | None = None,
                   clock: Clock = utc_now, *, handover: Handover | None = None) -> Journal:
        """Open the journal in ``data_dir``; create the key and initialise it on first use.

        ``handover`` (a replaced box's chain tips and closures, see ``fiscal.handover``) is
        recorded by the initialisation of an empty journal, which then continues the replaced
        box's chains; it is ignored when the journal is already initialised.
        """
        settings = settings or JournalSettings()
        writer_lock = _lock_writer(data_dir)
        try:
            store = await Store.open(data_dir / DB_FILE)
        except BaseException:
            os.close(writer_lock)
            raise
        try:
            journal = await cls._start(store, data_dir, settings, clock, handover)
        except BaseException:
            await store.close()
            os.close(writer_lock)
            raise
        journal._writer_lock = writer_lock
        return journal

    @classmethod
    async def _start(cls, store: Store, data_dir: Path, settings: JournalSettings,
                     clock: Clock, handover: Handover | None) -> Journal:
        from fiscal.periods import Periods  # local: periods imports this module
        from fiscal.rotation import finish_pending_rotation

        expected = await store.current_key_id()
        key_dir = data_dir / KEY_DIR
        if expected is not None and key_dir.exists():
            finish_pending_rotation(key_dir, expected)
        key = _load_or_create_key(key_dir, settings.register_id, clock(), expected is None)
        if expected is not None and key.key_id != expected:
            raise KeyFileError(f"the box key {key.key_id} is not the journal's key {expected}")
        state = await store.load_state(settings.store_id, settings.register_id,
                                       settings.timezone)
        journal = cls(store, key, settings, clock, state, data_dir)
        if state.seq == 0:
            await journal._initialise(handover)
        else:
            await journal._resume_continuation()
        journal.periods = await Periods.load(journal)
        return journal

    async def close(self) -> None:
        """Close the store and release the writer lock."""
        self._reader.close()
        await self.store.close()
        if self._writer_lock is not None:
            os.close(self._writer_lock)
            self._writer_lock = None

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _initialise(self, handover: Handover | None) -> None:
        if handover is not None:
            handover.check_placement(self.settings.store_id, self.settings.register_id)
        epoch = uuid.uuid4().hex
        await self.store.set_meta("epoch", epoch)
        details: dict[str, Any] = {
            "key_id": self._key.key_id, "certificate_pem": self._key.certificate_pem(),
            "store_id": self.settings.store_id, "register_id": self.settings.register_id,
            "software": f"{self.settings.software_name} {self.settings.software_version}",
            "epoch": epoch, "timezone": self.settings.timezone}
        description = jet.label(jet.INITIALISATION)
        if handover is not None:
            details["continues"] = handover.details()
            description += f" (replaces box {handover.box_id}: chains continued)"
            self._continue(handover)
        event = Event(code=jet.INITIALISATION, operator=SYSTEM, description=description,
                      details=details)
        await self.commit([Pending(event)], None)

    async def _resume_continuation(self) -> None:
        """Re-read the handover a continuing journal recorded at its initialisation."""
        first = await self.store.get(1)
        continues = first.record.get("details", {}).get("continues") if first else None
        if continues is not None:
            self._continue(Handover.from_json(continues))

    def _continue(self, handover: Handover) -> None:
        """Append each chain after its handed-over tip until this journal has its own head."""
        self.continuation = handover
        self._tips = MappingProxyType(handover.heads())
        heads = {**self._tips, **self._state.heads}
        self._state = replace(self._state, heads=MappingProxyType(heads))

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> ChainState:
        """The chain state after the last committed entry."""
        return self._state

    @property
    def key(self) -> keys.BoxKey:
        """The box key currently signing."""
        return self._key

    @property
    def lock(self) -> asyncio.Lock:
        """The writer lock (held by every operation that reads then appends)."""
        return self._lock

    def now(self) -> dt.datetime:
        """The journal's clock."""
        return self._clock()

    def business_date(self, moment: dt.datetime) -> dt.date:
        """The business date of an instant under the store's closure policy."""
        policy = self.settings.closure
        return business_date(moment, self.settings.timezone, policy.day_starts_at_hour)

    def day_end(self, day: dt.date) -> dt.datetime:
        """The instant a business date ends."""
        return day_end(day, self.settings.timezone, self.settings.closure.day_starts_at_hour)

    def heads(self) -> Mapping[str, ChainHead]:
        """The signed head of each chain of this journal (not the handed-over tips)."""
        if not self._tips:
            return self._state.heads
        return {chain: head for chain, head in self._state.heads.items()
                if head is not self._tips.get(chain)}

    # -- writing ----------------------------------------------------------------------------

    def replay(self, operation: str, key: str | None) -> Entry | None:
        """Return the entry an earlier call with this idempotency key stored, if any."""
        if key is None:
            return None
        # fetchall() finalises the statement: an open one would hold a read snapshot and keep
        # WAL checkpoints from resetting the log, slowing every later commit.
        rows = self._reader.execute("SELECT body FROM entries WHERE idem_key = ?",
                                    (f"{operation}:{key}",)).fetchall()
        return decode(rows[0][0]) if rows else None

    async def commit(self, pending: Sequence[Pending], idem: str | None,
                     now: dt.datetime | None = None) -> list[Entry]:
        """Chain, sign and durably store records (caller holds the lock when it read first)."""
        now = now or self._clock()
        items = list(pending)
        last, now_utc = self._state.last_at_utc, utc_text(now)
        if last is not None and now_utc < last:
            details = {"previous_utc": last, "now_utc": now_utc}
            items.insert(0, Pending(Event(code=jet.CLOCK_BACKWARDS, operator=SYSTEM,
                                          description=jet.label(jet.CLOCK_BACKWARDS),
                                          details=details)))
        state, rows = self._state, []
        for index, item in enumerate(items):
            state, entry, head = append(state, item.record, self._key, now)
            key = idem if index == len(items) - 1 else None
            rows.append(Row(entry, head, item.business_date, item.ref_seq, key))
        await self.store.insert(rows)
        self._state = state
        return [row.entry for row in rows]

    async def _write(self, operation: str, key: str | None, pending: list[Pending],
                     now: dt.datetime) -> Entry:
        idem = None if key is None else f"{operation}:{key}"
        try:
            entries = await self.commit(pending, idem, now)
        except DuplicateKey:
            found = self.replay(operation, key)
            assert found is not None
            return found
        return entries[-1]

    async def _original(self, seq: int, field: str) -> Entry:
        entry = await self.store.get(seq)
        if entry is None:
            raise NotFound(f"no journal entry with seq {seq}", field=field)
        return entry

    async def _check_period(self, day: dt.date, now: dt.datetime) -> None:
        """Apply the closure policy to a record already validated (may auto-close a day)."""
        await self.periods.ensure_open(day, now)

    async def sell(self, request: SaleRequest, *, idempotency_key: str | None = None) -> Entry:
        """Finalize a sale (or a training sale): validate, total, sign, store."""
        async with self._lock:
            now = self._clock()
            day = self.business_date(now)
            try:
                record = build_sale(request, self.settings, day)
                if not request.training:
                    await self._check_period(day, now)
            except FiscalError:
                # A retry of a stored sale answers as the first time, even if it would not
                # validate now; a new sale needs no look-up: the unique key catches a retry.
                if (found := self.replay("sale", idempotency_key)) is not None:
                    return found
                raise
            entry = await self._write("sale", idempotency_key,
                                      [Pending(record, day.isoformat())], now)
        if not request.training:
            self.periods.note_activity(day)
        return entry

    async def refund(self, request: ReturnRequest, *,
                     idempotency_key: str | None = None) -> Entry:
        """Record a return against an original sale of this journal."""
        async with self._lock:
            if (found := self.replay("return", idempotency_key)) is not None:
                return found
            now = self._clock()
            original = await self._original(request.original_seq, "original_seq")
            prior = [e.record for e in await self.store.referencing(original.seq)
                     if e.record["type"] == "return"]
            day = self.business_date(now)
            record = build_return(request, original.record, _ref(original), prior,
                                  self.settings, day)
            await self._check_period(day, now)
            entry = await self._write("return", idempotency_key,
                                      [Pending(record, day.isoformat(), original.seq)], now)
        self.periods.note_activity(day)
        return entry

    async def invoice(self, request: InvoiceRequest, *,
                      idempotency_key: str | None = None) -> Entry:
        """Issue an invoice for a sale, or a credit note for a return."""
        async with self._lock:
            if (found := self.replay("invoice", idempotency_key)) is not None:
                return found
            now = self._clock()
            source = await self._original(request.source_seq, "source_seq")
            if any(e.record["type"] in ("invoice", "credit_note")
                   for e in await self.store.referencing(source.seq)):
                raise InvalidInput("an invoice was already issued for this ticket",
                                   code="already_invoiced", field="source_seq")
            original_invoice = await self._invoice_of_original(source)
            record = build_invoice(request, source.record, _ref(source), original_invoice,
                                   self.business_date(now))
            return await self._write("invoice", idempotency_key,
                                     [Pending(record, None, source.seq)], now)

    async def _invoice_of_original(self, source: Entry) -> OriginalRef | None:
        original = source.record.get("original")
        if not original:
            return None
        for entry in await self.store.referencing(int(original["seq"])):
            if entry.record["type"] == "invoice":
                return _ref(entry)
        return None

    async def copy(self, original_seq: int, operator: str, *, reason: str | None = None,
                   idempotency_key: str | None = None) -> Entry:
        """Record a reprint (DUPLICATA) of a ticket or invoice; numbers copies 1, 2, …."""
        async with self._lock:
            if (found := self.replay("copy", idempotency_key)) is not None:
                return found
            original = await self._original(original_seq, "original_seq")
            copies = sum(e.record["type"] == "copy"
                         for e in await self.store.referencing(original.seq))
            record = build_copy(original.record, _ref(original), copies, operator, reason)
            return await self._write("copy", idempotency_key,
                                     [Pending(record, None, original.seq)], self._clock())

    async def cash_movement(self, request: CashMovementRequest, *,
                            idempotency_key: str | None = None) -> Entry:
        """Journal a float, cash in, cash out or safe drop (not a sale)."""
        check_text(request.operator, "operator", max_length=64)
        check_amount(request.amount, "amount")
        if request.amount == 0:
            raise InvalidInput("amount must be positive", code="amount_not_positive",
                               field="amount")
        if request.tender not in self.settings.tenders:
            raise InvalidInput(f"unknown tender {request.tender!r}", code="unknown_tender",
                               field="tender")
        if request.reason is not None:
            check_text(request.reason, "reason")
        async with self._lock:
            if (found := self.replay("cash", idempotency_key)) is not None:
                return found
            now = self._clock()
            day = self.business_date(now)
            record = CashMovement(kind=request.kind, operator=request.operator,
                                  tender=request.tender, amount=request.amount,
                                  reason=request.reason, business_date=day.isoformat())
            await self._check_period(day, now)
            entry = await self._write("cash", idempotency_key,
                                      [Pending(record, day.isoformat())], now)
        self.periods.note_activity(day)
        return entry

    async def record_event(self, request: EventRequest, *,
                           idempotency_key: str | None = None) -> Entry:
        """Journal a technical event of the code table (codes the journal owns are refused)."""
        table = jet.code_table()
        if request.code not in table or table[request.code].chained:
            raise InvalidInput(f"event code {request.code} cannot be recorded",
                               code="unknown_event_code", field="code")
        check_text(request.operator, "operator", max_length=64)
        description = request.description or table[request.code].label
        check_text(description, "description")
        record = Event(code=request.code, operator=request.operator, description=description,
                       details=dict(request.details))
        async with self._lock:
            if (found := self.replay("event", idempotency_key)) is not None:
                return found
            return await self._write("event", idempotency_key, [Pending(record)], self._clock())

    async def rotate_key(self, operator: str) -> Entry:
        """Replace the box key; the rotation event, signed by the old key, links the new one."""
        from fiscal.rotation import rotate  # local: rotation imports this module

        return await rotate(self, operator)

    def use_key(self, key: keys.BoxKey) -> None:
        """Sign with ``key`` from now on (called by key rotation after its event commits)."""
        self._key = key

    # -- reading ----------------------------------------------------------------------------

    async def get(self, seq: int) -> Entry | None:
        """Return the entry with global sequence ``seq``."""
        return await self.store.get(seq)

    def entries(self, from_seq: int = 1, to_seq: int | None = None) -> AsyncIterator[Entry]:
        """Iterate over entries in global order."""
        return self.store.iterate(from_seq, to_seq)

    async def epoch(self) -> str:
        """The journal's epoch id (changes only when a journal is re-initialised)."""
        return await self.store.get_meta("epoch") or ""


def _lock_writer(data_dir: Path) -> int:
    """Take the data directory's exclusive writer lock (released when the process ends)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        os.close(fd)
        raise JournalBusy(f"the journal in {data_dir} is open in another process (a running "
                          "box?); use its API, or stop it first") from error
    return fd


def _load_or_create_key(directory: Path, register_id: str, now: dt.datetime,
                        journal_empty: bool) -> keys.BoxKey:
    """Load the box key; create it when the journal has none yet.

    Key material left incomplete by a crash during the very first start (before anything was
    signed) is discarded and made anew; once the journal names a key, it never is.
    """
    # only the box's signing key is ours here: the keys dir also holds the MQTT identity
    # (``tillbox fleet csr/apply``), which the journal must never touch
    if directory.exists():
        for leftover in directory.glob(f"{keys.FILE_PREFIX}*.tmp"):
            leftover.unlink()
    if (directory / keys.KEY_FILE).exists():
        try:
            return keys.load(directory)
        except KeyFileError as error:
            if not (journal_empty and error.code == "key_incomplete"):
                raise
    elif directory.exists() and any(directory.glob(f"{keys.FILE_PREFIX}*.pem")) \
            and not journal_empty:
        raise KeyFileError(f"{directory} holds key material but no {keys.KEY_FILE}")
    if directory.exists():
        for stale in directory.glob(f"{keys.FILE_PREFIX}*.pem"):
            stale.unlink()
    key = keys.generate(register_id, now)
    keys.save(key, directory)
    return key
