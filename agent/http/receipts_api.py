"""The receipts routes: a journal entry's receipt as JSON, text or PNG; print, e-mail, copy.

Every route needs a signed-in cashier (``CashierDep``) and takes ``?lang=fr|en|ru`` (default:
the ``[receipts] language`` setting). A ``seq`` that is not a ticket, invoice, copy or closure
answers 404 ``receipt_not_found``. ``receipt_out(receipts, entry, lang)`` is the JSON document
other routes (finalizing a sale) return with their entry.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field, field_validator

from agent.http.auth import CashierDep
from agent.http.idempotency import current_key
from agent.http.models import Body, Reason
from agent.receipt_views import ReceiptKind, ticket_number
from agent.services.guard import ensure_fiscal_writes
from agent.services.mailer import (
    EMAIL_PATTERN,
    MAX_ADDRESS,
    EmailJob,
    EmailState,
    valid_address,
)
from agent.services.receipts import Receipts
from drivers.printer.jobs import PrintJob
from drivers.receipt.document import (
    Barcode,
    Blank,
    Block,
    Cut,
    Document,
    Logo,
    Paper,
    QrCode,
    Row,
    Rule,
    Text,
)
from drivers.receipt.text_render import render_text
from drivers.receipt.texts import Lang
from fiscal.chain import Entry

if TYPE_CHECKING:
    from agent.http.context import AppServices

MAX_SEQ = 2**62
PaperName = Literal["80mm", "58mm"]
PAPER_NAMES: dict[Paper, PaperName] = {Paper.MM80: "80mm", Paper.MM58: "58mm"}

Seq = Annotated[int, Path(ge=1, le=MAX_SEQ, description="The entry's global sequence number")]
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
LangQuery = Annotated[Lang | None, Query(description="Receipt language (default: settings)")]


# -- models -----------------------------------------------------------------------------------


class TextBlockOut(BaseModel):
    """A paragraph."""

    type: Literal["text"] = "text"
    text: str
    align: Literal["left", "center", "right"]
    bold: bool
    double: bool


class RowBlockOut(BaseModel):
    """A label on the left, an amount on the right."""

    type: Literal["row"] = "row"
    left: str
    right: str
    bold: bool
    double: bool


class RuleBlockOut(BaseModel):
    """A horizontal line of one character."""

    type: Literal["rule"] = "rule"
    char: str


class BlankBlockOut(BaseModel):
    """Empty lines."""

    type: Literal["blank"] = "blank"
    count: int


class QrBlockOut(BaseModel):
    """A QR code of ``data``."""

    type: Literal["qr"] = "qr"
    data: str
    module: int
    caption: str | None


class BarcodeBlockOut(BaseModel):
    """A 1-D barcode."""

    type: Literal["barcode"] = "barcode"
    data: str
    symbology: str
    height: int


class LogoBlockOut(BaseModel):
    """An image (PNG, base64)."""

    type: Literal["logo"] = "logo"
    png_base64: str


class CutBlockOut(BaseModel):
    """The paper cut."""

    type: Literal["cut"] = "cut"
    partial: bool


BlockOut = Annotated[TextBlockOut | RowBlockOut | RuleBlockOut | BlankBlockOut | QrBlockOut
                     | BarcodeBlockOut | LogoBlockOut | CutBlockOut, Field(discriminator="type")]


class DocumentOut(BaseModel):
    """A receipt as device-neutral blocks, top to bottom, laid out for a paper width."""

    paper: PaperName
    columns: int
    dots: int
    blocks: list[BlockOut]


class ReceiptOut(BaseModel):
    """An entry's receipt: which entry, its number, the text rendering and the document."""

    seq: int
    kind: ReceiptKind
    chain: str
    chain_seq: int
    number: str
    training: bool
    signature_extract: str
    lang: Lang
    text: str
    document: DocumentOut


class PrintJobOut(BaseModel):
    """A print job: ``pending`` until the printer confirmed it, then ``done``."""

    id: str
    state: Literal["pending", "printing", "done", "failed"]
    attempts: int
    last_error: str | None
    created_at: str
    finished_at: str | None


class EmailIn(Body):
    """Where to send the receipt."""

    to: str = Field(min_length=6, max_length=MAX_ADDRESS, pattern=EMAIL_PATTERN,
                    description="The customer's e-mail address")

    @field_validator("to")
    @classmethod
    def _address(cls, value: str) -> str:
        if not valid_address(value):
            raise ValueError("not an e-mail address")
        return value


class EmailOut(BaseModel):
    """A receipt e-mail: ``queued`` (retried while it fails), ``sent`` or ``failed``."""

    id: str
    seq: int
    to: str
    lang: str
    state: EmailState
    attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None


class CopyIn(Body):
    """A reprint: why, and whether to print it now."""

    reason: Reason | None = None
    print: bool = False


class CopyOut(BaseModel):
    """The journaled copy (its envelope), its DUPLICATA document, and its print job if asked."""

    copy_number: int
    original_seq: int
    entry: dict[str, Any]
    receipt: ReceiptOut
    print_job: PrintJobOut | None = None


# -- conversions ------------------------------------------------------------------------------


BLOCK_TYPES: dict[type[Block], str] = {Text: "text", Row: "row", Rule: "rule", Blank: "blank",
                                       QrCode: "qr", Barcode: "barcode", Cut: "cut"}
"""The JSON ``type`` of each kind of block whose fields go out as they are (not ``Logo``)."""


def block_json(block: Block) -> dict[str, Any]:
    """One document block as the JSON of its ``BlockOut`` model (``type`` and its fields)."""
    if isinstance(block, Logo):
        return {"type": "logo", "png_base64": base64.b64encode(block.png).decode("ascii")}
    return {"type": BLOCK_TYPES[type(block)], **vars(block)}


def document_out(document: Document) -> DocumentOut:
    """A document as JSON (validated in one call: a receipt has dozens of blocks)."""
    return DocumentOut.model_validate({
        "paper": PAPER_NAMES[document.paper], "columns": document.columns,
        "dots": document.paper.dots, "blocks": [block_json(block) for block in document.blocks]})


async def receipt_out(receipts: Receipts, entry: Entry, lang: Lang | None = None) -> ReceiptOut:
    """The receipt document of ``entry`` (a ticket, invoice, copy or closure) as JSON."""
    language = receipts.language(lang)
    document = await receipts.document(entry, language)
    return ReceiptOut(seq=entry.seq, kind=entry.record["type"], chain=entry.chain,
                      chain_seq=entry.chain_seq, number=ticket_number(entry),
                      training=bool(entry.record.get("training", False)),
                      signature_extract=entry.extract, lang=language,
                      text=render_text(document), document=document_out(document))


def _time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def print_job_out(job: PrintJob) -> PrintJobOut:
    """A print job as JSON."""
    return PrintJobOut(id=job.job_id, state=job.state.value, attempts=job.attempts,
                       last_error=job.last_error, created_at=_time(job.created) or "",
                       finished_at=_time(job.finished))


def email_out(job: EmailJob) -> EmailOut:
    """An e-mail as JSON."""
    return EmailOut(id=job.id, seq=job.seq, to=job.to, lang=job.lang, state=job.state,
                    attempts=job.attempts, last_error=job.last_error,
                    created_at=job.created_at, sent_at=job.sent_at)


# -- routes -----------------------------------------------------------------------------------


def receipts_router(services: AppServices) -> APIRouter:
    """The receipt routes around the box's services."""
    receipts = services.receipts
    router = APIRouter(prefix="/v1", tags=["receipts"])

    @router.get("/receipts/{seq}.txt", summary="A receipt as plain text",
                response_class=PlainTextResponse,
                responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def receipt_text(seq: Seq, who: CashierDep, lang: LangQuery = None
                           ) -> PlainTextResponse:
        return PlainTextResponse(await receipts.text(seq, lang))

    @router.get("/receipts/{seq}.png", summary="A receipt as a PNG image", response_class=Response,
                responses={200: {"content": {"image/png": {
                    "schema": {"type": "string", "format": "binary"}}}}})
    async def receipt_png(seq: Seq, who: CashierDep, lang: LangQuery = None) -> Response:
        return Response(await receipts.png(seq, lang), media_type="image/png")

    @router.get("/receipts/{seq}", summary="A receipt: text and structured document")
    async def receipt(seq: Seq, who: CashierDep, lang: LangQuery = None) -> ReceiptOut:
        return await receipt_out(receipts, await receipts.receipt_entry(seq), lang)

    @router.post("/receipts/{seq}/print", status_code=202, summary="Print a receipt")
    async def print_receipt(seq: Seq, who: CashierDep, lang: LangQuery = None) -> PrintJobOut:
        job = await receipts.print(seq, lang, idempotency_key=current_key())
        return print_job_out(job)

    @router.get("/print-jobs/{job_id}", summary="Where a print job is")
    async def print_job(job_id: JobId, who: CashierDep) -> PrintJobOut:
        return print_job_out(await receipts.print_job(job_id))

    @router.post("/receipts/{seq}/email", status_code=202, summary="E-mail a receipt")
    async def email_receipt(seq: Seq, body: EmailIn, who: CashierDep,
                            lang: LangQuery = None) -> EmailOut:
        job = await receipts.email(seq, body.to, lang, idempotency_key=current_key())
        return email_out(job)

    @router.get("/emails/{job_id}", summary="Where a receipt e-mail is")
    async def email(job_id: JobId, who: CashierDep) -> EmailOut:
        return email_out(await receipts.email_job(job_id))

    @router.post("/receipts/{seq}/copy", summary="Journal and return a DUPLICATA")
    async def copy_receipt(seq: Seq, who: CashierDep, body: CopyIn | None = None,
                           lang: LangQuery = None) -> CopyOut:
        ensure_fiscal_writes(services.health)
        return await make_copy(receipts, seq, body or CopyIn(), who.operator, lang)

    return router


async def make_copy(receipts: Receipts, seq: int, body: CopyIn, operator: str,
                    lang: Lang | None) -> CopyOut:
    """Journal the copy, build its document, print it if asked."""
    key = current_key()
    if body.print:
        receipts.require_printer()
    entry = await receipts.copy(seq, operator, body.reason, idempotency_key=key)
    job = None
    if body.print:
        print_key = None if key is None else f"{key}:print"
        job = print_job_out(await receipts.print(entry.seq, lang, idempotency_key=print_key))
    return CopyOut(copy_number=int(entry.record["copy_number"]), original_seq=seq,
                   entry=entry.to_json(), receipt=await receipt_out(receipts, entry, lang),
                   print_job=job)


def install_receipts_api(app: FastAPI, services: AppServices) -> None:
    """Add the receipts routes."""
    app.include_router(receipts_router(services))
