"""Around the fiscal write of a sale or a return: its receipt, the receipt's delivery, the drawer.

Before the write, ``check_delivery`` refuses the wishes that could not be honoured (a print on a
box without a printer, an e-mail while e-mail is off or to a malformed address), so that a sale
is never journaled with a promise that then fails. After the write, ``deliver`` puts the
receipt document in the answer, queues the print job and the e-mail (their states go in the
answer: a printer that is away keeps the job pending, it prints when it is back) and opens the
drawer when cash changed hands. Nothing after the write fails the request: the sale is in the
journal; a device problem is logged and shows in the device's state.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from agent.devices import Devices
from agent.errors import ProblemError, conflict, invalid
from agent.http.cash_api import drawer_kick
from agent.http.devices_api import DeviceProblem
from agent.http.receipts_api import (
    EmailOut,
    PrintJobOut,
    ReceiptOut,
    email_out,
    print_job_out,
    receipt_out,
)
from agent.services.mailer import valid_address
from agent.services.receipts import Receipts
from fiscal.chain import Entry

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Delivery:
    """The receipt of a journaled ticket and what was done with it."""

    receipt: ReceiptOut
    print_job: PrintJobOut | None = None
    email: EmailOut | None = None
    drawer_opened: bool = False


def check_delivery(receipts: Receipts, print_receipt: bool, email: str | None) -> None:
    """Refuse, before anything is journaled, the delivery wishes that cannot be honoured."""
    if print_receipt:
        receipts.require_printer()
    if email is not None:
        if not receipts.settings.email.enabled:
            raise conflict("email_disabled", "e-mail receipts are off ([email] enabled)",
                           "email")
        if not valid_address(email):
            raise invalid("invalid_email", "not an e-mail address", "email")


def took_cash(entry: Entry) -> bool:
    """Whether cash changed hands (paid, given back as change, or refunded)."""
    record = entry.record
    return bool(record.get("change")) or any(
        payment["tender"] == "cash" for payment in record.get("payments", ()))


async def deliver(receipts: Receipts, devices: Devices | None, entry: Entry, *,
                  print_receipt: bool = False, email: str | None = None,
                  key: str | None = None) -> Delivery:
    """The receipt of ``entry``, printed and e-mailed as asked; the drawer opened for cash."""
    receipt = await receipt_out(receipts, entry)
    job = mail = None
    key = key or f"ticket-{entry.seq}"
    try:
        if print_receipt:
            job = print_job_out(await receipts.print(entry.seq, idempotency_key=key))
        if email is not None:
            mail = email_out(await receipts.email(entry.seq, email, idempotency_key=key))
    except ProblemError as error:  # checked before the write; only a race gets here
        log.warning("receipt_delivery_failed", seq=entry.seq, code=error.code)
    opened = took_cash(entry) and not entry.record.get("training") and \
        await _open_drawer(devices, entry.seq)
    return Delivery(receipt, job, mail, opened)


async def _open_drawer(devices: Devices | None, seq: int) -> bool:
    if devices is None or not devices.configured("drawer"):
        return False
    try:
        await drawer_kick(devices)()
    except (ProblemError, DeviceProblem) as error:
        log.warning("drawer_not_opened", seq=seq, error=str(error))
        return False
    return True
