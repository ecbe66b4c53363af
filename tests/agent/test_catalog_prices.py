"""Scheduled prices (seasons, promotions) and in-store barcodes with an embedded price/weight."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from boxkit import START, frontend, running_box

from agent.composition import Box
from drivers.scanner.barcodes import gs1_check_digit
from fiscal.testing import FakeClock

UTC = dt.UTC


def ean13(first_twelve: str) -> str:
    return first_twelve + str(gs1_check_digit(first_twelve))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def box(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Box]:
    async with running_box(tmp_path / "data", clock) as running:
        yield running


@pytest.fixture
async def admin(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with frontend(box) as client:
        answer = await client.post("/v1/catalog/products", json={
            "sku": "CAFE", "label": "Café moulu", "vat_rate": 550, "price": 450})
        assert answer.status_code == 201, answer.text
        yield client


async def schedule(client: httpx.AsyncClient, sku: str, price: int, starts_at: str,
                   ends_at: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"price": price, "starts_at": starts_at}
    if ends_at is not None:
        body["ends_at"] = ends_at
    return await client.post(f"/v1/catalog/products/{sku}/prices", json=body)


async def price_at(box: Box, sku: str, moment: str) -> int:
    sellable = await box.services.catalog.by_sku(sku, at(moment))
    assert sellable is not None
    return sellable.unit_price


async def test_the_price_in_force_at_each_moment(box: Box, admin: httpx.AsyncClient) -> None:
    # a promotion in local time (Paris, UTC+1 in November), then a new price for good, then
    # a promotion over the new price
    promo = await schedule(admin, "CAFE", 399, "2026-11-21T00:00:00", "2026-11-23T00:00:00")
    assert promo.status_code == 201, promo.text
    assert promo.json()["starts_at"] == "2026-11-21T00:00:00+01:00"
    assert promo.json()["state"] == "scheduled"
    assert (await schedule(admin, "CAFE", 550, "2026-12-01T00:00:00+01:00")).status_code == 201
    assert (await schedule(admin, "CAFE", 500, "2026-12-10T08:00:00Z",
                           "2026-12-12T08:00:00Z")).status_code == 201

    expected = [("2026-11-20T22:59:59+00:00", 450), ("2026-11-20T23:00:00+00:00", 399),
                ("2026-11-22T22:59:59+00:00", 399), ("2026-11-22T23:00:00+00:00", 450),
                ("2026-11-30T23:00:00+00:00", 550), ("2026-12-10T08:00:00+00:00", 500),
                ("2026-12-12T07:59:59+00:00", 500), ("2026-12-12T08:00:00+00:00", 550),
                ("2030-01-01T00:00:00+00:00", 550)]
    for moment, price in expected:
        assert await price_at(box, "CAFE", moment) == price, moment


async def test_get_shows_the_current_price_as_the_clock_moves(
        clock: FakeClock, admin: httpx.AsyncClient) -> None:
    await schedule(admin, "CAFE", 399, "2026-11-21T08:00:00Z", "2026-11-22T08:00:00Z")

    async def current() -> tuple[int, int]:
        product = (await admin.get("/v1/catalog/products/CAFE")).json()
        return product["price"], product["current_price"]

    assert await current() == (450, 450)
    clock.set(dt.datetime(2026, 11, 21, 8, 0, tzinfo=UTC))
    assert await current() == (450, 399)
    states = [c["state"] for c in (await admin.get("/v1/catalog/products/CAFE/prices")).json()]
    assert states == ["in_force"]
    clock.set(dt.datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    assert await current() == (450, 450)


async def test_cancel_only_a_change_not_yet_started(clock: FakeClock,
                                                    admin: httpx.AsyncClient) -> None:
    first = (await schedule(admin, "CAFE", 400, "2026-11-21T00:00:00Z")).json()
    second = (await schedule(admin, "CAFE", 420, "2026-11-25T00:00:00Z")).json()
    clock.set(dt.datetime(2026, 11, 22, tzinfo=UTC))
    started = await admin.delete(f"/v1/catalog/products/CAFE/prices/{first['id']}")
    assert (started.status_code, started.json()["code"]) == (409, "price_change_started")
    cancelled = await admin.delete(f"/v1/catalog/products/CAFE/prices/{second['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["price"] == 420
    listed = (await admin.get("/v1/catalog/products/CAFE/prices")).json()
    assert [c["id"] for c in listed] == [first["id"]]
    again = await admin.delete(f"/v1/catalog/products/CAFE/prices/{second['id']}")
    assert (again.status_code, again.json()["code"]) == (404, "price_change_not_found")


@pytest.mark.parametrize(("starts_at", "ends_at", "status", "code"), [
    ("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z", 422, "invalid_period"),
    ("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", 422, "invalid_period"),
    ("0001-01-01T00:00:00Z", None, 422, "invalid_input"),
    ("9999-12-31T23:59:59-12:00", None, 422, "invalid_input"),
    ("not a date", None, 422, "invalid_input"),
])
async def test_bad_periods_are_refused(admin: httpx.AsyncClient, starts_at: str,
                                       ends_at: str | None, status: int, code: str) -> None:
    answer = await schedule(admin, "CAFE", 100, starts_at, ends_at)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


async def test_variants_follow_their_product_unless_priced(box: Box,
                                                           admin: httpx.AsyncClient) -> None:
    for sku, price in (("CAFE-250", None), ("CAFE-1K", 1500)):
        body = {"sku": sku, "attributes": {"poids": sku[5:]}, "price": price}
        assert (await admin.post("/v1/catalog/products/CAFE/variants",
                                 json=body)).status_code == 201
    await schedule(admin, "CAFE", 399, "2026-11-21T00:00:00Z")
    await schedule(admin, "CAFE-1K", 1200, "2026-11-22T00:00:00Z")
    unknown = await schedule(admin, "NOPE", 1, "2026-11-22T00:00:00Z")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "product_not_found")
    assert await price_at(box, "CAFE-250", "2026-11-20T12:00:00+00:00") == 450
    assert await price_at(box, "CAFE-250", "2026-11-21T12:00:00+00:00") == 399
    assert await price_at(box, "CAFE-1K", "2026-11-21T12:00:00+00:00") == 1500
    assert await price_at(box, "CAFE-1K", "2026-11-22T12:00:00+00:00") == 1200


async def test_in_store_barcodes_carry_a_price_or_a_weight(box: Box,
                                                           admin: httpx.AsyncClient) -> None:
    price_template, weight_template = ean13("211234500000"), ean13("261234500000")
    assert (await admin.post("/v1/catalog/products", json={
        "sku": "FROM", "label": "Comté à la coupe", "vat_rate": 550, "price": 0,
        "barcodes": [price_template]})).status_code == 201
    assert (await admin.post("/v1/catalog/products", json={
        "sku": "BAN", "label": "Bananes", "vat_rate": 550, "price": 299,
        "sold_by_weight": True, "barcodes": [weight_template]})).status_code == 201

    priced = await admin.get(f"/v1/catalog/barcodes/{ean13('211234501234')}")
    assert priced.status_code == 200, priced.text
    assert priced.json() | {"barcode": None} == {
        "sku": "FROM", "label": "Comté à la coupe", "vat_rate": 550, "unit_price": 0,
        "sold_by_weight": False, "barcode": None, "category": None, "embedded_price": 1234,
        "embedded_weight_milli": None, "parent_sku": None}
    assert priced.json()["barcode"] == ean13("211234501234")

    weighed = await box.services.catalog.by_barcode(ean13("261234501255"), box.journal.now())
    assert weighed is not None
    assert (weighed.sku, weighed.embedded_weight_milli, weighed.embedded_price,
            weighed.unit_price, weighed.sold_by_weight) == ("BAN", 1255, None, 299, True)

    for unknown in (ean13("211234600100"), ean13("221234501234"), "2112345012349"):
        assert (await admin.get(f"/v1/catalog/barcodes/{unknown}")).status_code == 404, unknown


async def test_a_registered_in_store_code_wins_over_its_template(admin: httpx.AsyncClient
                                                                 ) -> None:
    fixed = ean13("211234500999")
    await admin.post("/v1/catalog/products", json={
        "sku": "TPL", "label": "Au poids", "vat_rate": 550, "price": 0,
        "barcodes": [ean13("211234500000")]})
    await admin.post("/v1/catalog/products", json={
        "sku": "FIX", "label": "Prix fixe", "vat_rate": 550, "price": 999, "barcodes": [fixed]})
    answer = (await admin.get(f"/v1/catalog/barcodes/{fixed}")).json()
    assert (answer["sku"], answer["embedded_price"]) == ("FIX", None)
