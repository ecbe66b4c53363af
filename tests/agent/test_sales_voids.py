"""Voids (line, ticket) journaled with their approver; returns against a sale; training mode."""

from __future__ import annotations

from pathlib import Path

from boxkit import ADMIN_PIN, add_user, frontend, running_box
from saleskit import (
    BAGUETTE,
    add,
    journal_events,
    new_ticket,
    ok,
    pay,
    problem,
    quick_sale,
    stock_shelves,
)

APPROVAL = {"X-Manager-Approval": f"admin:{ADMIN_PIN}"}


async def test_line_void_needs_a_manager_and_is_journaled(tmp_path: Path) -> None:
    """A cashier's line void is refused without approval, then journaled (1030) with it."""
    async with running_box(tmp_path / "data") as box:
        async with frontend(box) as admin:
            await add_user(admin, "camille", "cashier", "2468")
        await stock_shelves(box)
        async with frontend(box, user="camille", pin="2468") as client:
            ticket = await new_ticket(client)
            await add(client, ticket, barcode=BAGUETTE)
            line = (await add(client, ticket, sku="JAM"))["lines"][1]["id"]
            url = f"/v1/tickets/{ticket}/lines/{line}"
            refused = await client.delete(url)
            wrong = await client.delete(url, headers={"X-Manager-Approval": "admin:000000"})
            voided = ok(await client.delete(url, headers=APPROVAL))
            gone = await client.delete(url, headers=APPROVAL)
        events = await journal_events(box, 1030)
    problem(refused, 403, "approval_required", "X-Manager-Approval")
    problem(wrong, 403, "pin_wrong")
    assert [line["label"] for line in voided["lines"]] == ["Baguette"]
    assert voided["total"] == 120
    problem(gone, 404, "line_not_found")
    assert len(events) == 1
    details = events[0]["details"]
    assert events[0]["operator"] == "camille"
    assert (details["approved_by"], details["requested_by"], details["action"]) == \
        ("admin", "camille", "line_void")
    assert details["ticket"] == ticket
    assert (details["line"]["label"], details["line"]["amount"]) == ("Confiture", 350)


async def test_ticket_void_is_journaled_and_ends_the_draft(tmp_path: Path) -> None:
    """A voided ticket (1031: lines, total, reason, approver) takes no more changes."""
    async with running_box(tmp_path / "data") as box:
        async with frontend(box) as admin:
            await add_user(admin, "camille", "cashier", "2468")
        await stock_shelves(box)
        async with frontend(box, user="camille", pin="2468") as client:
            ticket = await new_ticket(client)
            await add(client, ticket, barcode=BAGUETTE, quantity_milli=3000)
            ok(await client.post(f"/v1/tickets/{ticket}/park"))
            body = {"reason": "client parti"}
            refused = await client.post(f"/v1/tickets/{ticket}/void", json=body)
            voided = ok(await client.post(f"/v1/tickets/{ticket}/void", json=body,
                                          headers=APPROVAL))
            again = await client.post(f"/v1/tickets/{ticket}/void", json=body,
                                      headers=APPROVAL)
            resume = await client.post(f"/v1/tickets/{ticket}/resume")
        events = await journal_events(box, 1031)
    problem(refused, 403, "approval_required")
    assert (voided["state"], voided["void_reason"]) == ("voided", "client parti")
    problem(again, 409, "ticket_voided")
    problem(resume, 409, "ticket_not_parked")
    assert len(events) == 1
    details = events[0]["details"]
    assert (details["total"], details["reason"], details["approved_by"]) == \
        (360, "client parti", "admin")
    assert [(x["label"], x["quantity_milli"]) for x in details["lines"]] == [("Baguette", 3000)]


async def test_a_partial_return_refunds_its_share(tmp_path: Path) -> None:
    """Returning one of three baguettes refunds 1,20 € and shows on the sale's return screen."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        sold = await quick_sale(client, {"sku": "BAG", "quantity_milli": 3000},
                                {"sku": "JAM"})
        returned = ok(await client.post("/v1/returns", json={
            "original_seq": sold["seq"], "lines": [{"line_no": 1, "quantity_milli": 1000}],
            "refunds": [{"tender": "cash", "amount": 120}], "reason": "rassis"}), 201)
        screen = ok(await client.get(f"/v1/sales/{sold['seq']}"))
        entry = await box.services.journal.get(returned["seq"])
        overrides = await journal_events(box, 1020)
    assert (returned["total"], returned["chain"], returned["original_seq"]) == \
        (-120, "ticket", sold["seq"])
    assert returned["refunds"] == [{"tender": "cash", "amount": -120}]
    assert entry is not None
    assert (entry.record["type"], entry.record["reason"]) == ("return", "rassis")
    assert [(x["line_no"], x["returned_milli"], x["returnable_milli"])
            for x in screen["lines"]] == [(1, 1000, 2000), (2, 0, 1000)]
    assert screen["record"]["total"] == 710
    assert returned["approved_by"] == "admin"
    assert overrides == [], "a manager's own return needs no override event"


async def test_an_over_return_is_refused_and_the_journal_unchanged(tmp_path: Path) -> None:
    """Returning more than is left is refused by fiscal (422 over_return); nothing is written."""
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        await stock_shelves(box)
        sold = await quick_sale(client, {"sku": "JAM", "quantity_milli": 2000})
        body = {"original_seq": sold["seq"], "lines": [{"line_no": 1, "quantity_milli": 1000}],
                "refunds": [{"tender": "cash", "amount": 350}]}
        ok(await client.post("/v1/returns", json=body), 201)
        seq = box.services.journal.state.seq
        over = await client.post("/v1/returns", json={
            **body, "lines": [{"line_no": 1, "quantity_milli": 1001}]})
        wrong_refund = await client.post("/v1/returns", json={
            **body, "refunds": [{"tender": "cash", "amount": 300}]})
        no_sale = await client.get(f"/v1/sales/{seq + 100}")
        assert box.services.journal.state.seq == seq
    problem(over, 422, "over_return", "lines.0.quantity_milli")
    problem(wrong_refund, 422, "payments_mismatch", "refunds")
    problem(no_sale, 404, "sale_not_found")


async def test_returns_need_a_manager(tmp_path: Path) -> None:
    """A cashier's return without approval is refused; with a manager's PIN it is journaled."""
    async with running_box(tmp_path / "data") as box:
        await stock_shelves(box)
        async with frontend(box) as admin:
            await add_user(admin, "camille", "cashier", "2468")
            sold = await quick_sale(admin, {"sku": "JAM"})
        body = {"original_seq": sold["seq"], "lines": [{"line_no": 1, "quantity_milli": 1000}],
                "refunds": [{"tender": "card", "amount": 350}]}
        async with frontend(box, user="camille", pin="2468") as client:
            refused = await client.post("/v1/returns", json=body)
            done = ok(await client.post("/v1/returns", json=body, headers=APPROVAL), 201)
        overrides = await journal_events(box, 1020)
        entry = await box.services.journal.get(done["seq"])
    problem(refused, 403, "approval_required")
    assert (done["total"], done["approved_by"]) == (-350, "admin")
    assert entry is not None
    assert entry.record["operator"] == "camille"
    assert [(o["operator"], o["details"]["approved_by"], o["details"]["return_seq"])
            for o in overrides] == [("camille", "admin", done["seq"])]


async def test_training_mode_is_per_frontend_and_journaled(tmp_path: Path) -> None:
    """Training on (1110) makes new drafts training ones on that frontend only; off is 1111."""
    async with (running_box(tmp_path / "data") as box, frontend(box) as till,
                frontend(box, name="caisse 2") as other):
        await stock_shelves(box)
        on = ok(await till.post("/v1/training", json={"on": True}))
        training_draft = ok(await till.post("/v1/tickets"), 201)
        other_draft = ok(await other.post("/v1/tickets"), 201)
        await add(till, training_draft["id"], sku="BAG")
        await pay(till, training_draft["id"], "cash", 120)
        sold = ok(await till.post(f"/v1/tickets/{training_draft['id']}/finalize"))
        off = ok(await till.post("/v1/training", json={"on": False}))
        now = ok(await till.get("/v1/training"))
        started, stopped = await journal_events(box, 1110), await journal_events(box, 1111)
    assert (on, off, now) == ({"on": True}, {"on": False}, {"on": False})
    assert (training_draft["training"], other_draft["training"]) == (True, False)
    assert sold["chain"] == "training"
    assert len(started) == len(stopped) == 1
    assert started[0]["details"]["approved_by"] == "admin"
