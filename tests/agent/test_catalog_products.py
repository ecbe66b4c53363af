"""Catalog products over HTTP: CRUD, barcodes, search, categories, roles."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from boxkit import add_user, frontend, running_box

from agent.composition import Box

NUTELLA = "3017620422003"  # a real EAN-13
EAN8 = "96385074"


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    async with running_box(tmp_path / "data") as running:
        yield running


@pytest.fixture
async def admin(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with frontend(box) as client:
        yield client


async def create(client: httpx.AsyncClient, sku: str, label: str = "Pâte à tartiner",
                 **fields: object) -> httpx.Response:
    body = {"sku": sku, "label": label, "vat_rate": 550, "price": 450, **fields}
    return await client.post("/v1/catalog/products", json=body)


async def test_create_read_patch_and_deactivate_a_product(admin: httpx.AsyncClient) -> None:
    created = await create(admin, "NUT-400", barcodes=[NUTELLA, EAN8])
    assert created.status_code == 201, created.text
    assert created.json() == {
        "sku": "NUT-400", "label": "Pâte à tartiner", "vat_rate": 550, "price": 450,
        "current_price": 450, "sold_by_weight": False, "category": None, "active": True,
        "barcodes": [NUTELLA, EAN8], "variants": []}

    patched = await admin.patch("/v1/catalog/products/NUT-400",
                                json={"price": 499, "vat_rate": 2000, "barcodes": [EAN8]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["price"] == 499
    assert patched.json()["vat_rate"] == 2000
    assert patched.json()["barcodes"] == [EAN8]
    assert (await admin.get(f"/v1/catalog/barcodes/{NUTELLA}")).status_code == 404

    sold = (await admin.get(f"/v1/catalog/barcodes/{EAN8}")).json()
    assert (sold["sku"], sold["unit_price"], sold["vat_rate"]) == ("NUT-400", 499, 2000)

    gone = await admin.delete("/v1/catalog/products/NUT-400")
    assert gone.status_code == 200
    assert gone.json()["active"] is False
    assert (await admin.get("/v1/catalog/products/NUT-400")).json()["active"] is False
    missing = await admin.get(f"/v1/catalog/barcodes/{EAN8}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "product_not_found"

    back = await admin.patch("/v1/catalog/products/NUT-400", json={"active": True})
    assert back.json()["active"] is True
    assert (await admin.get(f"/v1/catalog/barcodes/{EAN8}")).status_code == 200


async def test_a_sku_exists_once_and_a_barcode_belongs_to_one_product(
        admin: httpx.AsyncClient) -> None:
    assert (await create(admin, "A", barcodes=[NUTELLA])).status_code == 201
    again = await create(admin, "A")
    assert (again.status_code, again.json()["code"]) == (409, "product_exists")
    taken = await create(admin, "B", barcodes=[NUTELLA])
    assert (taken.status_code, taken.json()["code"]) == (409, "barcode_taken")
    assert (await admin.get("/v1/catalog/products/B")).status_code == 404
    patch = await admin.patch("/v1/catalog/products/A", json={"barcodes": ["X1", "X1"]})
    assert patch.json()["code"] == "invalid_barcode"


@pytest.mark.parametrize(("fields", "code", "field"), [
    ({"barcodes": ["3017620422004"]}, "invalid_barcode", "barcodes.0"),  # wrong check digit
    ({"barcodes": ["96385075"]}, "invalid_barcode", "barcodes.0"),
    ({"barcodes": ["012345678906"]}, "invalid_barcode", "barcodes.0"),  # UPC-A, check is 5
    ({"barcodes": ["ABC|12"]}, "invalid_barcode", "barcodes.0"),
    ({"barcodes": ["tab\there"]}, "invalid_barcode", "barcodes.0"),
    ({"vat_rate": 1900}, "unknown_vat_rate", "vat_rate"),
    ({"sku": "a/b"}, "invalid_sku", "sku"),
    ({"sku": "bell\u0007"}, "invalid_sku", "sku"),
    ({"sku": " padded"}, "invalid_sku", "sku"),
    ({"label": "line\nbreak"}, "invalid_label", "label"),
    ({"label": "\ud800"}, "invalid_input", "label"),  # refused by the JSON parser
    ({"category": "nowhere"}, "unknown_category", "category"),
])
async def test_bad_input_is_refused_with_its_code(admin: httpx.AsyncClient,
                                                  fields: dict[str, object], code: str,
                                                  field: str) -> None:
    body = {"sku": "S1", "label": "Savon", "vat_rate": 2000, "price": 300, **fields}
    answer = await admin.post("/v1/catalog/products", content=json.dumps(body),
                              headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert (answer.json()["code"], answer.json()["field"]) == (code, field)


async def test_free_text_barcodes_and_upc_a_read_as_ean_13(admin: httpx.AsyncClient) -> None:
    assert (await create(admin, "C128", barcodes=["LOT-42 A"])).status_code == 201
    assert (await create(admin, "UPC", barcodes=["012345678905"])).status_code == 201
    assert (await admin.get("/v1/catalog/barcodes/LOT-42 A")).json()["sku"] == "C128"
    as_ean13 = (await admin.get("/v1/catalog/barcodes/0012345678905")).json()
    assert (as_ean13["sku"], as_ean13["barcode"]) == ("UPC", "0012345678905")


async def test_search_ignores_case_and_accents_and_pages(admin: httpx.AsyncClient) -> None:
    for sku, label in [("CR-1", "Crème fraîche"), ("CR-2", "CREME brulee"),
                       ("BE-1", "Beurre doux"), ("PA-1", "Pain 100% seigle")]:
        assert (await create(admin, sku, label)).status_code == 201
    await create(admin, "MISC", "Divers", barcodes=[NUTELLA])

    async def skus(**params: object) -> list[str]:
        answer = await admin.get("/v1/catalog/products", params=params)
        assert answer.status_code == 200, answer.text
        return [item["sku"] for item in answer.json()["items"]]

    assert await skus(q="creme") == ["CR-2", "CR-1"]  # by label: brûlée before fraîche
    assert await skus(q="FRAÎCHE") == ["CR-1"]
    assert await skus(q="be-1") == ["BE-1"]
    assert await skus(q="100%") == ["PA-1"]
    assert await skus(q="%") == ["PA-1"]
    assert await skus(q=NUTELLA) == ["MISC"]
    page = (await admin.get("/v1/catalog/products", params={"limit": 2, "offset": 1})).json()
    assert (page["total"], [p["sku"] for p in page["items"]]) == (5, ["CR-2", "CR-1"])
    await admin.delete("/v1/catalog/products/BE-1")
    assert await skus(active="false") == ["BE-1"]
    assert "BE-1" not in await skus(active="true")


async def test_categories_nest_and_filter_products(admin: httpx.AsyncClient) -> None:
    food = await admin.post("/v1/catalog/categories", json={"name": "Épicerie"})
    assert food.status_code == 201, food.text
    assert food.json() == {"id": "epicerie", "name": "Épicerie", "parent": None,
                           "path": ["Épicerie"]}
    tins = await admin.post("/v1/catalog/categories",
                            json={"name": "Conserves", "parent": "epicerie"})
    assert tins.json()["path"] == ["Épicerie", "Conserves"]
    twin = await admin.post("/v1/catalog/categories", json={"name": "conserves",
                                                            "parent": "epicerie"})
    assert (twin.status_code, twin.json()["code"]) == (409, "category_exists")
    await create(admin, "TIN", "Petits pois", category="conserves")
    await create(admin, "RICE", "Riz", category="epicerie")
    await create(admin, "SOAP", "Savon")

    listed = await admin.get("/v1/catalog/products", params={"category": "epicerie"})
    assert [p["sku"] for p in listed.json()["items"]] == ["TIN", "RICE"]
    only_tins = await admin.get("/v1/catalog/products", params={"category": "conserves"})
    assert [p["sku"] for p in only_tins.json()["items"]] == ["TIN"]

    cycle = await admin.patch("/v1/catalog/categories/epicerie", json={"parent": "conserves"})
    assert (cycle.status_code, cycle.json()["code"]) == (422, "category_cycle")
    in_use = await admin.delete("/v1/catalog/categories/conserves")
    assert (in_use.status_code, in_use.json()["code"]) == (409, "category_in_use")
    await admin.patch("/v1/catalog/products/TIN", json={"category": None})
    assert (await admin.delete("/v1/catalog/categories/conserves")).status_code == 200
    names = [c["name"] for c in (await admin.get("/v1/catalog/categories")).json()]
    assert names == ["Épicerie"]


async def test_a_cashier_reads_but_cannot_write(box: Box, admin: httpx.AsyncClient) -> None:
    await add_user(admin, "alice", "cashier", "1111")
    await add_user(admin, "marc", "manager", "2222")
    await create(admin, "P1", barcodes=[NUTELLA])
    async with frontend(box, "alice", "1111", name="caisse 2") as cashier:
        assert (await cashier.get("/v1/catalog/products/P1")).status_code == 200
        assert (await cashier.get(f"/v1/catalog/barcodes/{NUTELLA}")).status_code == 200
        assert (await cashier.get("/v1/catalog/export.csv")).status_code == 200
        writes = [
            cashier.post("/v1/catalog/products", json={"sku": "P2", "label": "X",
                                                       "vat_rate": 2000, "price": 1}),
            cashier.patch("/v1/catalog/products/P1", json={"price": 1}),
            cashier.delete("/v1/catalog/products/P1"),
            cashier.post("/v1/catalog/products/P1/variants",
                         json={"sku": "P1-M", "attributes": {"taille": "M"}}),
            cashier.post("/v1/catalog/products/P1/prices",
                         json={"price": 1, "starts_at": "2027-01-01T00:00:00"}),
            cashier.post("/v1/catalog/categories", json={"name": "X"}),
            cashier.post("/v1/catalog/import", content=b"sku\nP3\n",
                         headers={"Content-Type": "text/csv"}),
        ]
        for write in writes:
            answer = await write
            assert (answer.status_code, answer.json()["code"]) == (403, "role_required")
    async with frontend(box, "marc", "2222", name="bureau") as manager:
        assert (await manager.patch("/v1/catalog/products/P1",
                                    json={"price": 1})).status_code == 200
    assert (await admin.get("/v1/catalog/products/P1")).json()["price"] == 1


async def test_nobody_signed_in_reads_nothing(box: Box) -> None:
    async with frontend(box, user=None) as anonymous:
        answer = await anonymous.get("/v1/catalog/products")
    assert (answer.status_code, answer.json()["code"]) == (401, "not_signed_in")


async def test_the_service_keeps_the_sales_contract(box: Box) -> None:
    """``add_product``/``by_sku``/``by_barcode`` as the sales service uses them."""
    catalog, at = box.services.catalog, box.services.journal.now()
    sold = await catalog.add_product("BAN", "Bananes", 550, 299, barcodes=(NUTELLA,),
                                     sold_by_weight=True, category="fruits")
    assert (sold.sku, sold.barcode, sold.category, sold.sold_by_weight) == (
        "BAN", NUTELLA, "fruits", True)
    by_sku = await catalog.by_sku("BAN", at)
    assert by_sku is not None
    assert (by_sku.unit_price, by_sku.barcode, by_sku.embedded_price) == (299, None, None)
    by_code = await catalog.by_barcode(NUTELLA, at)
    assert by_code is not None
    assert (by_code.sku, by_code.barcode) == ("BAN", NUTELLA)
    assert await catalog.by_sku("NOPE", at) is None
    assert [c.id for c in await catalog.categories()] == ["fruits"]
