"""The catalog's tables, and the checked changes made to them on one open connection.

Products and their variants share one table (``catalog_items``), so a sku is unique across both
and barcodes and scheduled prices refer to either; a variant's ``label``, ``vat_rate`` and
``category`` are its product's (stored NULL), its ``price`` is NULL when it sells at its
product's price. ``Store`` is used inside a transaction, by the catalog service for one change
and by the CSV import for many; each change is validated and logged (structlog: a price or VAT
change is not fiscal, but it is traced with the operator who made it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any, Final

import structlog

from agent.boxdb import Row, Statements
from agent.errors import conflict, invalid, not_found
from agent.services.catalog_codes import (
    check_attributes,
    check_barcodes,
    check_category_id,
    check_category_name,
    check_label,
    check_sku,
    fold,
    slug,
)
from fiscal.money import MAX_AMOUNT

SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog_categories (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent TEXT REFERENCES catalog_categories(id)
);
CREATE TABLE IF NOT EXISTS catalog_items (
    sku TEXT PRIMARY KEY,
    parent_sku TEXT REFERENCES catalog_items(sku),
    label TEXT,
    attributes TEXT,
    vat_rate INTEGER,
    price INTEGER,
    sold_by_weight INTEGER NOT NULL DEFAULT 0,
    category TEXT REFERENCES catalog_categories(id),
    active INTEGER NOT NULL DEFAULT 1,
    search TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_items_parent ON catalog_items(parent_sku);
CREATE INDEX IF NOT EXISTS catalog_items_search ON catalog_items(search);
CREATE TABLE IF NOT EXISTS catalog_barcodes (
    barcode TEXT PRIMARY KEY,
    sku TEXT NOT NULL REFERENCES catalog_items(sku)
);
CREATE INDEX IF NOT EXISTS catalog_barcodes_sku ON catalog_barcodes(sku);
CREATE TABLE IF NOT EXISTS catalog_prices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL REFERENCES catalog_items(sku),
    price INTEGER NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT
);
CREATE INDEX IF NOT EXISTS catalog_prices_sku ON catalog_prices(sku, starts_at);
"""

ITEM_COLUMNS = (
    "sku, parent_sku, label, attributes, vat_rate, price, sold_by_weight, category, active")
CATEGORY_SUFFIX_ROOM = 56
"""Characters of a made-up category id kept before its ``-2``, ``-3``… suffix."""
_log = structlog.get_logger(__name__)


class Keep(Enum):
    """A field a change leaves as it is."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


@dataclass(frozen=True)
class Item:
    """One row of ``catalog_items``: a product (``parent_sku`` None) or a variant."""

    sku: str
    parent_sku: str | None = None
    label: str | None = None
    attributes: dict[str, str] | None = None
    vat_rate: int | None = None
    price: int | None = None
    sold_by_weight: bool = False
    category: str | None = None
    active: bool = True

    @property
    def search(self) -> str:
        """The folded text ``q`` is searched in."""
        if self.parent_sku is None:
            return fold(f"{self.label} {self.sku}")
        return fold(" ".join((self.sku, *(self.attributes or {}).values())))


def item_of(row: Row) -> Item:
    """An ``Item`` from a row of ``ITEM_COLUMNS``."""
    attributes = json.loads(row[3]) if row[3] is not None else None
    return Item(row[0], row[1], row[2], attributes, row[4], row[5], bool(row[6]), row[7],
                bool(row[8]))


@dataclass(frozen=True)
class ProductChanges:
    """What a product update changes (``KEEP``: unchanged; ``category`` None: removed)."""

    label: str | Keep = KEEP
    vat_rate: int | Keep = KEEP
    price: int | Keep = KEEP
    sold_by_weight: bool | Keep = KEEP
    category: str | Keep | None = KEEP
    active: bool | Keep = KEEP
    barcodes: tuple[str, ...] | Keep = KEEP


@dataclass(frozen=True)
class VariantChanges:
    """What a variant update changes (``price`` None: back to the product's price)."""

    attributes: dict[str, str] | Keep = KEEP
    price: int | Keep | None = KEEP
    active: bool | Keep = KEEP
    barcodes: tuple[str, ...] | Keep = KEEP


def changed(changes: ProductChanges | VariantChanges) -> dict[str, Any]:
    """The fields a change sets (barcodes aside)."""
    values = {f.name: getattr(changes, f.name) for f in fields(changes)}
    return {name: value for name, value in values.items()
            if value is not KEEP and name != "barcodes"}


def check_price(price: int | None, field: str = "price") -> int | None:
    """A price: None (inherited) or 0 to ``MAX_AMOUNT`` cents."""
    if price is not None and (isinstance(price, bool) or not 0 <= price <= MAX_AMOUNT):
        raise invalid("invalid_price", f"a price is 0 to {MAX_AMOUNT} cents", field)
    return price


class Store:
    """Reads and checked writes of the catalog on an open connection (inside a transaction)."""

    def __init__(self, connection: Statements, vat_rates: tuple[int, ...],
                 operator: str = "system") -> None:
        self.connection = connection
        self.vat_rates = vat_rates
        self.operator = operator

    async def one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        """The first row of a query, or None."""
        row = (await self.connection.execute(sql, parameters)).fetchone()
        return None if row is None else tuple(row)

    async def all(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
        return [tuple(row) for row in (await self.connection.execute(sql, parameters)).fetchall()]

    async def run(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one change; the number of rows changed."""
        return (await self.connection.execute(sql, parameters)).rowcount

    async def item(self, sku: str) -> Item | None:
        """The product or variant ``sku``."""
        row = await self.one(f"SELECT {ITEM_COLUMNS} FROM catalog_items WHERE sku = ?", (sku,))
        return None if row is None else item_of(row)

    async def product(self, sku: str) -> Item:
        """The product ``sku`` (404 ``product_not_found`` if none, or if a variant)."""
        item = await self.item(sku)
        if item is None or item.parent_sku is not None:
            raise not_found("product", sku, "sku")
        return item

    # -- products -------------------------------------------------------------------------

    async def create_product(self, item: Item, barcodes: tuple[str, ...], *,
                             create_category: bool = False) -> None:
        """Insert a new product with its barcodes (409 ``product_exists``)."""
        check_sku(item.sku)
        self._check_product(item)
        if item.category is not None:
            await self.category_for(item.category, create=create_category)
        await self._insert(item)
        await self.set_barcodes(item.sku, check_barcodes(barcodes))
        _log.info("catalog_product_created", sku=item.sku, label=item.label,
                  vat_rate=item.vat_rate, price=item.price, operator=self.operator)

    async def update_product(self, sku: str, changes: ProductChanges) -> Item:
        """Change a product's fields and barcodes; the product after."""
        old = await self.product(sku)
        new = replace(old, **changed(changes))
        self._check_product(new)
        if new.category is not None and new.category != old.category:
            await self.category_for(new.category, create=False)
        await self._write(new)
        if not isinstance(changes.barcodes, Keep):
            await self.set_barcodes(sku, check_barcodes(changes.barcodes))
        self._log_update("catalog_product_updated", old, new, changes.barcodes)
        return new

    def _check_product(self, item: Item) -> None:
        check_label(item.label or "")
        if item.vat_rate not in self.vat_rates:
            raise invalid("unknown_vat_rate", f"{item.vat_rate} is not a VAT rate of this store",
                          "vat_rate")
        if item.price is None:
            raise invalid("invalid_price", "a product has a price", "price")
        check_price(item.price)

    # -- variants ---------------------------------------------------------------------------

    async def create_variant(self, item: Item, barcodes: tuple[str, ...]) -> None:
        """Insert a new variant of the product ``item.parent_sku`` with its barcodes."""
        assert item.parent_sku is not None
        await self.product(item.parent_sku)
        check_sku(item.sku)
        check_price(item.price)
        await self._check_siblings(item)
        await self._insert(item)
        await self.set_barcodes(item.sku, check_barcodes(barcodes))
        _log.info("catalog_variant_created", sku=item.sku, product=item.parent_sku,
                  attributes=item.attributes, price=item.price, operator=self.operator)

    async def update_variant(self, parent_sku: str, sku: str, changes: VariantChanges) -> Item:
        """Change a variant's attributes, price, active flag and barcodes; the variant after."""
        old = await self.item(sku)
        if old is None or old.parent_sku != parent_sku:
            raise not_found("variant", sku, "sku")
        new = replace(old, **changed(changes))
        check_price(new.price)
        if new.attributes != old.attributes:
            await self._check_siblings(new)
        await self._write(new)
        if not isinstance(changes.barcodes, Keep):
            await self.set_barcodes(sku, check_barcodes(changes.barcodes))
        self._log_update("catalog_variant_updated", old, new, changes.barcodes)
        return new

    async def _check_siblings(self, item: Item) -> None:
        attributes = check_attributes(item.attributes or {})
        rows = await self.all("SELECT sku, attributes FROM catalog_items WHERE parent_sku = ? "
                              "AND sku <> ?", (item.parent_sku, item.sku))
        twin = next((row[0] for row in rows if json.loads(row[1]) == attributes), None)
        if twin is not None:
            raise conflict("variant_exists", f"variant {twin!r} has the same attributes",
                           "attributes")

    # -- rows and barcodes -------------------------------------------------------------------

    async def _insert(self, item: Item) -> None:
        count = await self.run(
            f"INSERT OR IGNORE INTO catalog_items ({ITEM_COLUMNS}, search) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _values(item))
        if count == 0:
            raise conflict("product_exists", f"sku {item.sku!r} already exists", "sku")

    async def _write(self, item: Item) -> None:
        values = _values(item)
        await self.run("UPDATE catalog_items SET parent_sku = ?, label = ?, attributes = ?, "
                       "vat_rate = ?, price = ?, sold_by_weight = ?, category = ?, active = ?, "
                       "search = ? WHERE sku = ?", (*values[1:], values[0]))

    async def set_barcodes(self, sku: str, codes: tuple[str, ...]) -> None:
        """Make ``codes`` the barcodes of ``sku`` (409 ``barcode_taken`` if another's)."""
        for index, code in enumerate(codes):
            row = await self.one("SELECT sku FROM catalog_barcodes WHERE barcode = ?", (code,))
            if row is not None and row[0] != sku:
                raise conflict("barcode_taken", f"barcode {code} belongs to {row[0]!r}",
                               f"barcodes.{index}")
        kept = await self.all("SELECT barcode FROM catalog_barcodes WHERE sku = ?", (sku,))
        for (code,) in kept:
            if code not in codes:
                await self.run("DELETE FROM catalog_barcodes WHERE barcode = ?", (code,))
        for code in codes:
            await self.run("INSERT OR IGNORE INTO catalog_barcodes (barcode, sku) VALUES (?, ?)",
                           (code, sku))

    def _log_update(self, event: str, old: Item, new: Item,
                    barcodes: tuple[str, ...] | Keep) -> None:
        differences = {f.name: [getattr(old, f.name), getattr(new, f.name)] for f in fields(old)
                       if getattr(old, f.name) != getattr(new, f.name)}
        if not isinstance(barcodes, Keep):
            differences["barcodes"] = list(barcodes)
        _log.info(event, sku=new.sku, changes=differences, operator=self.operator)

    # -- categories --------------------------------------------------------------------------

    async def category_for(self, ident: str, *, create: bool) -> str:
        """Check that the category ``ident`` exists; create it (named ``ident``) if asked."""
        check_category_id(ident)
        if await self.one("SELECT 1 FROM catalog_categories WHERE id = ?", (ident,)):
            return ident
        if not create:
            raise invalid("unknown_category", f"no category {ident!r}", "category")
        await self.add_category(ident.replace(">", "-"), ident, None)
        return ident

    async def add_category(self, name: str, ident: str | None, parent: str | None) -> str:
        """Create a category; its id (``slug(name)`` made unique when not given)."""
        check_category_name(name)
        if parent is not None and not await self.one(
                "SELECT 1 FROM catalog_categories WHERE id = ?", (parent,)):
            raise invalid("unknown_category", f"no category {parent!r}", "parent")
        await self._check_sibling_name(name, parent, None)
        ident = check_category_id(ident, "id") if ident else await self._free_id(slug(name))
        count = await self.run("INSERT OR IGNORE INTO catalog_categories (id, name, parent) "
                               "VALUES (?, ?, ?)", (ident, name, parent))
        if count == 0:
            raise conflict("category_exists", f"category {ident!r} already exists", "id")
        _log.info("catalog_category_created", id=ident, name=name, parent=parent,
                  operator=self.operator)
        return ident

    async def _check_sibling_name(self, name: str, parent: str | None, ident: str | None) -> None:
        rows = await self.all("SELECT id, name FROM catalog_categories WHERE parent IS ?",
                              (parent,))
        if any(fold(row[1]) == fold(name) and row[0] != ident for row in rows):
            raise conflict("category_exists", f"a category {name!r} is already there", "name")

    async def _free_id(self, base: str) -> str:
        ident, number = base, 1
        while await self.one("SELECT 1 FROM catalog_categories WHERE id = ?", (ident,)):
            number += 1
            ident = f"{base[:CATEGORY_SUFFIX_ROOM]}-{number}"
        return ident

    async def category(self, ident: str) -> tuple[str, str, str | None]:
        """``(id, name, parent)`` of a category (404 ``category_not_found``)."""
        row = await self.one("SELECT id, name, parent FROM catalog_categories WHERE id = ?",
                             (ident,))
        if row is None:
            raise not_found("category", ident, "id")
        return row[0], row[1], row[2]

    async def update_category(self, ident: str, name: str | Keep,
                              parent: str | Keep | None) -> None:
        """Rename a category or move it under another (422 ``category_cycle``)."""
        _, old_name, old_parent = await self.category(ident)
        new_name = old_name if isinstance(name, Keep) else check_category_name(name)
        new_parent = old_parent if isinstance(parent, Keep) else parent
        if new_parent is not None and new_parent != old_parent:
            await self._check_ancestry(ident, new_parent)
        await self._check_sibling_name(new_name, new_parent, ident)
        await self.run("UPDATE catalog_categories SET name = ?, parent = ? WHERE id = ?",
                       (new_name, new_parent, ident))
        _log.info("catalog_category_updated", id=ident, name=new_name, parent=new_parent,
                  operator=self.operator)

    async def _check_ancestry(self, ident: str, parent: str) -> None:
        cursor: str | None = parent
        while cursor is not None:
            if cursor == ident:
                raise invalid("category_cycle", "a category cannot be inside itself", "parent")
            row = await self.one("SELECT parent FROM catalog_categories WHERE id = ?", (cursor,))
            if row is None:
                raise invalid("unknown_category", f"no category {cursor!r}", "parent")
            cursor = row[0]

    async def delete_category(self, ident: str) -> None:
        """Delete a category that holds no product and no category (409 ``category_in_use``)."""
        await self.category(ident)
        if await self.one("SELECT 1 FROM catalog_items WHERE category = ? UNION ALL "
                          "SELECT 1 FROM catalog_categories WHERE parent = ?", (ident, ident)):
            raise conflict("category_in_use", f"category {ident!r} holds products or categories",
                           "id")
        await self.run("DELETE FROM catalog_categories WHERE id = ?", (ident,))
        _log.info("catalog_category_deleted", id=ident, operator=self.operator)

    async def category_path(self, names: tuple[str, ...]) -> str:
        """The id of the category at the path of ``names`` from a root, created as needed."""
        parent: str | None = None
        for name in names:
            rows = await self.all("SELECT id, name FROM catalog_categories WHERE parent IS ?",
                                  (parent,))
            found = next((row[0] for row in rows if fold(row[1]) == fold(name)), None)
            parent = found if found is not None else await self.add_category(name, None, parent)
        assert parent is not None
        return parent


def _values(item: Item) -> tuple[Any, ...]:
    attributes = None if item.attributes is None else json.dumps(item.attributes,
                                                                  ensure_ascii=False)
    return (item.sku, item.parent_sku, item.label, attributes, item.vat_rate, item.price,
            int(item.sold_by_weight), item.category, int(item.active), item.search)
