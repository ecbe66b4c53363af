"""DUPLICATA: each reprint is journaled on the copy chain with its copy number, then shown."""

from __future__ import annotations

import asyncio
from pathlib import Path

from boxkit import frontend, running_box

from agent.composition import Box
from fiscal.chain import Entry
from fiscal.requests import LineRequest, PaymentRequest, SaleRequest


async def sell(box: Box) -> Entry:
    """A one-line sale paid in cash."""
    line = LineRequest(label="Pain de campagne", quantity_milli=1000, unit_price=380,
                       vat_rate=550)
    return await box.journal.sell(SaleRequest(
        operator="admin", lines=(line,), payments=(PaymentRequest(tender="cash", amount=500),)))


async def test_copies_are_journaled_with_numbers_one_then_two(tmp_path: Path) -> None:
    """Two copies are entries 1 and 2 of the copy chain, DUPLICATA n° 1 and n° 2."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        sale = await sell(box)
        first = await client.post(f"/v1/receipts/{sale.seq}/copy",
                                  json={"reason": "client request"})
        second = await client.post(f"/v1/receipts/{sale.seq}/copy")
        stored = [await box.journal.get(answer.json()["receipt"]["seq"])
                  for answer in (first, second)]
    assert [first.status_code, second.status_code] == [200, 200], first.text
    assert [answer.json()["copy_number"] for answer in (first, second)] == [1, 2]
    assert all(entry is not None for entry in stored)
    copies = [entry for entry in stored if entry is not None]
    assert [(e.chain, e.chain_seq, e.record["copy_number"]) for e in copies] == [
        ("copy", 1, 1), ("copy", 2, 2)]
    assert copies[0].record["original"]["seq"] == sale.seq
    assert copies[0].record["operator"] == "admin"
    assert copies[0].record["reason"] == "client request"
    body = second.json()
    assert body["original_seq"] == sale.seq
    assert body["entry"]["seq"] == copies[1].seq
    assert body["entry"]["sig"] == copies[1].sig
    assert body["receipt"]["kind"] == "copy"
    text = body["receipt"]["text"]
    assert text.count("DUPLICATA n° 2") == 2
    assert "R1-ticket-000001" in text
    assert [line.split()[-1] for line in text.splitlines()
            if line.startswith("Signature")] == [sale.extract, copies[1].extract]


async def test_a_copy_can_be_printed_at_once(tmp_path: Path) -> None:
    """``print: true`` journals the copy and prints the DUPLICATA on the printer."""
    async with running_box(tmp_path / "data", devices=True) as box, frontend(box) as client:
        tasks = [asyncio.create_task(loop()) for loop in box.services.receipts.tasks().values()]
        sale = await sell(box)
        response = await client.post(f"/v1/receipts/{sale.seq}/copy", json={"print": True},
                                     headers={"Idempotency-Key": "copy-1"})
        job = response.json()["print_job"]
        await box.services.receipts.queue.wait_done(job["id"], 3.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert response.status_code == 200, response.text
    assert job["state"] in ("pending", "printing", "done")
    printed = box.devices.printer_simulator.receipts  # type: ignore[union-attr]
    assert len(printed) == 1
    assert "DUPLICATA n° 1" in printed[0]


async def test_the_copy_of_a_copy_or_closure_is_refused(tmp_path: Path) -> None:
    """Only tickets and invoices have copies: a copy or a closure answers 409 not_copyable."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        sale = await sell(box)
        copy = (await client.post(f"/v1/receipts/{sale.seq}/copy")).json()["receipt"]["seq"]
        closure = next(entry for entry in await box.journal.periods.close_day("admin")
                       if entry.record["type"] == "day_closure")
        answers = [await client.post(f"/v1/receipts/{seq}/copy") for seq in (copy, closure.seq)]
        missing = await client.post("/v1/receipts/1/copy")
        seq_before = box.journal.state.seq
    assert {(a.status_code, a.json()["code"]) for a in answers} == {(409, "not_copyable")}
    assert (missing.status_code, missing.json()["code"]) == (404, "receipt_not_found")
    assert box.journal.state.seq == seq_before


async def test_a_retried_copy_is_journaled_once(tmp_path: Path) -> None:
    """The same Idempotency-Key answers the first copy again; the chain has one copy."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        sale = await sell(box)
        headers = {"Idempotency-Key": "reprint-42"}
        first = await client.post(f"/v1/receipts/{sale.seq}/copy", headers=headers)
        again = await client.post(f"/v1/receipts/{sale.seq}/copy", headers=headers)
        head = box.journal.heads()["copy"]
    assert first.json() == again.json()
    assert head.chain_seq == 1
