"""Variants over HTTP, and how ``by_sku``/``by_barcode`` resolve them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from boxkit import frontend, running_box

from agent.composition import Box

M_BLUE = "3760000000017"
L_RED = "3760000000024"


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    async with running_box(tmp_path / "data") as running:
        yield running


@pytest.fixture
async def admin(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with frontend(box) as client:
        answer = await client.post("/v1/catalog/products", json={
            "sku": "TS", "label": "T-shirt", "vat_rate": 2000, "price": 1500,
            "category": None})
        assert answer.status_code == 201, answer.text
        yield client


async def add_variant(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/v1/catalog/products/TS/variants", json=body)


async def test_variants_sell_with_their_own_sku_barcode_and_price(
        box: Box, admin: httpx.AsyncClient) -> None:
    blue = await add_variant(admin, sku="TS-M-B", attributes={"taille": "M", "couleur": "bleu"},
                             barcodes=[M_BLUE])
    assert blue.status_code == 201, blue.text
    assert blue.json() == {"sku": "TS-M-B", "product_sku": "TS",
                           "attributes": {"taille": "M", "couleur": "bleu"},
                           "label": "T-shirt (M, bleu)", "price": None, "current_price": 1500,
                           "active": True, "barcodes": [M_BLUE]}
    red = await add_variant(admin, sku="TS-L-R", attributes={"taille": "L", "couleur": "rouge"},
                            price=1800, barcodes=[L_RED])
    assert red.json()["current_price"] == 1800

    catalog, at = box.services.catalog, box.services.journal.now()
    by_sku = await catalog.by_sku("TS-M-B", at)
    assert by_sku is not None
    assert (by_sku.label, by_sku.unit_price, by_sku.vat_rate, by_sku.parent_sku) == (
        "T-shirt (M, bleu)", 1500, 2000, "TS")
    scanned = (await admin.get(f"/v1/catalog/barcodes/{L_RED}")).json()
    assert (scanned["sku"], scanned["label"], scanned["unit_price"], scanned["barcode"]) == (
        "TS-L-R", "T-shirt (L, rouge)", 1800, L_RED)

    await admin.patch("/v1/catalog/products/TS", json={"price": 1200, "label": "Tee"})
    after = await catalog.by_sku("TS-M-B", at)
    assert after is not None
    assert (after.label, after.unit_price) == ("Tee (M, bleu)", 1200)
    product = (await admin.get("/v1/catalog/products/TS")).json()
    assert [(v["sku"], v["current_price"]) for v in product["variants"]] == [
        ("TS-L-R", 1800), ("TS-M-B", 1200)]


async def test_a_variant_back_to_its_product_price_and_deactivated(
        box: Box, admin: httpx.AsyncClient) -> None:
    await add_variant(admin, sku="TS-S", attributes={"taille": "S"}, price=900)
    patched = await admin.patch("/v1/catalog/products/TS/variants/TS-S", json={"price": None})
    assert (patched.json()["price"], patched.json()["current_price"]) == (None, 1500)
    gone = await admin.delete("/v1/catalog/products/TS/variants/TS-S")
    assert gone.json()["active"] is False
    assert await box.services.catalog.by_sku("TS-S", box.services.journal.now()) is None
    await admin.patch("/v1/catalog/products/TS/variants/TS-S", json={"active": True})
    await admin.delete("/v1/catalog/products/TS")  # the product off: its variants too
    assert await box.services.catalog.by_sku("TS-S", box.services.journal.now()) is None


async def test_variant_rules(admin: httpx.AsyncClient) -> None:
    assert (await add_variant(admin, sku="TS-M", attributes={"taille": "M"},
                              barcodes=[M_BLUE])).status_code == 201
    twin = await add_variant(admin, sku="TS-M2", attributes={"taille": "M"})
    assert (twin.status_code, twin.json()["code"]) == (409, "variant_exists")
    same_sku = await add_variant(admin, sku="TS", attributes={"taille": "XL"})
    assert (same_sku.status_code, same_sku.json()["code"]) == (409, "product_exists")
    taken = await add_variant(admin, sku="TS-L", attributes={"taille": "L"}, barcodes=[M_BLUE])
    assert (taken.status_code, taken.json()["code"]) == (409, "barcode_taken")
    bad = await add_variant(admin, sku="TS-X", attributes={"taille": "M|L"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_attributes")
    orphan = await admin.post("/v1/catalog/products/NOPE/variants",
                              json={"sku": "N-1", "attributes": {"a": "b"}})
    assert (orphan.status_code, orphan.json()["code"]) == (404, "product_not_found")
    nested = await admin.post("/v1/catalog/products/TS-M/variants",
                              json={"sku": "N-2", "attributes": {"a": "b"}})
    assert nested.status_code == 404
    wrong_parent = await admin.patch("/v1/catalog/products/TS/variants/TS", json={})
    assert (wrong_parent.status_code, wrong_parent.json()["code"]) == (404, "variant_not_found")
    assert (await admin.get("/v1/catalog/products/TS-M")).status_code == 404
    listed = await admin.get("/v1/catalog/products/TS/variants")
    assert [v["sku"] for v in listed.json()] == ["TS-M"]


async def test_search_finds_a_product_by_its_variant(admin: httpx.AsyncClient) -> None:
    await add_variant(admin, sku="TS-XXL", attributes={"taille": "XXL"}, barcodes=[L_RED])
    for q in ("ts-xxl", "xxl", L_RED):
        page = (await admin.get("/v1/catalog/products", params={"q": q})).json()
        assert [p["sku"] for p in page["items"]] == ["TS"], q
