"""Receipts from journal entries: documents, text and PNG, the print queue, e-mail, copies.

A receipt is always rebuilt from the signed journal entry (``agent.receipt_views``), so a
reprint says exactly what the first print said. Delivery is durable:

* **print** — the ESC/POS bytes go to a ``drivers.printer.jobs.PrintQueue`` (``print-jobs.sqlite``
  in the data directory), fed to whichever printer driver ``devices`` holds; a printer that is
  away keeps the job pending, and the queue probes it every ``PRINTER_PROBE`` seconds while it
  waits, so the job prints soon after the printer is back;
* **e-mail** — a row in ``box.sqlite`` (``agent.services.mailer``): the text rendering as the
  body, the PNG attached, retried with backoff;
* **copy** — a DUPLICATA is a journal record (``copy`` chain, copy numbers 1, 2, …) before it is
  a document.

``tasks()`` gives the daemon the print and e-mail loops; each survives its own errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

from agent.boxdb import BoxDb
from agent.devices import Devices
from agent.errors import conflict, invalid, not_found
from agent.events import EventBus
from agent.receipt_views import (
    COPYABLE_TYPES,
    ReceiptContext,
    entry_document,
    has_receipt,
    receipt_context,
    ticket_number,
)
from agent.services.mailer import EmailJob, Mail, Mailer, job_id_for, valid_address
from agent.settings import Settings, software_version
from drivers.errors import DeviceError, DeviceTimeout, DeviceUnavailable
from drivers.printer.jobs import PrintJob, PrintQueue
from drivers.printer.protocol import ReceiptPrinter
from drivers.printer.status import PrinterStatus
from drivers.receipt.document import Document
from drivers.receipt.text_render import render_text
from drivers.receipt.texts import Lang
from drivers.states import Backoff, DeviceState, unavailable
from fiscal.chain import Entry
from fiscal.journal import Journal

log = logging.getLogger(__name__)
Loop = Callable[[], Coroutine[Any, Any, None]]

PRINT_QUEUE_FILE = "print-jobs.sqlite"
PRINTER_PROBE = 0.5
"""Seconds between two status probes of an absent printer while jobs wait for it."""
PRINT_RETRY_BASE, PRINT_RETRY_CAP = 0.2, 5.0
"""Backoff (seconds) between two attempts at a job the printer refused or cut."""
LOOP_RESTART = 5.0
LANGUAGES: dict[str, Lang] = {"fr": "fr", "en": "en", "ru": "ru"}
SUBJECTS: dict[Lang, str] = {"fr": "Votre ticket de caisse n° {}",
                             "en": "Your receipt no. {}", "ru": "Ваш кассовый чек № {}"}
CLOSURE_SUBJECTS: dict[Lang, str] = {"fr": "Rapport de clôture n° {}",
                                     "en": "Closure report no. {}", "ru": "Отчёт о закрытии № {}"}


class BoxPrinter:
    """The box's printer as the print queue sees it: whatever driver ``devices`` holds now."""

    def __init__(self, devices: Devices | None) -> None:
        self.devices = devices

    def _driver(self) -> ReceiptPrinter | None:
        devices = self.devices
        return devices.printer if devices is not None and devices.started else None

    @property
    def state(self) -> DeviceState:
        """The printer's state (``unavailable`` while the devices are not started)."""
        if self.devices is None:
            return unavailable("not_configured")
        return self.devices.state_of("printer")

    def _require(self) -> ReceiptPrinter:
        driver = self._driver()
        if driver is None:
            raise DeviceUnavailable("printer not connected", reason="not_connected")
        return driver

    async def print_job(self, job_id: str, data: bytes) -> None:
        """Print one job on the current driver."""
        await self._require().print_job(job_id, data)

    async def status(self) -> PrinterStatus:
        """The current driver's status."""
        return await self._require().status()

    async def kick_drawer(self, pin: int, on_ms: int = 50, off_ms: int = 50) -> None:
        """Pulse the drawer through the current driver."""
        await self._require().kick_drawer(pin, on_ms, off_ms)

    async def wait_for_state(self, accept: Callable[[DeviceState], bool],
                             timeout: float) -> DeviceState:
        """Wait a little for ``accept``; then probe the printer once (a job is waiting)."""
        wait = min(timeout, PRINTER_PROBE)
        driver = self._driver()
        waiter = getattr(driver, "wait_for_state", None)
        if waiter is None:
            await asyncio.sleep(wait)
        else:
            with suppress(DeviceTimeout):
                state: DeviceState = await waiter(accept, wait)
                return state
        if driver is not None:
            with suppress(DeviceError):
                await driver.status()
        if accept(self.state):
            return self.state
        raise DeviceTimeout(f"printer still {self.state.status}", reason="state")


class Receipts:
    """Receipt documents and their delivery (printer, e-mail)."""

    def __init__(self, db: BoxDb, journal: Journal, settings: Settings, devices: Devices | None,
                 bus: EventBus) -> None:
        self.db, self.journal, self.settings = db, journal, settings
        self.devices, self.bus = devices, bus
        self.context: ReceiptContext = receipt_context(settings.store, settings.receipts,
                                                       software_version())
        self.queue = PrintQueue(settings.data_dir / PRINT_QUEUE_FILE, BoxPrinter(devices),
                                backoff=Backoff(PRINT_RETRY_BASE, PRINT_RETRY_CAP))
        self.mailer: Mailer | None = None

    @classmethod
    async def open(cls, db: BoxDb, journal: Journal, settings: Settings,
                   devices: Devices | None, bus: EventBus) -> Receipts:
        """Create the e-mail table and open the print queue's file."""
        receipts = cls(db, journal, settings, devices, bus)
        receipts.mailer = await Mailer.open(db, settings.email, settings.store.name,
                                            receipts.mail_of, receipts.now_text,
                                            receipts._email_changed)
        await receipts.queue.open()
        return receipts

    def tasks(self) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
        """The background loops the daemon runs (print queue, e-mail queue)."""
        loops: dict[str, Loop] = {"receipts print queue": self.queue.run}
        if self.settings.email.enabled:
            loops["receipts e-mail"] = self._mailer().run
        return {name: _resilient(name, loop) for name, loop in loops.items()}

    async def close(self) -> None:
        """Release what ``open`` took."""
        await self.queue.close()

    def now_text(self) -> str:
        """The box clock's time, as API timestamps show it."""
        return self.journal.now().isoformat(timespec="seconds")

    def language(self, lang: Lang | None) -> Lang:
        """The requested language, or the configured default."""
        return lang or self.settings.receipts.language

    # -- documents ------------------------------------------------------------------------------

    async def receipt_entry(self, seq: int) -> Entry:
        """The entry ``seq`` if it has a receipt; else 404 ``receipt_not_found``."""
        entry = await self.journal.get(seq)
        if entry is None or not has_receipt(entry):
            raise not_found("receipt", seq, "seq")
        return entry

    async def document(self, entry: Entry, lang: Lang | None = None) -> Document:
        """The document of a ticket, invoice, copy (with its original) or closure."""
        original = None
        if entry.record.get("type") == "copy":
            original = await self.receipt_entry(int(entry.record["original"]["seq"]))
        return entry_document(entry, self.context, self.language(lang), original)

    async def text(self, seq: int, lang: Lang | None = None) -> str:
        """The receipt of entry ``seq`` as plain text at the paper width."""
        return render_text(await self.document(await self.receipt_entry(seq), lang))

    async def png(self, seq: int, lang: Lang | None = None) -> bytes:
        """The receipt of entry ``seq`` as a PNG at printer resolution."""
        document = await self.document(await self.receipt_entry(seq), lang)
        from drivers.receipt.png_render import render_png  # Pillow loads on first use

        return await asyncio.to_thread(render_png, document)

    async def escpos(self, entry: Entry, lang: Lang | None = None) -> bytes:
        """The ESC/POS bytes of an entry's receipt (CP866 for Russian, else CP858)."""
        language = self.language(lang)
        document = await self.document(entry, language)
        from drivers.receipt.escpos_render import CYRILLIC, FRENCH, render_escpos

        profile = CYRILLIC if language == "ru" else FRENCH
        return await asyncio.to_thread(render_escpos, document, profile)

    # -- printing -------------------------------------------------------------------------------

    async def print(self, seq: int, lang: Lang | None = None, *,
                    idempotency_key: str | None = None) -> PrintJob:
        """Queue the receipt of ``seq`` for the printer; return the job (pending or later)."""
        self.require_printer()
        entry = await self.receipt_entry(seq)
        job_id = _derived_id("print", seq, idempotency_key)
        await self.queue.submit(job_id, await self.escpos(entry, lang))
        job = await self.queue.job(job_id)
        self.bus.publish("receipt", {"seq": seq, "channel": "print", "id": job_id,
                                     "state": job.state.value})
        return job

    def require_printer(self) -> None:
        """Refuse (409 ``printer_not_configured``) on a box without a receipt printer."""
        if self.devices is None or not self.devices.configured("printer"):
            raise conflict("printer_not_configured", "this box has no receipt printer")

    async def print_job(self, job_id: str) -> PrintJob:
        """A print job by id; 404 ``print_job_not_found``."""
        try:
            return await self.queue.job(job_id)
        except KeyError:
            raise not_found("print_job", job_id, "id") from None

    # -- e-mail ---------------------------------------------------------------------------------

    async def email(self, seq: int, to: str, lang: Lang | None = None, *,
                    idempotency_key: str | None = None) -> EmailJob:
        """Queue the receipt of ``seq`` for ``to``; 409 ``email_disabled`` without SMTP."""
        if not self.settings.email.enabled:
            raise conflict("email_disabled", "e-mail receipts are off ([email] enabled)")
        if not valid_address(to):
            raise invalid("invalid_email", "not an e-mail address", "to")
        await self.receipt_entry(seq)
        job = await self._mailer().queue(seq, to, self.language(lang),
                                         job_id_for(seq, idempotency_key))
        self._email_changed(job)
        return job

    async def email_job(self, job_id: str) -> EmailJob:
        """An e-mail by id; 404 ``email_not_found``."""
        job = await self._mailer().get(job_id)
        if job is None:
            raise not_found("email", job_id, "id")
        return job

    async def mail_of(self, job: EmailJob) -> Mail:
        """Subject, text and PNG of a queued e-mail (called by the mailer when sending)."""
        lang = LANGUAGES.get(job.lang, "fr")
        entry = await self.receipt_entry(job.seq)
        number = ticket_number(entry)
        subjects = CLOSURE_SUBJECTS if entry.chain in ("closure", "period") else SUBJECTS
        return Mail(subject=subjects[lang].format(number), text=await self.text(job.seq, lang),
                    attachment=await self.png(job.seq, lang), filename=f"{number}.png")

    def _email_changed(self, job: EmailJob) -> None:
        self.bus.publish("receipt", {"seq": job.seq, "channel": "email", "id": job.id,
                                     "state": job.state})

    def _mailer(self) -> Mailer:
        if self.mailer is None:
            raise RuntimeError("the receipts service is not open")
        return self.mailer

    # -- copies ---------------------------------------------------------------------------------

    async def copy(self, seq: int, operator: str, reason: str | None = None, *,
                   idempotency_key: str | None = None) -> Entry:
        """Journal a DUPLICATA of ticket or invoice ``seq`` (copy chain); return the copy."""
        original = await self.receipt_entry(seq)
        if original.record.get("type") not in COPYABLE_TYPES:
            raise conflict("not_copyable", "only tickets and invoices have copies", "seq")
        entry = await self.journal.copy(seq, operator, reason=reason,
                                        idempotency_key=idempotency_key)
        self.bus.publish("receipt", {"seq": entry.seq, "channel": "copy", "original_seq": seq,
                                     "copy_number": entry.record["copy_number"]})
        return entry


def _derived_id(what: str, seq: int, key: str | None) -> str:
    """A job id: from the idempotency key when there is one (a retry is the same job)."""
    if key is None:
        return f"{what}-{seq}-{uuid.uuid4().hex[:12]}"
    return f"{what}-{seq}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _resilient(name: str, loop: Loop) -> Loop:
    """Run ``loop``; an unexpected error is logged and the loop restarts, never the daemon."""

    async def run() -> None:
        while True:
            try:
                await loop()
            except Exception:
                log.exception("%s loop failed; restarting in %s s", name, LOOP_RESTART)
            await asyncio.sleep(LOOP_RESTART)

    return run

