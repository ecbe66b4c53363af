"""Printing receipts through the durable print queue onto the printer simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from boxkit import START, box_settings, frontend, running_box

from agent.composition import Box, compose
from agent.settings import DevicesSettings
from drivers.printer.simulator import PrinterSimulator
from fiscal.chain import Entry
from fiscal.requests import LineRequest, PaymentRequest, SaleRequest
from fiscal.testing import FakeClock


async def sell(box: Box) -> Entry:
    """A one-line sale paid by card."""
    line = LineRequest(label="Croissant au beurre", quantity_milli=2000, unit_price=130,
                       vat_rate=550)
    return await box.journal.sell(SaleRequest(
        operator="admin", lines=(line,), payments=(PaymentRequest(tender="card", amount=260),)))


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


async def job_state(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/print-jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def simulator(box: Box) -> PrinterSimulator:
    assert box.devices.printer_simulator is not None
    return box.devices.printer_simulator


async def test_printed_receipt_arrives_at_the_printer(tmp_path: Path) -> None:
    """A print request queues a job that the printer simulator prints, with the ticket number."""
    async with running_box(tmp_path / "data", devices=True) as box, loops(box), \
            frontend(box) as client:
        entry = await sell(box)
        response = await client.post(f"/v1/receipts/{entry.seq}/print")
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        done = await eventually(lambda: _done(client, job_id))
    receipts = simulator(box).receipts
    assert len(receipts) == 1
    assert "R1-ticket-000001" in receipts[0]
    assert "Croissant au beurre" in receipts[0]
    assert f"Signature{' ' * 35}{entry.extract}" in receipts[0]
    assert done["attempts"] == 1
    assert done["finished_at"] is not None


async def _done(client: httpx.AsyncClient, job_id: str) -> dict[str, Any] | None:
    job = await job_state(client, job_id)
    return job if job["state"] == "done" else None


async def test_a_job_waits_for_an_unplugged_printer_and_prints_when_it_is_back(
        tmp_path: Path) -> None:
    """With the printer unplugged the job stays pending; plugged back in, it prints once."""
    async with running_box(tmp_path / "data", devices=True) as box, loops(box), \
            frontend(box) as client:
        entry = await sell(box)
        printer = simulator(box)
        await printer.stop()
        response = await client.post(f"/v1/receipts/{entry.seq}/print")
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        await asyncio.sleep(0.6)
        waiting = await job_state(client, job_id)
        assert waiting["state"] == "pending"
        assert printer.receipts == []
        await printer.start(printer.host, printer.port)
        await eventually(lambda: _done(client, job_id), timeout=4.0)
    assert len(printer.receipts) == 1
    assert "R1-ticket-000001" in printer.receipts[0]


async def test_russian_receipt_prints_in_cyrillic(tmp_path: Path) -> None:
    """``lang=ru`` prints the Russian texts through the CP866 code page."""
    async with running_box(tmp_path / "data", devices=True) as box, loops(box), \
            frontend(box) as client:
        entry = await sell(box)
        response = await client.post(f"/v1/receipts/{entry.seq}/print", params={"lang": "ru"})
        await eventually(lambda: _done(client, response.json()["id"]))
    assert "КАССОВЫЙ ЧЕК" in simulator(box).receipts[0]


async def test_print_job_routes_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    """Unknown job ids are 404; a box without a printer answers 409 printer_not_configured."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        unknown = await client.get("/v1/print-jobs/nope")
        entry = await sell(box)
        missing = await client.post(f"/v1/receipts/{entry.seq + 1}/print")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "print_job_not_found")
    assert (missing.status_code, missing.json()["code"]) == (404, "receipt_not_found")
    settings = box_settings(tmp_path / "other",
                            devices=DevicesSettings(printer="none", drawer="none"))
    async with compose(settings, clock=FakeClock(START)) as box, frontend(box) as client:
        entry = await sell(box)
        refused = await client.post(f"/v1/receipts/{entry.seq}/print")
    assert (refused.status_code, refused.json()["code"]) == (409, "printer_not_configured")


async def test_a_retried_print_request_is_one_job(tmp_path: Path) -> None:
    """The same Idempotency-Key gives the same job, printed once."""
    async with running_box(tmp_path / "data", devices=True) as box, loops(box), \
            frontend(box) as client:
        entry = await sell(box)
        headers = {"Idempotency-Key": "print-once"}
        first = await client.post(f"/v1/receipts/{entry.seq}/print", headers=headers)
        again = await client.post(f"/v1/receipts/{entry.seq}/print", headers=headers)
        await eventually(lambda: _done(client, first.json()["id"]))
        await asyncio.sleep(0.1)
    assert first.json()["id"] == again.json()["id"]
    assert len(simulator(box).receipts) == 1
