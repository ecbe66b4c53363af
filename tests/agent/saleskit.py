"""Helpers of the selling tests: a small catalog, drafts, answers checked as they come."""

from __future__ import annotations

from typing import Any

import httpx

from agent.composition import Box

BAGUETTE, JAM, APPLES = "3017620422003", "3560070048786", "2000000000015"


async def stock_shelves(box: Box) -> None:
    """Three products: a baguette and a jam (5.5 %), apples by weight at 2,99 €/kg; the till
    open with a 100 € float (sales need an open cash session)."""
    await box.services.cash.open_session("admin", 10000)
    catalog = box.services.catalog
    await catalog.add_product("BAG", "Baguette", 550, 120, barcodes=(BAGUETTE,))
    await catalog.add_product("JAM", "Confiture", 550, 350, barcodes=(JAM,))
    await catalog.add_product("POM", "Pommes", 550, 299, barcodes=(APPLES,),
                              sold_by_weight=True)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The JSON of an answer that must have ``status``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: httpx.Response, status: int, code: str,
            field: str | None = None) -> dict[str, Any]:
    """The problem document of a refusal that must have this status, code (and field)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert body.get("field") == field, body
    return body


async def new_ticket(client: httpx.AsyncClient, **body: Any) -> str:
    """Open a draft; return its id."""
    ticket_id: str = ok(await client.post("/v1/tickets", json=body), 201)["id"]
    return ticket_id


async def add(client: httpx.AsyncClient, ticket_id: str, **line: Any) -> dict[str, Any]:
    """Add a line; return the draft."""
    return ok(await client.post(f"/v1/tickets/{ticket_id}/lines", json=line), 201)


async def pay(client: httpx.AsyncClient, ticket_id: str, tender: str,
              amount: int) -> dict[str, Any]:
    """Add a payment; return the draft."""
    return ok(await client.post(f"/v1/tickets/{ticket_id}/payments",
                                json={"tender": tender, "amount": amount}), 201)


async def quick_sale(client: httpx.AsyncClient, *lines: dict[str, Any]) -> dict[str, Any]:
    """Sell ``lines`` paid in cash exactly; return the finalize answer."""
    ticket_id = await new_ticket(client)
    draft: dict[str, Any] = {}
    for line in lines:
        draft = await add(client, ticket_id, **line)
    await pay(client, ticket_id, "cash", draft["total"])
    return ok(await client.post(f"/v1/tickets/{ticket_id}/finalize"))


async def journal_events(box: Box, code: int) -> list[dict[str, Any]]:
    """The records of the journal's events with ``code``."""
    return [dict(entry.record) async for entry in box.services.journal.entries()
            if entry.record.get("type") == "event" and entry.record["code"] == code]
