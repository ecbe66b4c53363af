"""The catalog a till needs to sell: products, their barcodes, VAT rate and price.

Prices are integer cents in the store's price mode (incl. or excl. VAT, ``[journal]
prices_include_vat``); VAT rates are basis points and must be among the store's rates.
Products sold by weight have a price per kilogram.

The sales service only reads through ``by_sku`` and ``by_barcode``, which answer a
``Sellable``: the product as it sells at a given moment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agent.boxdb import BoxDb
from agent.errors import conflict, invalid

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    vat_rate INTEGER NOT NULL,
    price INTEGER NOT NULL,
    sold_by_weight INTEGER NOT NULL DEFAULT 0,
    category TEXT,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS barcodes (
    barcode TEXT PRIMARY KEY,
    sku TEXT NOT NULL REFERENCES products(sku)
);
"""


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


class Catalog:
    """Products and barcodes in the box's working database."""

    def __init__(self, db: BoxDb, vat_rates: tuple[int, ...]) -> None:
        self.db = db
        self.vat_rates = vat_rates

    @classmethod
    async def open(cls, db: BoxDb, vat_rates: tuple[int, ...]) -> Catalog:
        """Create the tables if needed."""
        await db.create(SCHEMA)
        return cls(db, vat_rates)

    async def add_product(self, sku: str, label: str, vat_rate: int, price: int, *,
                          barcodes: tuple[str, ...] = (), sold_by_weight: bool = False,
                          category: str | None = None) -> Sellable:
        """Create a product with its barcodes."""
        if vat_rate not in self.vat_rates:
            raise invalid("unknown_vat_rate", f"{vat_rate} is not a VAT rate of this store",
                          "vat_rate")
        if price < 0:
            raise invalid("invalid_price", "a price is zero or more cents", "price")
        async with self.db.transaction() as connection:
            cursor = await connection.execute(
                "INSERT OR IGNORE INTO products (sku, label, vat_rate, price, sold_by_weight, "
                "category) VALUES (?, ?, ?, ?, ?, ?)",
                (sku, label, vat_rate, price, int(sold_by_weight), category))
            if cursor.rowcount == 0:
                raise conflict("product_exists", f"product {sku!r} already exists", "sku")
            for code in barcodes:
                cursor = await connection.execute(
                    "INSERT OR IGNORE INTO barcodes (barcode, sku) VALUES (?, ?)", (code, sku))
                if cursor.rowcount == 0:
                    raise conflict("barcode_taken", f"barcode {code} is another product's",
                                   "barcodes")
        return Sellable(sku, label, vat_rate, price, sold_by_weight,
                        barcodes[0] if barcodes else None, category)

    async def by_sku(self, sku: str, at: dt.datetime) -> Sellable | None:
        """The active product ``sku`` as it sells at ``at``."""
        row = await self.db.fetch_one(
            "SELECT sku, label, vat_rate, price, sold_by_weight, category FROM products "
            "WHERE sku = ? AND active = 1", (sku,))
        if row is None:
            return None
        return Sellable(row[0], row[1], row[2], row[3], bool(row[4]), None, row[5])

    async def by_barcode(self, barcode: str, at: dt.datetime) -> Sellable | None:
        """The active product carrying ``barcode`` as it sells at ``at``."""
        row = await self.db.fetch_one("SELECT sku FROM barcodes WHERE barcode = ?", (barcode,))
        if row is None:
            return None
        product = await self.by_sku(row[0], at)
        if product is None:
            return None
        return Sellable(product.sku, product.label, product.vat_rate, product.unit_price,
                        product.sold_by_weight, barcode, product.category)
