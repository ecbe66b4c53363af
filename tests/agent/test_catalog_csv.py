"""The catalog as CSV: export, import (all or nothing), French decimals, round trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from boxkit import frontend, running_box

from agent.composition import Box

BOM = "\ufeff".encode()
HEADER = "sku;parent_sku;label;attributes;vat_rate;price;sold_by_weight;category;barcodes;active"
GOOD = "\r\n".join([
    HEADER,
    "TS;;T-shirt;;20;15,00;non;Textile > Hauts;;oui",
    "TS-M;TS;;taille=M|couleur=bleu;;;;;3760000000017;oui",
    "TS-L;TS;;taille=L|couleur=bleu;;17,5;;;3760000000024|LOT-7;non",
    "BAN;;Bananes;;5,5;2,99;oui;Fruits & légumes;2612345000003;oui",
    "RIZ;;Riz basmati 1 kg;;5,5;3.2;non;;;oui",
    "'=SUM;;'-50 % sac;;20;1;non;;;oui",
]) + "\r\n"


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    async with running_box(tmp_path / "data") as running:
        yield running


@pytest.fixture
async def admin(box: Box) -> AsyncIterator[httpx.AsyncClient]:
    async with frontend(box) as client:
        yield client


async def upload(client: httpx.AsyncClient, body: bytes | str,
                 **params: Any) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return await client.post("/v1/catalog/import", content=content, params=params,
                             headers={"Content-Type": "text/csv"})


async def products(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/v1/catalog/products", params={"limit": 200})
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_import_creates_products_variants_and_categories(admin: httpx.AsyncClient
                                                               ) -> None:
    answer = await upload(admin, GOOD)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"created": 6, "updated": 0, "dry_run": False}
    shirt = (await admin.get("/v1/catalog/products/TS")).json()
    assert (shirt["price"], shirt["vat_rate"], shirt["category"]) == (1500, 2000, "hauts")
    assert [(v["sku"], v["attributes"], v["price"], v["active"], v["barcodes"])
            for v in shirt["variants"]] == [
        ("TS-L", {"taille": "L", "couleur": "bleu"}, 1750, False,
         ["3760000000024", "LOT-7"]),
        ("TS-M", {"taille": "M", "couleur": "bleu"}, None, True, ["3760000000017"])]
    rice = (await admin.get("/v1/catalog/products/RIZ")).json()
    assert (rice["price"], rice["vat_rate"], rice["category"]) == (320, 550, None)
    formula = (await admin.get("/v1/catalog/products/=SUM")).json()
    assert formula["label"] == "-50 % sac"
    categories = (await admin.get("/v1/catalog/categories")).json()
    assert [c["path"] for c in categories] == [["Fruits & légumes"], ["Textile"],
                                               ["Textile", "Hauts"]]


async def test_export_is_excel_ready(admin: httpx.AsyncClient) -> None:
    await upload(admin, GOOD)
    answer = await admin.get("/v1/catalog/export.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(BOM)
    lines = answer.content[len(BOM):].decode().split("\r\n")
    assert lines[0] == HEADER
    assert lines[1:] == [
        "'=SUM;;'-50 % sac;;20;1,00;non;;;oui",
        "BAN;;Bananes;;5,5;2,99;oui;Fruits & légumes;2612345000003;oui",
        "RIZ;;Riz basmati 1 kg;;5,5;3,20;non;;;oui",
        "TS;;T-shirt;;20;15,00;non;Textile > Hauts;;oui",
        "TS-L;TS;;taille=L|couleur=bleu;;17,50;;;3760000000024|LOT-7;non",
        "TS-M;TS;;taille=M|couleur=bleu;;;;;3760000000017;oui",
        ""]


async def test_round_trip_into_a_fresh_box(tmp_path: Path, admin: httpx.AsyncClient) -> None:
    await upload(admin, GOOD)
    await admin.patch("/v1/catalog/products/RIZ", json={"label": 'Riz "long"; 1 kg',
                                                        "active": False})
    exported = (await admin.get("/v1/catalog/export.csv")).content
    async with running_box(tmp_path / "other") as fresh, frontend(fresh) as other:
        answer = await upload(other, exported)
        assert answer.json() == {"created": 6, "updated": 0, "dry_run": False}
        assert (await other.get("/v1/catalog/export.csv")).content == exported
        assert await products(other) == await products(admin)
        again = await upload(other, exported)
        assert again.json() == {"created": 0, "updated": 6, "dry_run": False}
        assert (await other.get("/v1/catalog/export.csv")).content == exported


async def test_bad_rows_are_all_reported_and_nothing_is_imported(
        admin: httpx.AsyncClient) -> None:
    await upload(admin, f"{HEADER}\nOLD;;Ancien;;20;1;non;;3017620422003;oui\n")
    before = (await admin.get("/v1/catalog/export.csv")).content
    bad = "\n".join([
        HEADER,
        "OK1;;Bon;;20;1,00;non;;;oui",              # 2: fine
        "P1;;Prix;;20;12,505;non;;;oui",            # 3: three decimals
        "P2;;TVA;;19,6;1;non;;;oui",                # 4: not a store rate
        "P3;;Code;;20;1;non;;3017620422004;oui",    # 5: wrong check digit
        "P4;;Pris;;20;1;non;;3017620422003;oui",    # 6: OLD's barcode
        "OK1;;Encore;;20;1;non;;;oui",              # 7: sku twice
        "V1;NOPE;;taille=M;;;;;;oui",               # 8: no such product
        "V2;OK1;Libellé;taille=M;;;;;;oui",         # 9: a variant's label is its product's
        "P5;;;;20;1;non;;;peut-être",               # 10: no label, bad boolean
        "P6;;Nouveau;;;;;;;",                       # 11: a new product needs VAT and price
    ])
    answer = await upload(admin, bad)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "invalid_csv"
    found = [(e["line"], e["column"]) for e in problem["errors"]]
    assert found == [(3, "price"), (4, "vat_rate"), (5, "barcodes"), (6, "barcodes"),
                     (7, "sku"), (8, "parent_sku"), (9, "label"), (10, "label"),
                     (10, "active"), (11, "vat_rate"), (11, "price")]
    assert "12,505" in problem["errors"][0]["message"]
    assert (await admin.get("/v1/catalog/export.csv")).content == before
    assert (await admin.get("/v1/catalog/products/OK1")).status_code == 404


@pytest.mark.parametrize("body", [
    "sku,label,vat_rate,price\nA,Pomme,5.5,12.50\n",                     # commas, dots
    "\ufeffsku;label;vat_rate;price\nA;Pomme;5,5 %;12,50 €\n",           # BOM, units
    "SKU;Label;VAT_RATE;Price\r\nA;Pomme;5,50;12,5\r\n\r\n",              # case, blank line
    'sku,label,vat_rate,price\n"A","Pomme",5.5,"12,50"\n',               # quoted comma
    "\nsep=,\nsku,label,vat_rate,price\nA,Pomme,5.5,12.50\n",               # Excel's sep=
])
async def test_separators_decimals_and_bom_variants(admin: httpx.AsyncClient, body: str) -> None:
    answer = await upload(admin, body)
    assert answer.status_code == 200, answer.text
    product = (await admin.get("/v1/catalog/products/A")).json()
    assert (product["label"], product["vat_rate"], product["price"]) == ("Pomme", 550, 1250)


async def test_windows_1252_from_excel(admin: httpx.AsyncClient) -> None:
    body = "sku;label;vat_rate;price\nC;Crème brûlée;10;4,90\n".encode("cp1252")
    assert (await upload(admin, body)).status_code == 200
    assert (await admin.get("/v1/catalog/products/C")).json()["label"] == "Crème brûlée"


async def test_columns_left_out_are_kept_and_dry_run_changes_nothing(
        admin: httpx.AsyncClient) -> None:
    await upload(admin, GOOD)
    dry = await upload(admin, "sku;price\nTS;19,90\nNEW;1\n", dry_run="true")
    assert dry.status_code == 422  # NEW needs a label and a VAT rate
    dry = await upload(admin, "sku;price\nTS;19,90\n", dry_run="true")
    assert dry.json() == {"created": 0, "updated": 1, "dry_run": True}
    assert (await admin.get("/v1/catalog/products/TS")).json()["price"] == 1500
    done = await upload(admin, "sku;price\nTS;19,90\nTS-M;12\n")
    assert done.json() == {"created": 0, "updated": 2, "dry_run": False}
    shirt = (await admin.get("/v1/catalog/products/TS")).json()
    assert (shirt["price"], shirt["label"], shirt["category"]) == (1990, "T-shirt", "hauts")
    assert [(v["sku"], v["price"], v["barcodes"]) for v in shirt["variants"]] == [
        ("TS-L", 1750, ["3760000000024", "LOT-7"]), ("TS-M", 1200, ["3760000000017"])]


async def test_a_barcode_moves_between_products_in_one_file(admin: httpx.AsyncClient) -> None:
    await upload(admin, "sku;label;vat_rate;price;barcodes\nA;A;20;1;3017620422003\n"
                        "B;B;20;1;\n")
    moved = await upload(admin, "sku;barcodes\nB;3017620422003\nA;\n")
    assert moved.status_code == 200, moved.text
    assert (await admin.get("/v1/catalog/barcodes/3017620422003")).json()["sku"] == "B"


@pytest.mark.parametrize(("body", "line", "column"), [
    (b"", 1, None),
    (b"\n\n", 1, None),
    (b"sku;colour\nA;red\n", 1, "colour"),
    (b"label;price\nA;1\n", 1, "sku"),
    (b"sku;sku\nA;A\n", 1, "sku"),
    (b"sku;label\nA;B;C\n", 2, None),
    (b"\xff\xfe\x00s\x00k\x00u\x00", 1, None),  # UTF-16 is not read
    (b'sku;label\nA;"never closed\n', 2, None),
])
async def test_unreadable_files(admin: httpx.AsyncClient, body: bytes, line: int,
                                column: str | None) -> None:
    answer = await upload(admin, body)
    assert answer.status_code == 422, answer.text
    first = answer.json()["errors"][0]
    assert (first["line"], first["column"]) == (line, column)


async def test_a_body_too_large_is_refused(admin: httpx.AsyncClient) -> None:
    big = b"sku;label\n" + b"A;" + b"x" * (5 * 1024 * 1024) + b"\n"
    answer = await upload(admin, big)
    assert (answer.status_code, answer.json()["code"]) == (413, "payload_too_large")
