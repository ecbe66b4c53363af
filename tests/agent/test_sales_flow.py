"""A whole sale over HTTP: scanned, open-price and weighed lines, discounts, two tenders, change."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from boxkit import frontend, running_box
from saleskit import APPLES, BAGUETTE, JAM, add, new_ticket, ok, pay, problem, stock_shelves

from agent.composition import Box


async def wait_screen(box: Box, lines: tuple[str, str]) -> bool:
    simulator = box.devices.display_simulator
    assert simulator is not None
    return await asyncio.to_thread(simulator.wait_for, lines, 5.0)


async def build_the_sale(box: Box, client: Any) -> str:
    """Two scans (one of two baguettes), a bouquet at an open price, 1,255 kg of apples."""
    ticket = await new_ticket(client, customer_ref="client-42")
    await add(client, ticket, barcode=BAGUETTE, quantity_milli=2000)
    await add(client, ticket, barcode=JAM)
    draft = await add(client, ticket, label="Bouquet", unit_price=1500, vat_rate=2000)
    bouquet = draft["lines"][-1]["id"]
    ok(await client.patch(f"/v1/tickets/{ticket}/lines/{bouquet}",
                          json={"discount": {"kind": "percent", "value": 1000}}))
    box.devices.scale_simulator.set_weight(1255)  # type: ignore[union-attr]
    draft = await add(client, ticket, barcode=APPLES)
    assert draft["lines"][-1]["quantity_milli"] == 1255
    assert await wait_screen(box, ("Pommes        3,75 €", "TOTAL        23,15 €"))
    ok(await client.put(f"/v1/tickets/{ticket}/discount", json={"kind": "amount",
                                                               "value": 100}))
    return ticket


async def test_a_full_sale_is_journaled_with_fiscal_totals(tmp_path: Path) -> None:
    """Lines, discounts and two tenders end as one journal entry with the expected totals."""
    async with (running_box(tmp_path / "data", devices=True) as box, frontend(box) as client):
        await stock_shelves(box)
        ticket = await build_the_sale(box, client)
        await pay(client, ticket, "card", 1000)
        draft = await pay(client, ticket, "cash", 2000)
        sold = ok(await client.post(f"/v1/tickets/{ticket}/finalize", json={"print": True}))
        entry = await box.services.journal.get(sold["seq"])
        after = ok(await client.get(f"/v1/tickets/{ticket}"))
        assert await wait_screen(box, ("TOTAL        22,15 €", "Rendu monnaie 7,85 €"))
        kicks = box.devices.printer_simulator.kicks  # type: ignore[union-attr]
    assert (draft["total"], draft["paid"], draft["remaining"], draft["change"]) == \
        (2215, 3000, 0, 785)
    assert draft["payable"] is True
    assert [line["net"] for line in draft["lines"]] == [229, 335, 1292, 359]
    assert entry is not None
    record = entry.record
    assert (record["total"], record["total_vat"], record["total_excl"]) == (2215, 263, 1952)
    assert record["breakdown"] == [{"rate": 2000, "excl": 1077, "vat": 215, "incl": 1292},
                                   {"rate": 550, "excl": 875, "vat": 48, "incl": 923}]
    assert record["payments"] == [{"tender": "card", "amount": 1000},
                                  {"tender": "cash", "amount": 2000}]
    assert (record["change"], record["ticket_discount"], record["line_count"]) == (785, 100, 4)
    assert record["customer_ref"] == "client-42"
    assert (sold["id"], sold["chain"], sold["total"], sold["change"]) == \
        (ticket, "ticket", 2215, 785)
    assert sold["signature_extract"] == entry.extract
    assert (sold["print"], sold["email"], sold["drawer_opened"]) == (True, None, True)
    assert sold["print_job"]["state"] in ("pending", "printing", "done")
    assert len(kicks) == 1, "cash changed hands: the drawer opens"
    receipt = sold["receipt"]
    assert (receipt["seq"], receipt["signature_extract"]) == (sold["seq"], entry.extract)
    assert "22,15" in receipt["text"]
    assert receipt["number"] in receipt["text"]
    assert sold["breakdown"] == record["breakdown"]
    assert (after["state"], after["seq"]) == ("finalized", sold["seq"])


async def test_undeliverable_receipt_is_refused_before_the_sale(tmp_path: Path) -> None:
    """An e-mail receipt while e-mail is off is refused and nothing is journaled."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        ticket = await new_ticket(client)
        draft = await add(client, ticket, barcode=BAGUETTE)
        await pay(client, ticket, "card", draft["total"])
        seq = box.services.journal.state.seq
        refused = await client.post(f"/v1/tickets/{ticket}/finalize",
                                    json={"email": "client@example.org"})
        after = ok(await client.get(f"/v1/tickets/{ticket}"))
    problem(refused, 409, "email_disabled", "email")
    assert box.services.journal.state.seq == seq
    assert after["state"] == "open"


async def test_selling_needs_an_open_cash_session(tmp_path: Path) -> None:
    """Without a float counted into the drawer, a real sale is refused; training is not."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await box.services.catalog.add_product("BAG", "Baguette", 550, 120)
        real = await new_ticket(client, lines=[{"sku": "BAG"}])
        await pay(client, real, "card", 120)
        refused = await client.post(f"/v1/tickets/{real}/finalize")
        training = await new_ticket(client, lines=[{"sku": "BAG"}], training=True)
        await pay(client, training, "card", 120)
        practised = await client.post(f"/v1/tickets/{training}/finalize")
    problem(refused, 409, "no_cash_session")
    assert practised.status_code == 200, practised.text


async def test_finalize_replays_with_its_key_and_refuses_a_second_time(tmp_path: Path) -> None:
    """The same Idempotency-Key answers the same sale; a new one gets 409 ticket_finalized."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        ticket = await new_ticket(client)
        await add(client, ticket, sku="JAM")
        await pay(client, ticket, "cash", 500)
        url = f"/v1/tickets/{ticket}/finalize"
        first = await client.post(url, headers={"Idempotency-Key": "fin-1"})
        again = await client.post(url, headers={"Idempotency-Key": "fin-1"})
        other = await client.post(url, headers={"Idempotency-Key": "fin-2"})
        changed = await client.post(f"/v1/tickets/{ticket}/lines", json={"sku": "BAG"})
        sales = [e async for e in box.services.journal.entries()
                 if e.record.get("type") == "sale"]
    assert ok(first)["change"] == 150
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    problem(other, 409, "ticket_finalized")
    problem(changed, 409, "ticket_finalized")
    assert len(sales) == 1


async def test_finalize_is_refused_while_an_integrity_alarm_is_raised(tmp_path: Path) -> None:
    """An unacknowledged alarm stops the sale (409) and nothing is journaled."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        ticket = await new_ticket(client)
        await add(client, ticket, sku="BAG")
        await pay(client, ticket, "cash", 120)
        seq = box.services.journal.state.seq
        box.services.health.raise_alarm("x", "y", blocking=True)
        refused = await client.post(f"/v1/tickets/{ticket}/finalize")
        still = ok(await client.get(f"/v1/tickets/{ticket}"))
        assert box.services.journal.state.seq == seq
    problem(refused, 409, "integrity_alarm")
    assert still["state"] == "open"


async def test_training_sale_lands_in_the_training_chain(tmp_path: Path) -> None:
    """A training draft is finalized into the training chain; the ticket chain is untouched."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        ticket = await new_ticket(client, training=True)
        await add(client, ticket, sku="JAM")
        await pay(client, ticket, "card", 350)
        sold = ok(await client.post(f"/v1/tickets/{ticket}/finalize"))
        heads = box.services.journal.heads()
        entry = await box.services.journal.get(sold["seq"])
    assert (sold["chain"], sold["chain_seq"], sold["training"]) == ("training", 1, True)
    assert entry is not None
    assert entry.record["training"] is True
    assert "ticket" not in heads


async def test_ticket_events_are_published_on_the_bus(tmp_path: Path) -> None:
    """Each change publishes ticket.updated; finalize publishes ticket.finalized with the seq."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        async with box.services.bus.subscribe(frozenset({"ticket.updated",
                                                         "ticket.finalized"})) as events:
            ticket = await new_ticket(client)
            await add(client, ticket, sku="BAG")
            await pay(client, ticket, "cash", 200)
            sold = ok(await client.post(f"/v1/tickets/{ticket}/finalize"))
            seen = []
            async with asyncio.timeout(2):
                async for event in events():
                    seen.append((event.kind, dict(event.data)))
                    if event.kind == "ticket.finalized":
                        break
    assert seen == [
        ("ticket.updated", {"id": ticket, "total": 0, "line_count": 0}),
        ("ticket.updated", {"id": ticket, "total": 120, "line_count": 1}),
        ("ticket.updated", {"id": ticket, "total": 120, "line_count": 1}),
        ("ticket.finalized", {"id": ticket, "seq": sold["seq"], "total": 120,
                              "training": False}),
    ]


async def test_a_moving_scale_is_not_sold_on(tmp_path: Path) -> None:
    """A weighed product needs a stable reading: 409 weight_unstable while the load moves."""
    async with (running_box(tmp_path / "data", devices=True) as box, frontend(box) as client):
        await stock_shelves(box)
        simulator = box.devices.scale_simulator
        assert simulator is not None
        ticket = await new_ticket(client)
        simulator.set_weight(800)
        simulator.set_motion(True)
        moving = await client.post(f"/v1/tickets/{ticket}/lines", json={"barcode": APPLES})
        simulator.set_motion(False)
        draft = await add(client, ticket, barcode=APPLES)
        simulator.set_weight(0)
        empty = await client.post(f"/v1/tickets/{ticket}/lines", json={"barcode": APPLES})
    problem(moving, 409, "weight_unstable", "quantity_milli")
    assert (draft["lines"][0]["quantity_milli"], draft["total"]) == (800, 239)
    problem(empty, 409, "weight_empty", "quantity_milli")
