"""The e-mail queue of receipts: durable rows in ``box.sqlite``, sent over SMTP with retries.

``queue`` writes a row before it returns (so a restart loses nothing); ``run`` is the loop the
daemon runs: it sends each due e-mail with aiosmtplib, building the message only then (through
the ``build`` function the receipts service gives: subject, plain-text body, PNG attachment)::

    queued ──▶ sent
      │  ▲
      └──┘  temporary failure (server away, 4xx, timeout): retried after ``retry_seconds``,
      │     doubling at each attempt, up to ``max_attempts``
      └───▶ failed  (a permanent 5xx refusal, or the last attempt failed); ``last_error`` says why

Retry times are wall-clock seconds (they survive a restart); the timestamps shown to people
(``created_at``, ``sent_at``) come from the box's clock like every other API time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Literal

from agent.boxdb import BoxDb, Row
from agent.settings import EmailSettings

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipt_emails (
    id         TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    recipient  TEXT NOT NULL,
    lang       TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    due        REAL NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at    TEXT
);
CREATE INDEX IF NOT EXISTS receipt_emails_due ON receipt_emails (due) WHERE state = 'queued';
"""
"""One row per e-mail; ``due`` is the wall-clock time (Unix seconds) of the next attempt."""

EMAIL_PATTERN = (r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                 r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
"""An address as people type it: dot-atom local part, a domain name with a letters-only TLD
(no display name, no quoted local part, no IP literal: nothing a header could be smuggled in)."""
MAX_ADDRESS = 254
_ADDRESS = re.compile(EMAIL_PATTERN.removeprefix("^").removesuffix("$"))
EmailState = Literal["queued", "sent", "failed"]
IDLE_WAIT = 60.0
"""Longest sleep of the loop when nothing is due (a new e-mail wakes it at once)."""
RETRY_CAP = 3600.0
_COLUMNS = "id, seq, recipient, lang, state, attempts, last_error, created_at, sent_at"


@dataclass(frozen=True)
class EmailJob:
    """One queued e-mail and where it is."""

    id: str
    seq: int
    to: str
    lang: str
    state: EmailState
    attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None


@dataclass(frozen=True)
class Mail:
    """What an e-mail says: subject, plain-text body and one attachment."""

    subject: str
    text: str
    attachment: bytes
    filename: str
    mime_type: tuple[str, str] = ("image", "png")


MailBuilder = Callable[[EmailJob], Awaitable[Mail]]
JobListener = Callable[[EmailJob], None]


def valid_address(address: str) -> bool:
    """Whether ``address`` is a plain e-mail address (``EMAIL_PATTERN``, at most 254 chars)."""
    return len(address) <= MAX_ADDRESS and _ADDRESS.fullmatch(address) is not None


def job_id_for(seq: int, key: str | None) -> str:
    """A new e-mail's id: derived from the request's idempotency key when it has one."""
    if key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"email:{seq}:{key}".encode()).hexdigest()[:32]


def _job(row: Row) -> EmailJob:
    return EmailJob(id=row[0], seq=row[1], to=row[2], lang=row[3], state=row[4],
                    attempts=row[5], last_error=row[6], created_at=row[7], sent_at=row[8])


class PermanentFailure(Exception):
    """The server refused the e-mail for good (5xx): retrying will not help."""


class Mailer:
    """The queue and its sending loop (``run``)."""

    def __init__(self, db: BoxDb, settings: EmailSettings, sender_name: str, build: MailBuilder,
                 now_text: Callable[[], str], on_change: JobListener | None = None) -> None:
        self.db, self.settings = db, settings
        self._sender_name, self._build = sender_name, build
        self._now_text, self._on_change = now_text, on_change
        self._wake = asyncio.Event()

    @classmethod
    async def open(cls, db: BoxDb, settings: EmailSettings, sender_name: str,
                   build: MailBuilder, now_text: Callable[[], str],
                   on_change: JobListener | None = None) -> Mailer:
        """Create the table if needed."""
        await db.create(SCHEMA)
        return cls(db, settings, sender_name, build, now_text, on_change)

    async def queue(self, seq: int, to: str, lang: str, job_id: str) -> EmailJob:
        """Store an e-mail to send (an id already stored is that e-mail, unchanged)."""
        await self.db.execute(
            "INSERT OR IGNORE INTO receipt_emails (id, seq, recipient, lang, due, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)", (job_id, seq, to, lang, time.time(), self._now_text()))
        self._wake.set()
        job = await self.get(job_id)
        assert job is not None
        return job

    async def get(self, job_id: str) -> EmailJob | None:
        """One e-mail by id, or None."""
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM receipt_emails WHERE id = ?",
                                      (job_id,))
        return None if row is None else _job(row)

    async def run(self) -> None:
        """Send due e-mails one at a time, forever (until cancelled)."""
        while True:
            self._wake.clear()
            job = await self._next_due()
            if job is None:
                await self._sleep_until_due()
                continue
            await self._attempt(job)

    async def _next_due(self) -> EmailJob | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM receipt_emails WHERE state = 'queued' AND due <= ? "
            "ORDER BY due, rowid LIMIT 1", (time.time(),))
        return None if row is None else _job(row)

    async def _sleep_until_due(self) -> None:
        row = await self.db.fetch_one("SELECT min(due) FROM receipt_emails WHERE state = 'queued'")
        wait = IDLE_WAIT if row is None or row[0] is None else row[0] - time.time()
        try:
            async with asyncio.timeout(min(max(wait, 0.0), IDLE_WAIT)):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _attempt(self, job: EmailJob) -> None:
        try:
            await self._send(job)
        except PermanentFailure as error:
            await self._fail(job, str(error))
        except Exception as error:  # any other failure of one send is worth a retry
            await self._retry(job, f"{type(error).__name__}: {error}")
        else:
            await self._mark(job.id, "UPDATE receipt_emails SET state = 'sent', attempts = "
                             "attempts + 1, sent_at = ?, last_error = NULL WHERE id = ?",
                             (self._now_text(), job.id))

    async def _send(self, job: EmailJob) -> None:
        import aiosmtplib  # loaded on the first e-mail, not at start (idle memory)

        message = self.message(job, await self._build(job))
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password else None
        try:
            await aiosmtplib.send(
                message, hostname=settings.host, port=settings.port,
                username=settings.username, password=password, use_tls=settings.tls,
                start_tls=settings.starttls, timeout=settings.timeout_seconds)
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as error:
            raise PermanentFailure(str(error)) from error
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600:
                raise PermanentFailure(f"{error.code} {error.message}") from error
            raise

    def message(self, job: EmailJob, mail: Mail) -> EmailMessage:
        """The MIME message of an e-mail: plain-text body, the attachment after it."""
        message = EmailMessage()
        message["From"] = formataddr((self._sender_name, self.settings.sender))
        message["To"] = job.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(job.id)
        message.set_content(mail.text, charset="utf-8")
        message.add_attachment(mail.attachment, maintype=mail.mime_type[0],
                               subtype=mail.mime_type[1], filename=mail.filename)
        return message

    async def _retry(self, job: EmailJob, error: str) -> None:
        attempts = job.attempts + 1
        if attempts >= self.settings.max_attempts:
            await self._fail(job, error)
            return
        delay = min(RETRY_CAP, self.settings.retry_seconds * 2 ** (attempts - 1))
        log.warning("e-mail %s not sent (attempt %d, again in %.1f s): %s", job.id, attempts,
                    delay, error)
        await self._mark(job.id, "UPDATE receipt_emails SET attempts = ?, due = ?, "
                         "last_error = ? WHERE id = ?",
                         (attempts, time.time() + delay, error[:500], job.id))

    async def _fail(self, job: EmailJob, error: str) -> None:
        log.warning("e-mail %s failed for good: %s", job.id, error)
        await self._mark(job.id, "UPDATE receipt_emails SET state = 'failed', attempts = "
                         "attempts + 1, last_error = ? WHERE id = ?", (error[:500], job.id))

    async def _mark(self, job_id: str, sql: str, parameters: tuple[object, ...]) -> None:
        await self.db.execute(sql, parameters)
        job = await self.get(job_id)
        if job is not None and self._on_change is not None:
            self._on_change(job)
