"""Drafts: park and resume across frontends, persistence, refusals with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
from boxkit import frontend, running_box
from saleskit import APPLES, BAGUETTE, add, new_ticket, ok, pay, problem, stock_shelves


async def test_two_parked_tickets_resume_in_the_other_order(tmp_path: Path) -> None:
    """Parked tickets are listed to every frontend; the one resuming them owns them after."""
    async with (running_box(tmp_path / "data") as box, frontend(box) as till,
                frontend(box, name="caisse 2") as other):
        await stock_shelves(box)
        first, second = await new_ticket(till), await new_ticket(till)
        await add(till, first, barcode=BAGUETTE)
        await add(till, second, sku="JAM")
        ok(await till.post(f"/v1/tickets/{first}/park"))
        ok(await till.post(f"/v1/tickets/{second}/park"))
        listed = ok(await other.get("/v1/tickets"))["tickets"]
        refused = await other.post(f"/v1/tickets/{second}/lines", json={"sku": "BAG"})
        resumed_second = ok(await other.post(f"/v1/tickets/{second}/resume"))
        resumed_first = ok(await till.post(f"/v1/tickets/{first}/resume"))
        await add(other, second, sku="BAG")
        elsewhere = await till.post(f"/v1/tickets/{second}/lines", json={"sku": "BAG"})
        parked_now = ok(await other.get("/v1/tickets", params={"state": "parked"}))
    assert {t["id"]: (t["state"], t["total"]) for t in listed} == {
        first: ("parked", 120), second: ("parked", 350)}
    problem(refused, 409, "ticket_parked")
    assert resumed_second["state"] == "open"
    assert resumed_second["frontend_id"] != resumed_first["frontend_id"]
    assert [line["label"] for line in resumed_first["lines"]] == ["Baguette"]
    problem(elsewhere, 409, "ticket_elsewhere")
    assert parked_now["tickets"] == []


async def test_drafts_survive_a_restart_of_the_box(tmp_path: Path) -> None:
    """A parked and an open draft are there, unchanged, after the box is composed again."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        parked, kept = await new_ticket(client), await new_ticket(client)
        await add(client, parked, sku="JAM")
        ok(await client.post(f"/v1/tickets/{parked}/park"))
        await add(client, kept, label="Fleurs", unit_price=990, vat_rate=1000)
        before = ok(await client.get(f"/v1/tickets/{kept}"))
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        after = ok(await client.get(f"/v1/tickets/{kept}"))
        listed = ok(await client.get("/v1/tickets", params={"state": "parked"}))
        resumed = ok(await client.post(f"/v1/tickets/{parked}/resume"))
        await pay(client, parked, "cash", 350)
        sold = ok(await client.post(f"/v1/tickets/{parked}/finalize"))
    assert after == before
    assert [t["id"] for t in listed["tickets"]] == [parked]
    assert resumed["total"] == 350
    assert sold["total"] == 350


async def test_payments_show_what_is_left_and_refuse_change_by_card(tmp_path: Path) -> None:
    """Remaining and change follow the payments; a card beyond the total and a stranger tender
    are refused; a payment is removed by its id."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        ticket = await new_ticket(client)
        await add(client, ticket, sku="JAM")
        part = await pay(client, ticket, "card", 100)
        over = await client.post(f"/v1/tickets/{ticket}/payments",
                                 json={"tender": "card", "amount": 300})
        unknown = await client.post(f"/v1/tickets/{ticket}/payments",
                                    json={"tender": "bitcoin", "amount": 1})
        unpaid = await client.post(f"/v1/tickets/{ticket}/finalize")
        cash = await pay(client, ticket, "cash", 500)
        removed = ok(await client.delete(
            f"/v1/tickets/{ticket}/payments/{part['payments'][0]['id']}"))
    assert (part["remaining"], part["change"], part["payable"]) == (250, 0, False)
    problem(over, 422, "change_not_cash", "amount")
    problem(unknown, 422, "unknown_tender", "tender")
    problem(unpaid, 422, "payments_mismatch")
    assert (cash["paid"], cash["remaining"], cash["change"], cash["payable"]) == \
        (600, 0, 250, True)
    assert (removed["paid"], removed["change"]) == (500, 150)


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({}, 422, "line_kind", "barcode"),
    ({"barcode": BAGUETTE, "sku": "BAG"}, 422, "line_kind", "sku"),
    ({"sku": "BAG", "unit_price": 100}, 422, "line_kind", "unit_price"),
    ({"label": "Divers", "unit_price": 100}, 422, "open_price_incomplete", "vat_rate"),
    ({"label": "Divers", "unit_price": 100, "vat_rate": 1900}, 422, "unknown_vat_rate",
     "vat_rate"),
    ({"label": "Di\x07vers", "unit_price": 100, "vat_rate": 2000}, 422, "invalid_input",
     "label"),
    ({"barcode": "0000000000000"}, 422, "unknown_barcode", "barcode"),
    ({"sku": "NOPE"}, 422, "unknown_sku", "sku"),
    ({"sku": "BAG", "quantity_milli": 0}, 422, "invalid_input", "quantity_milli"),
    ({"label": "Or", "unit_price": 10**11, "vat_rate": 2000, "quantity_milli": 10**9}, 422,
     "amount_too_large", "unit_price"),
    ({"sku": "BAG", "price": 5}, 422, "invalid_input", "price"),
    ({"barcode": APPLES}, 409, "scale_unavailable", "quantity_milli"),
])
async def test_bad_lines_are_refused_with_the_field_named(
        tmp_path: Path, body: dict[str, object], status: int, code: str,
        field: str | None) -> None:
    """Each malformed or impossible line answers a problem naming the field; nothing is added."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        ticket = await new_ticket(client)
        refused = await client.post(f"/v1/tickets/{ticket}/lines", json=body)
        draft = ok(await client.get(f"/v1/tickets/{ticket}"))
    problem(refused, status, code, field)
    assert draft["lines"] == []


async def test_bad_discounts_and_ids_are_refused(tmp_path: Path) -> None:
    """Too large a discount, a percentage above 100 %, unknown tickets and lines: 4xx."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        ticket = await new_ticket(client)
        line = (await add(client, ticket, sku="JAM"))["lines"][0]["id"]
        too_big = await client.put(f"/v1/tickets/{ticket}/discount",
                                   json={"kind": "amount", "value": 351})
        percent = await client.patch(f"/v1/tickets/{ticket}/lines/{line}",
                                     json={"discount": {"kind": "percent", "value": 10001}})
        no_line = await client.patch(f"/v1/tickets/{ticket}/lines/99", json={})
        no_ticket = await client.get(f"/v1/tickets/{'0' * 32}")
        bad_id = await client.get("/v1/tickets/not-an-id")
        empty = await client.post(f"/v1/tickets/{await new_ticket(client)}/finalize")
    problem(too_big, 422, "discount_too_large", "value")
    problem(percent, 422, "bad_percentage", "discount.value")
    problem(no_line, 404, "line_not_found", "line_id")
    problem(no_ticket, 404, "ticket_not_found", "ticket_id")
    problem(bad_id, 422, "invalid_input", "ticket_id")
    problem(empty, 422, "ticket_empty", "lines")


async def test_a_draft_can_be_created_with_its_lines(tmp_path: Path) -> None:
    """POST /v1/tickets takes lines; an impossible one names its index in the body."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        created = ok(await client.post("/v1/tickets", json={
            "lines": [{"sku": "BAG", "quantity_milli": 3000}, {"barcode": APPLES,
                                                               "quantity_milli": 500}]}), 201)
        refused = await client.post("/v1/tickets", json={"lines": [{"sku": "BAG"},
                                                                   {"sku": "NOPE"}]})
        mine = ok(await client.get("/v1/tickets"))
    assert [(line["label"], line["net"]) for line in created["lines"]] == [
        ("Baguette", 360), ("Pommes", 150)]
    assert created["total"] == 510
    problem(refused, 422, "unknown_sku", "lines.1.sku")
    assert [t["id"] for t in mine["tickets"]] == [created["id"]]
