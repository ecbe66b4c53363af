"""E-mail receipts: queued in box.sqlite, sent to a real SMTP server (aiosmtpd), retried."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from boxkit import frontend, running_box
from daemonkit import free_port
from PIL import Image

from agent.composition import Box
from agent.settings import EmailSettings
from fiscal.chain import Entry
from fiscal.requests import LineRequest, PaymentRequest, SaleRequest

CUSTOMER = "claire.martin@example.org"


class Collector:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802 (aiosmtpd hook)
                          envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"


@contextmanager
def smtp_server(port: int) -> Iterator[Collector]:
    """A real SMTP server on 127.0.0.1:port for the block."""
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector
    finally:
        controller.stop()


def mail_settings(port: int) -> EmailSettings:
    return EmailSettings(enabled=True, host="127.0.0.1", port=port, sender="caisse@example.org",
                         retry_seconds=0.2, timeout_seconds=2.0)


async def sell(box: Box) -> Entry:
    """A one-line sale paid in cash."""
    line = LineRequest(label="Tarte aux pommes", quantity_milli=1000, unit_price=1850,
                       vat_rate=550)
    return await box.journal.sell(SaleRequest(
        operator="admin", lines=(line,), payments=(PaymentRequest(tender="cash", amount=2000),)))


@asynccontextmanager
async def loops(box: Box) -> AsyncIterator[None]:
    """Run the receipts service's loops (the daemon's job) for the block."""
    tasks = [asyncio.create_task(loop()) for loop in box.services.receipts.tasks().values()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 3.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.02)
    return result


def in_state(client: httpx.AsyncClient, job_id: str, state: str,
             attempts: int = 0) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    async def check() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/v1/emails/{job_id}")).json()
        return body if body["state"] == state and body["attempts"] >= attempts else None

    return check


async def test_receipt_email_carries_the_text_and_the_png(tmp_path: Path) -> None:
    """The e-mail has a localised subject, the text receipt as body and the PNG attached."""
    port = free_port()
    with smtp_server(port) as server:
        async with running_box(tmp_path / "data", email=mail_settings(port)) as box, \
                loops(box), frontend(box) as client:
            entry = await sell(box)
            response = await client.post(f"/v1/receipts/{entry.seq}/email",
                                         json={"to": CUSTOMER})
            assert response.status_code == 202, response.text
            assert response.json()["state"] == "queued"
            sent = await eventually(in_state(client, response.json()["id"], "sent"))
            text = await box.services.receipts.text(entry.seq)
    assert sent["to"] == CUSTOMER
    assert sent["sent_at"] is not None
    [message] = server.messages
    assert message["To"] == CUSTOMER
    assert message["Subject"] == "Votre ticket de caisse n° R1-ticket-000001"
    assert "caisse@example.org" in message["From"]
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == text
    assert entry.extract in body.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "image/png"
    assert attachment.get_filename() == "R1-ticket-000001.png"
    assert Image.open(io.BytesIO(attachment.get_content())).width == 576


async def test_email_is_retried_until_the_server_is_up(tmp_path: Path) -> None:
    """With the SMTP server down the e-mail stays queued with the error; then it is sent."""
    port = free_port()
    async with running_box(tmp_path / "data", email=mail_settings(port)) as box, loops(box), \
            frontend(box) as client:
        entry = await sell(box)
        response = await client.post(f"/v1/receipts/{entry.seq}/email",
                                     params={"lang": "en"}, json={"to": CUSTOMER})
        job_id = response.json()["id"]
        waiting = await eventually(in_state(client, job_id, "queued", attempts=1))
        assert waiting["last_error"]
        with smtp_server(port) as server:
            sent = await eventually(in_state(client, job_id, "sent"), timeout=4.0)
    assert sent["attempts"] >= 2
    [message] = server.messages
    assert message["Subject"] == "Your receipt no. R1-ticket-000001"


async def test_email_routes_validate_and_refuse(tmp_path: Path) -> None:
    """Bad addresses are 422; unknown ids 404; without SMTP configured 409 email_disabled."""
    async with running_box(tmp_path / "data", email=mail_settings(free_port())) as box, \
            frontend(box) as client:
        entry = await sell(box)
        bad = [await client.post(f"/v1/receipts/{entry.seq}/email", json={"to": address})
               for address in ("claire", "a@b", "x@example.org\r\nBcc: y@example.org",
                               "x y@example.org", "")]
        unknown = await client.get("/v1/emails/nope")
        missing = await client.post("/v1/receipts/1/email", json={"to": CUSTOMER})
    assert {(r.status_code, r.json()["code"], r.json()["field"]) for r in bad} == {
        (422, "invalid_input", "to")}
    assert (unknown.status_code, unknown.json()["code"]) == (404, "email_not_found")
    assert (missing.status_code, missing.json()["code"]) == (404, "receipt_not_found")
    async with running_box(tmp_path / "off") as box, frontend(box) as client:
        entry = await sell(box)
        off = await client.post(f"/v1/receipts/{entry.seq}/email", json={"to": CUSTOMER})
    assert (off.status_code, off.json()["code"]) == (409, "email_disabled")
