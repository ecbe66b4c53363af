"""The catalog a till sells from: products, variants, barcodes, categories, scheduled prices.

Prices are integer cents in the store's price mode (incl. or excl. VAT, ``[journal]
prices_include_vat``); VAT rates are basis points and must be among the store's rates.
Products sold by weight have a price per kilogram. A product is never deleted (old tickets name
its sku): it is deactivated, and then does not sell.

A product may have variants (size, colour…): each has its own sku, attributes, barcodes and
optionally its own price (else its product's); it shares its product's VAT rate, category and
weight flag, and sells as ``T-shirt (M, bleu)``. A scheduled price change sets the price of a
product or variant from an instant, optionally until another (a season, a promotion); among the
changes in force the latest started wins, else the base price applies.

The sales service reads through ``by_sku`` and ``by_barcode``, which answer a ``Sellable``:
the product or variant as it sells at a given moment. ``by_barcode`` also reads in-store
EAN-13 codes with an embedded price or weight (``catalog_codes``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import structlog

from agent.boxdb import BoxDb, Row
from agent.errors import conflict, invalid, not_found
from agent.services.catalog_codes import embedded, fold, lookup_forms, variant_label
from agent.services.catalog_store import (
    ITEM_COLUMNS,
    KEEP,
    SCHEMA,
    Item,
    Keep,
    ProductChanges,
    Store,
    VariantChanges,
    check_price,
    item_of,
)

if TYPE_CHECKING:
    from agent.services.catalog_csv import ImportResult

__all__ = ["KEEP", "Catalog", "Category", "Keep", "PriceChange", "Product", "ProductChanges",
           "ProductPage", "Sellable", "Variant", "VariantChanges"]

CHUNK = 500
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
_SELLABLE = (
    "SELECT i.sku, i.parent_sku, COALESCE(p.label, i.label), i.attributes, "
    "COALESCE(p.vat_rate, i.vat_rate), i.price, p.price, "
    "COALESCE(p.sold_by_weight, i.sold_by_weight), COALESCE(p.category, i.category), "
    "i.active AND COALESCE(p.active, 1) "
    "FROM catalog_items i LEFT JOIN catalog_items p ON p.sku = i.parent_sku WHERE i.sku = ?")
_log = structlog.get_logger(__name__)
_IN_FORCE = ("SELECT sku, price FROM catalog_prices WHERE sku IN ({marks}) AND starts_at <= ? "
             "AND (ends_at IS NULL OR ends_at > ?) ORDER BY starts_at, id")


@dataclass(frozen=True)
class Sellable:
    """A product as it sells now: what a ticket line is made from."""

    sku: str
    label: str
    vat_rate: int
    unit_price: int
    """Cents in the store's price mode; per kilogram when ``sold_by_weight``."""
    sold_by_weight: bool = False
    barcode: str | None = None
    category: str | None = None
    embedded_price: int | None = None
    """Cents to pay, read from an in-store barcode (``2T…``, T 0–4)."""
    embedded_weight_milli: int | None = None
    """Net weight in grams (thousandths of a kg), read from an in-store barcode (T 5–9)."""
    parent_sku: str | None = None
    """The product a variant belongs to."""


@dataclass(frozen=True)
class Variant:
    """A variant of a product, with its price now."""

    sku: str
    parent_sku: str
    attributes: dict[str, str]
    label: str
    price: int | None
    """Its own base price; None: its product's."""
    current_price: int
    active: bool
    barcodes: tuple[str, ...]


@dataclass(frozen=True)
class Product:
    """A product, its variants, and its price now."""

    sku: str
    label: str
    vat_rate: int
    price: int
    current_price: int
    sold_by_weight: bool
    category: str | None
    active: bool
    barcodes: tuple[str, ...]
    variants: tuple[Variant, ...] = ()


@dataclass(frozen=True)
class ProductPage:
    """A page of a product search and the number of products found."""

    items: tuple[Product, ...]
    total: int


@dataclass(frozen=True)
class Category:
    """A category, its parent, and the names from the root down to it."""

    id: str
    name: str
    parent: str | None
    path: tuple[str, ...]


@dataclass(frozen=True)
class PriceChange:
    """A price set for a product or variant from ``starts_at`` (until ``ends_at``)."""

    id: int
    sku: str
    price: int
    starts_at: dt.datetime
    ends_at: dt.datetime | None

    def state(self, at: dt.datetime) -> Literal["scheduled", "in_force", "ended"]:
        """Whether the change is to come, within its period, or over at ``at``."""
        if at < self.starts_at:
            return "scheduled"
        return "ended" if self.ends_at is not None and at >= self.ends_at else "in_force"


def stamp(moment: dt.datetime) -> str:
    """An instant as sortable UTC text (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime(_STAMP)


def unstamp(text: str) -> dt.datetime:
    """The instant of ``stamp``'s text."""
    return dt.datetime.strptime(text, _STAMP).replace(tzinfo=dt.UTC)


class Catalog:
    """Products, variants, barcodes, categories and prices in the box's working database."""

    def __init__(self, db: BoxDb, vat_rates: tuple[int, ...]) -> None:
        self.db = db
        self.vat_rates = vat_rates

    @classmethod
    async def open(cls, db: BoxDb, vat_rates: tuple[int, ...]) -> Catalog:
        """Create the tables if needed."""
        await db.create(SCHEMA)
        return cls(db, vat_rates)

    # -- changes ------------------------------------------------------------------------------

    async def add_product(self, sku: str, label: str, vat_rate: int, price: int, *,
                          barcodes: tuple[str, ...] = (), sold_by_weight: bool = False,
                          category: str | None = None, active: bool = True,
                          operator: str = "system", create_category: bool = True) -> Sellable:
        """Create a product with its barcodes (an unknown category is created, if allowed)."""
        item = Item(sku, None, label, None, vat_rate, price, sold_by_weight, category, active)
        async with self.db.transaction() as connection:
            await Store(connection, self.vat_rates, operator).create_product(
                item, tuple(barcodes), create_category=create_category)
        return Sellable(sku, label, vat_rate, price, sold_by_weight,
                        barcodes[0] if barcodes else None, category)

    async def update_product(self, sku: str, changes: ProductChanges, *,
                             operator: str = "system") -> None:
        """Change a product (404 ``product_not_found``); ``active=False`` deactivates it."""
        async with self.db.transaction() as connection:
            await Store(connection, self.vat_rates, operator).update_product(sku, changes)

    async def add_variant(self, parent_sku: str, sku: str, attributes: dict[str, str], *,
                          price: int | None = None, barcodes: tuple[str, ...] = (),
                          active: bool = True, operator: str = "system") -> None:
        """Create a variant of the product ``parent_sku``."""
        item = Item(sku, parent_sku, None, attributes, None, price, False, None, active)
        async with self.db.transaction() as connection:
            await Store(connection, self.vat_rates, operator).create_variant(item, barcodes)

    async def update_variant(self, parent_sku: str, sku: str, changes: VariantChanges, *,
                             operator: str = "system") -> None:
        """Change a variant (404 ``variant_not_found``)."""
        async with self.db.transaction() as connection:
            await Store(connection, self.vat_rates, operator).update_variant(parent_sku, sku,
                                                                            changes)

    # -- reading products ---------------------------------------------------------------------

    async def product(self, sku: str, at: dt.datetime) -> Product:
        """The product ``sku`` with its variants and prices at ``at`` (404 if none)."""
        row = await self.db.fetch_one(
            f"SELECT {ITEM_COLUMNS} FROM catalog_items WHERE sku = ? AND parent_sku IS NULL",
            (sku,))
        if row is None:
            raise not_found("product", sku, "sku")
        return (await self._assemble([item_of(row)], at))[0]

    async def search(self, at: dt.datetime, *, q: str | None = None,
                     category: str | None = None, active: bool | None = None,
                     limit: int = 50, offset: int = 0) -> ProductPage:
        """Products whose label, sku, variant or barcode matches ``q``, by label."""
        where, parameters = await self._filters(q, category, active)
        count = await self.db.fetch_one(f"SELECT COUNT(*) FROM catalog_items i WHERE {where}",
                                        parameters)
        rows = await self.db.fetch_all(
            f"SELECT {ITEM_COLUMNS} FROM catalog_items i WHERE {where} "
            "ORDER BY i.search, i.sku LIMIT ? OFFSET ?", (*parameters, limit, offset))
        products = await self._assemble([item_of(row) for row in rows], at)
        return ProductPage(tuple(products), count[0] if count else 0)

    async def _filters(self, q: str | None, category: str | None,
                       active: bool | None) -> tuple[str, list[Any]]:
        clauses, parameters = ["i.parent_sku IS NULL"], list[Any]()
        if active is not None:
            clauses.append("i.active = ?")
            parameters.append(int(active))
        if category is not None:
            inside = await self._descendants(category)
            clauses.append(f"i.category IN ({','.join('?' * len(inside))})")
            parameters.extend(inside)
        text = (q or "").strip()
        if text:
            pattern = "%" + fold(text).replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            clauses.append(
                "(i.search LIKE ? ESCAPE '\\' OR i.sku IN (SELECT parent_sku FROM catalog_items "
                "WHERE parent_sku IS NOT NULL AND search LIKE ? ESCAPE '\\') OR i.sku IN ("
                "SELECT COALESCE(v.parent_sku, v.sku) FROM catalog_barcodes b JOIN catalog_items"
                " v ON v.sku = b.sku WHERE b.barcode = ?))")
            parameters.extend((pattern, pattern, text))
        return " AND ".join(clauses), parameters

    async def variants(self, parent_sku: str, at: dt.datetime) -> tuple[Variant, ...]:
        """The variants of the product ``parent_sku`` (404 if no such product)."""
        return (await self.product(parent_sku, at)).variants

    async def _assemble(self, products: list[Item], at: dt.datetime) -> list[Product]:
        variants = [item_of(row) for row in await self._chunked(
            f"SELECT {ITEM_COLUMNS} FROM catalog_items WHERE parent_sku IN ({{marks}}) "
            "ORDER BY sku", [item.sku for item in products])]
        skus = [item.sku for item in (*products, *variants)]
        barcodes: dict[str, list[str]] = defaultdict(list)
        for code, sku in await self._chunked(
                "SELECT barcode, sku FROM catalog_barcodes WHERE sku IN ({marks}) ORDER BY rowid",
                skus):
            barcodes[sku].append(code)
        in_force = await self._prices_in_force(skus, at)
        by_parent: dict[str, list[Item]] = defaultdict(list)
        for variant in variants:
            by_parent[variant.parent_sku or ""].append(variant)
        return [_product(item, by_parent[item.sku], barcodes, in_force) for item in products]

    async def _chunked(self, sql: str, keys: Sequence[str],
                       extra: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = []
        for start in range(0, len(keys), CHUNK):
            part = keys[start:start + CHUNK]
            rows += await self.db.fetch_all(sql.format(marks=",".join("?" * len(part))),
                                            (*part, *extra))
        return rows

    async def _prices_in_force(self, skus: Sequence[str], at: dt.datetime) -> dict[str, int]:
        moment = stamp(at)
        rows = await self._chunked(_IN_FORCE, skus, (moment, moment))
        return {row[0]: row[1] for row in rows}

    # -- selling ------------------------------------------------------------------------------

    async def by_sku(self, sku: str, at: dt.datetime) -> Sellable | None:
        """The active product or variant ``sku`` as it sells at ``at``."""
        row = await self.db.fetch_one(_SELLABLE, (sku,))
        if row is None or not row[9]:
            return None
        parent = row[1]
        if parent is None:
            in_force = await self._prices_in_force([sku], at)
            return Sellable(sku, row[2], row[4], _current(in_force, sku, row[5], None),
                            bool(row[7]), None, row[8])
        in_force = await self._prices_in_force([sku, parent], at)
        price = _current(in_force, sku, row[5], _current(in_force, parent, row[6], None))
        return Sellable(sku, variant_label(row[2], json.loads(row[3])), row[4], price,
                        bool(row[7]), None, row[8], parent_sku=parent)

    async def by_barcode(self, barcode: str, at: dt.datetime) -> Sellable | None:
        """The active product carrying ``barcode`` as it sells at ``at``.

        A code not registered that is an in-store EAN-13 (``2T IIIII VVVVV C``) sells the
        product registered under its template (value zeroed), with the embedded price or weight.
        """
        for form in lookup_forms(barcode):
            row = await self.db.fetch_one("SELECT sku FROM catalog_barcodes WHERE barcode = ?",
                                          (form,))
            if row is not None:
                found = await self.by_sku(row[0], at)
                return None if found is None else replace(found, barcode=barcode)
        value = embedded(barcode)
        if value is None:
            return None
        row = await self.db.fetch_one("SELECT sku FROM catalog_barcodes WHERE barcode = ?",
                                      (value.template,))
        found = None if row is None else await self.by_sku(row[0], at)
        if found is None:
            return None
        return replace(found, barcode=barcode, embedded_price=value.price,
                       embedded_weight_milli=value.weight_grams)

    # -- categories ---------------------------------------------------------------------------

    async def categories(self) -> list[Category]:
        """Every category, with its path of names."""
        rows = await self.db.fetch_all("SELECT id, name, parent FROM catalog_categories")
        known = {row[0]: row for row in rows}
        return sorted((Category(row[0], row[1], row[2], _path(known, row[0])) for row in rows),
                      key=lambda category: [fold(name) for name in category.path])

    async def category(self, ident: str) -> Category:
        """One category (404 ``category_not_found``)."""
        found = next((c for c in await self.categories() if c.id == ident), None)
        if found is None:
            raise not_found("category", ident, "id")
        return found

    async def add_category(self, name: str, *, ident: str | None = None,
                           parent: str | None = None, operator: str = "system") -> Category:
        """Create a category (its id is made from its name when not given)."""
        async with self.db.transaction() as connection:
            ident = await Store(connection, self.vat_rates, operator).add_category(
                name, ident, parent)
        return await self.category(ident)

    async def update_category(self, ident: str, *, name: str | Keep = KEEP,
                              parent: str | Keep | None = KEEP,
                              operator: str = "system") -> Category:
        """Rename or move a category."""
        async with self.db.transaction() as connection:
            await Store(connection, self.vat_rates, operator).update_category(ident, name,
                                                                              parent)
        return await self.category(ident)

    async def delete_category(self, ident: str, *, operator: str = "system") -> None:
        """Delete an empty category (409 ``category_in_use``)."""
        async with self.db.transaction() as connection:
            await Store(connection, self.vat_rates, operator).delete_category(ident)

    async def _descendants(self, ident: str) -> list[str]:
        rows = await self.db.fetch_all("SELECT id, parent FROM catalog_categories")
        found, frontier = [ident], [ident]
        while frontier:
            children = [row[0] for row in rows if row[1] in frontier and row[0] not in found]
            found += children
            frontier = children
        return found

    # -- scheduled prices ---------------------------------------------------------------------

    async def schedule_price(self, sku: str, price: int, starts_at: dt.datetime,
                             ends_at: dt.datetime | None = None, *,
                             operator: str = "system") -> PriceChange:
        """Set the price of a product or variant from ``starts_at`` (until ``ends_at``)."""
        check_price(price)
        if ends_at is not None and stamp(ends_at) <= stamp(starts_at):
            raise invalid("invalid_period", "a price change ends after it starts", "ends_at")
        async with self.db.transaction() as connection:
            store = Store(connection, self.vat_rates, operator)
            if await store.item(sku) is None:
                raise not_found("product", sku, "sku")
            cursor = await connection.execute(
                "INSERT INTO catalog_prices (sku, price, starts_at, ends_at) "
                "VALUES (?, ?, ?, ?)", (sku, price, stamp(starts_at),
                                        None if ends_at is None else stamp(ends_at)))
            ident = cursor.lastrowid
        assert ident is not None
        _log.info("catalog_price_scheduled", sku=sku, id=ident, price=price,
                             starts_at=stamp(starts_at), operator=operator,
                             ends_at=None if ends_at is None else stamp(ends_at))
        return PriceChange(ident, sku, price, unstamp(stamp(starts_at)),
                           None if ends_at is None else unstamp(stamp(ends_at)))

    async def price_changes(self, sku: str) -> list[PriceChange]:
        """The price changes of a product or variant, by start (404 if no such sku)."""
        if await self.db.fetch_one("SELECT 1 FROM catalog_items WHERE sku = ?", (sku,)) is None:
            raise not_found("product", sku, "sku")
        rows = await self.db.fetch_all(
            "SELECT id, sku, price, starts_at, ends_at FROM catalog_prices WHERE sku = ? "
            "ORDER BY starts_at, id", (sku,))
        return [_price_change(row) for row in rows]

    async def cancel_price_change(self, sku: str, ident: int, at: dt.datetime, *,
                                  operator: str = "system") -> PriceChange:
        """Cancel a change that has not started at ``at`` (409 ``price_change_started``)."""
        async with self.db.transaction() as connection:
            store = Store(connection, self.vat_rates, operator)
            row = await store.one("SELECT id, sku, price, starts_at, ends_at FROM catalog_prices"
                                  " WHERE id = ? AND sku = ?", (ident, sku))
            if row is None:
                raise not_found("price_change", ident, "id")
            if row[3] <= stamp(at):
                raise conflict("price_change_started", "this price change has already started",
                               "id")
            await store.run("DELETE FROM catalog_prices WHERE id = ?", (ident,))
        _log.info("catalog_price_cancelled", sku=sku, id=ident, operator=operator)
        return _price_change(row)

    # -- CSV ----------------------------------------------------------------------------------

    async def export_csv(self) -> bytes:
        """The whole catalog as CSV (``catalog_csv``, loaded on first use)."""
        from agent.services.catalog_csv import export_catalog

        return await export_catalog(Store(self.db.reads(), self.vat_rates))

    async def import_csv(self, body: bytes, *, dry_run: bool = False,
                         operator: str = "system") -> ImportResult:
        """Create or update products and variants from CSV, all or nothing (``catalog_csv``)."""
        from agent.services.catalog_csv import apply_import, plan_import, snapshot

        current = await snapshot(Store(self.db.reads(), self.vat_rates))
        plan = plan_import(body, current, self.vat_rates)
        if dry_run:
            return replace(plan.result, dry_run=True)
        async with self.db.transaction() as connection:
            await apply_import(plan, Store(connection, self.vat_rates, operator))
        _log.info("catalog_imported", created=plan.result.created, updated=plan.result.updated,
                  operator=operator)
        return plan.result


def _current(in_force: dict[str, int], sku: str | None, own: int | None,
             fallback: int | None) -> int:
    """The price in force for ``sku``: its scheduled one, else its own, else ``fallback``."""
    if sku is not None and sku in in_force:
        return in_force[sku]
    price = own if own is not None else fallback
    assert price is not None
    return price


def _product(item: Item, variants: list[Item], barcodes: dict[str, list[str]],
             in_force: dict[str, int]) -> Product:
    assert item.label is not None
    assert item.vat_rate is not None
    assert item.price is not None
    current = _current(in_force, item.sku, item.price, None)
    return Product(
        item.sku, item.label, item.vat_rate, item.price, current, item.sold_by_weight,
        item.category, item.active, tuple(barcodes[item.sku]),
        tuple(_variant(variant, item.label, current, barcodes, in_force) for variant in variants))


def _variant(item: Item, label: str, parent_price: int, barcodes: dict[str, list[str]],
             in_force: dict[str, int]) -> Variant:
    attributes = item.attributes or {}
    return Variant(item.sku, item.parent_sku or "", attributes, variant_label(label, attributes),
                   item.price, _current(in_force, item.sku, item.price, parent_price),
                   item.active, tuple(barcodes[item.sku]))


def _price_change(row: Row) -> PriceChange:
    return PriceChange(row[0], row[1], row[2], unstamp(row[3]),
                       None if row[4] is None else unstamp(row[4]))


def _path(known: dict[str, Row], ident: str) -> tuple[str, ...]:
    names: list[str] = []
    cursor: str | None = ident
    while cursor is not None and cursor in known and len(names) < len(known):
        names.insert(0, known[cursor][1])
        cursor = known[cursor][2]
    return tuple(names)
